#include "compd/logs/log_reader.h"

#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::TempDir;

// Timestamps without a zone are local time: the tests pin the zone.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    const char* old = std::getenv("TZ");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (had_) {
      setenv("TZ", old_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  bool had_;
  std::string old_;
};

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void WriteGz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, text.data(), static_cast<unsigned>(text.size())) ==
          static_cast<int>(text.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

struct Result {
  std::vector<Message> messages;
  LogReadStats stats;
  Status status;
};

Result Read(const std::vector<std::string>& paths, LogReaderOptions options = {}) {
  if (options.reference_ms == 0) options.reference_ms = 1796385600000;  // 2026-12-04T12:00Z
  std::unique_ptr<LogReader> reader;
  Status s = LogReader::Open(paths, options, &reader);
  REQUIRE(s.ok());
  Result r;
  Message m;
  while (reader->Next(&m)) r.messages.push_back(m);
  r.stats = reader->stats();
  r.status = reader->status();
  return r;
}

std::vector<std::string> Ids(const std::vector<Message>& ms) {
  std::vector<std::string> ids;
  for (const Message& m : ms) ids.push_back(m.queue_id);
  return ids;
}

std::vector<int64_t> Times(const std::vector<Message>& ms) {
  std::vector<int64_t> t;
  for (const Message& m : ms) t.push_back(m.time_ms);
  return t;
}

bool NonDecreasing(const std::vector<Message>& ms) {
  for (size_t i = 1; i < ms.size(); ++i) {
    if (ms[i].time_ms < ms[i - 1].time_ms) return false;
  }
  return true;
}

// 2022-04-20T12:53:58Z
constexpr int64_t kT0 = 1650459238000;

const char kEximMainlog[] =
    "2022-04-20 12:53:40 exim 4.96 daemon started: pid=100, -q30m, listening for SMTP on port "
    "25 (IPv4)\n"
    "2022-04-20 12:53:58 1nh9qH-0008OE-RW <= winfield@customer.example "
    "H=host-79-10-109-221.business.telecomitalia.it (localhost) [79.10.109.221] P=esmtpsa "
    "X=TLS1.2:ECDHE-ECDSA-AES128-GCM-SHA256:128 CV=no A=login:winfield@customer.example S=735 "
    "T=\"ZYaeD, X\" from <winfield@customer.example> for toewebvastsatw@gmx.example\n"
    "2022-04-20 12:53:59 1nh9qH-0008OE-RW => toewebvastsatw@gmx.example R=dnslookup "
    "T=remote_smtp H=mx00.gmx.example [212.227.15.10] C=\"250 OK\"\n"
    "2022-04-20 12:53:59 1nh9qH-0008OE-RW Completed\n"
    "2022-04-20 12:54:01 1nh9qJ-0008OF-AA <= newsletter@list.example H=list.example "
    "[192.0.2.7] P=esmtps S=20000 for a@customer.example\n"
    "2022-04-20 12:54:02 1nh9qK-0008OG-BB <= root@mx U=root P=local S=300 for "
    "admin@customer.example\n"
    "this line is not from exim\n"
    "2022-04-20 12:54:03 1nh9qL-0008OH-CC <= alice@customer.example H=(pc) [2001:db8::5]:40000 "
    "P=esmtpa A=dovecot_plain:alice@customer.example S=1200 T=\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\" "
    "for b@x.example c@y.example\n";

TEST_CASE("exim mainlog: authenticated arrivals, the rest counted", "[logs][reader]") {
  ScopedTz tz("UTC0");
  TempDir dir;
  Write(dir / "mainlog", kEximMainlog);
  Result r = Read({dir / "mainlog"});
  REQUIRE(r.messages.size() == 2);
  const Message& m = r.messages[0];
  CHECK(m.time_ms == kT0);
  CHECK(m.queue_id == "1nh9qH-0008OE-RW");
  CHECK(m.account == "winfield@customer.example");
  CHECK(m.client_ip == "79.10.109.221");
  CHECK(m.client_name == "host-79-10-109-221.business.telecomitalia.it");
  CHECK(m.helo == "localhost");
  CHECK(m.sender == "winfield@customer.example");
  CHECK(m.recipients == std::vector<std::string>{"toewebvastsatw@gmx.example"});
  CHECK(m.subject == "ZYaeD, X");
  CHECK(m.size == 735);
  CHECK(m.source == "exim-log");
  CHECK(m.origin == "mainlog:2");
  const Message& v6 = r.messages[1];
  CHECK(v6.client_ip == "2001:db8::5");
  CHECK(v6.helo == "pc");
  CHECK(v6.recipients == std::vector<std::string>{"b@x.example", "c@y.example"});
  CHECK(r.stats.total.lines == 8);
  CHECK(r.stats.total.messages == 2);
  CHECK(r.stats.total.unauthenticated == 2);
  CHECK(r.stats.total.not_understood == 1);
  CHECK(r.stats.total.ignored == 3);  // daemon start, delivery, Completed
  REQUIRE(r.stats.samples.size() == 1);
  CHECK(r.stats.samples[0] == dir / "mainlog" + ":7: this line is not from exim");
  REQUIRE(r.stats.files.size() == 1);
  CHECK(r.stats.files[0].format == LogFormat::kExim);
  CHECK(r.status.ok());
}

TEST_CASE("exim without +received_recipients: recipients from the delivery lines",
          "[logs][reader]") {
  ScopedTz tz("UTC0");
  TempDir dir;
  Write(dir / "mainlog",
        "2022-04-20 12:53:58 1nh9qH-0008OE-RW <= a@c.example H=(x) [192.0.2.1] P=esmtpsa "
        "A=login:a@c.example S=10\n"
        "2022-04-20 12:53:59 1nh9qM-0008OE-RW <= b@c.example H=(y) [192.0.2.2] P=esmtpsa "
        "A=login:b@c.example S=10\n"
        "2022-04-20 12:54:00 1nh9qH-0008OE-RW => one@x.example R=dnslookup T=remote_smtp\n"
        "2022-04-20 12:54:00 1nh9qH-0008OE-RW -> two@x.example R=dnslookup T=remote_smtp\n"
        "2022-04-20 12:54:00 1nh9qH-0008OE-RW ** bad@x.example: Unrouteable address\n"
        "2022-04-20 12:54:00 1nh9qH-0008OE-RW => me <alias@c.example> R=local_user T=spool\n"
        "2022-04-20 12:54:01 1nh9qH-0008OE-RW Completed\n"
        "2022-04-20 12:54:05 1nh9qM-0008OE-RW == slow@x.example R=dnslookup defer (-44)\n");
  // The second message never completes in this file: it comes out at the end with the
  // recipients known, still in time order.
  Result r = Read({dir / "mainlog"});
  REQUIRE(r.messages.size() == 2);
  CHECK(r.messages[0].recipients == std::vector<std::string>{"one@x.example", "two@x.example",
                                                             "bad@x.example", "alias@c.example"});
  CHECK(r.messages[1].queue_id == "1nh9qM-0008OE-RW");
  CHECK(r.messages[1].recipients == std::vector<std::string>{"slow@x.example"});
  CHECK(r.stats.total.ignored == 0);
}

TEST_CASE("rotated, compressed and out-of-order files are merged in time order", "[logs][reader]") {
  ScopedTz tz("UTC0");
  TempDir dir;
  auto arrival = [](const std::string& time, const std::string& id, const std::string& who) {
    return "2022-04-20 " + time + " " + id + " <= " + who +
           " H=(x) [192.0.2.1] P=esmtpa A=login:" + who + " S=1\n";
  };
  // The older file, compressed, ends in the middle of a message completed in the newer one.
  WriteGz(dir / "mainlog.1.gz", arrival("10:00:00", "1aaaaa-000001-AA", "a@x") +
                                    arrival("10:05:00", "1aaaab-000001-AA", "b@x") +
                                    "2022-04-20 10:05:01 1aaaab-000001-AA => r1@y R=x\n");
  Write(dir / "mainlog",
        "2022-04-20 10:05:02 1aaaab-000001-AA => r2@y R=x\n"
        "2022-04-20 10:05:03 1aaaab-000001-AA Completed\n" +
            arrival("10:06:00", "1aaaac-000001-AA", "c@x") +
            "2022-04-20 10:06:01 1aaaac-000001-AA Completed\n");
  // A second node's log, interleaved in time.
  Write(dir / "mx2-mainlog", arrival("10:02:00", "1bbbbb-000001-AA", "d@x") +
                                 arrival("10:05:30", "1bbbbc-000001-AA", "e@x"));
  // Given newest first, on purpose.
  Result r = Read({dir / "mainlog", dir / "mx2-mainlog", dir / "mainlog.1.gz"});
  CHECK(Ids(r.messages) == std::vector<std::string>{"1aaaaa-000001-AA", "1bbbbb-000001-AA",
                                                    "1aaaab-000001-AA", "1bbbbc-000001-AA",
                                                    "1aaaac-000001-AA"});
  CHECK(NonDecreasing(r.messages));
  REQUIRE(r.messages.size() == 5);
  CHECK(r.messages[2].recipients == std::vector<std::string>{"r1@y", "r2@y"});
  CHECK(r.messages[2].origin == "mainlog.1.gz:2");
  CHECK(r.stats.files[2].counts.messages == 2);
  CHECK(r.stats.files[0].counts.messages == 1);
  CHECK(r.stats.total.messages == 5);
}

TEST_CASE("exim zones and the local time zone", "[logs][reader]") {
  TempDir dir;
  Write(dir / "mainlog",
        "2022-04-20 14:53:58.250 +0200 [99] 1nh9qH-0008OE-RW <= a@x H=(x) [192.0.2.1] "
        "P=esmtpa A=login:a@x S=1 for r@y\n"
        "2022-04-20 14:53:59 1nh9qI-0008OE-RW <= a@x H=(x) [192.0.2.1] P=esmtpa A=login:a@x "
        "S=1 for r@y\n");
  ScopedTz tz("CET-1CEST,M3.5.0,M10.5.0/3");
  Result r = Read({dir / "mainlog"});
  CHECK(Times(r.messages) == std::vector<int64_t>{kT0 + 250, kT0 + 1000});
}

TEST_CASE("the time window, and an error for a file that cannot be opened", "[logs][reader]") {
  ScopedTz tz("UTC0");
  TempDir dir;
  Write(dir / "mainlog", kEximMainlog);
  LogReaderOptions o;
  o.since_ms = kT0 + 1;
  Result r = Read({dir / "mainlog"}, o);
  CHECK(Ids(r.messages) == std::vector<std::string>{"1nh9qL-0008OH-CC"});
  CHECK(r.stats.total.outside_window == 1);

  std::unique_ptr<LogReader> reader;
  Status s = LogReader::Open({dir / "mainlog", dir / "missing.log"}, {}, &reader);
  CHECK(s.IsNotFound());
  CHECK(s.message().find(dir / "missing.log") != std::string::npos);
  o.until_ms = o.since_ms;
  CHECK(LogReader::Open({dir / "mainlog"}, o, &reader).IsInvalid());
}

TEST_CASE("a truncated .gz: what was read comes out, the error is reported", "[logs][reader]") {
  ScopedTz tz("UTC0");
  TempDir dir;
  std::string text;
  for (int i = 0; i < 2000; ++i) {
    char line[200];
    std::snprintf(line, sizeof line,
                  "2022-04-20 10:%02d:%02d 1aa%03d-000001-AA <= a@x H=(x) [192.0.2.1] P=esmtpa "
                  "A=login:a@x S=1 for r@y\n",
                  i / 60 % 60, i % 60, i % 1000);
    text += line;
  }
  WriteGz(dir / "full.gz", text);
  std::string gz = testing::ReadFileOrEmpty(dir / "full.gz");
  Write(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  Result r = Read({dir / "cut.gz"});
  CHECK_FALSE(r.status.ok());
  CHECK(r.status.message().find("cut.gz") != std::string::npos);
  CHECK(r.messages.size() > 0);
  CHECK(r.messages.size() < 2000);
  REQUIRE_FALSE(r.stats.samples.empty());
}

}  // namespace
}  // namespace compd
