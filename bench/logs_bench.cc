// logs_bench: how fast LogReader turns MTA logs into messages, parsing alone (no engine).
// It writes a synthetic log first (not timed), then reads it back and reports messages and
// megabytes per second, wall and CPU time of the one thread.
//
//   logs_bench [--format exim|postfix] [--messages 1000000] [--accounts 14000]
//              [--gzip] [--no-for] [--dir /tmp] [--keep]
//
// Exim lines are what Exim 4.96 writes with +received_recipients +subject
// +incoming_port: one arrival line, a delivery line per recipient and `Completed`; 1 in
// 10 messages is unauthenticated (skipped). --no-for leaves out the `for` list, so the
// recipients must be joined from the delivery lines. Postfix messages are the usual
// smtpd/cleanup/qmgr/smtp/removed lines of a submission.
// docs/performance.md ("Log reading") has the figures.
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compd/logs/log_reader.h"

namespace {

struct Options {
  std::string format = "exim";
  long messages = 1000000;
  int accounts = 14000;
  bool gzip = false;
  bool with_for = true;
  std::string dir = "/tmp";
  bool keep = false;
};

double CpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

class Out {
 public:
  Out(const std::string& path, bool gz) {
    if (gz) {
      gz_ = gzopen(path.c_str(), "wb1");
    } else {
      f_ = std::fopen(path.c_str(), "wb");
    }
  }
  ~Out() {
    Flush();
    if (gz_ != nullptr) gzclose(gz_);
    if (f_ != nullptr) std::fclose(f_);
  }
  bool ok() const { return gz_ != nullptr || f_ != nullptr; }
  std::string& buf() { return buf_; }
  void MaybeFlush() {
    if (buf_.size() > (1 << 20)) Flush();
  }

 private:
  void Flush() {
    if (gz_ != nullptr) gzwrite(gz_, buf_.data(), static_cast<unsigned>(buf_.size()));
    if (f_ != nullptr) std::fwrite(buf_.data(), 1, buf_.size(), f_);
    buf_.clear();
  }
  gzFile gz_ = nullptr;
  FILE* f_ = nullptr;
  std::string buf_;
};

void Stamp(time_t t, bool syslog, std::string* out) {
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[32];
  strftime(b, sizeof b, syslog ? "%b %d %H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
  out->append(b);
}

std::string EximId(long i, int part) {
  static const char kAlpha[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string id = "1nh9qH-0008OE-RW";
  long v = i * 7 + part;
  for (int k = 0; k < 6; ++k, v /= 62) id[k] = kAlpha[v % 62];
  v = i;
  for (int k = 7; k < 13; ++k, v /= 62) id[k] = kAlpha[v % 62];
  return id;
}

void Generate(const Options& o, const std::string& path) {
  Out out(path, o.gzip);
  if (!out.ok()) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::mt19937_64 rng(42);
  time_t t = 1776000000;  // April 2026
  char b[1024];
  for (long i = 0; i < o.messages; ++i) {
    t += static_cast<time_t>(rng() % 3);
    int acct = static_cast<int>(rng() % o.accounts);
    int nrcpt = 1 + static_cast<int>(rng() % 3);
    bool auth = rng() % 10 != 0;
    unsigned ip = static_cast<unsigned>(rng());
    std::string& s = out.buf();
    if (o.format == "exim") {
      std::string id = EximId(i, 0);
      Stamp(t, false, &s);
      std::snprintf(b, sizeof b,
                    " %s <= user%d@customer%d.example H=host-%u.isp.example (pc-%d) "
                    "[%u.%u.%u.%u]:%u I=[192.0.2.1]:587 P=esmtpsa "
                    "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no %s%d@customer%d.example S=%u "
                    "id=%ld.%d@pc-%d T=\"Re: \\\"offer\\\" number %ld\"",
                    id.c_str(), acct, acct % 50, ip, acct, ip >> 24, (ip >> 16) & 255,
                    (ip >> 8) & 255, ip & 255, 40000 + static_cast<unsigned>(i % 20000),
                    auth ? "A=login:user" : "U=nobody", acct, acct % 50,
                    500 + static_cast<unsigned>(rng() % 20000), i, acct, acct, i);
      s.append(b);
      if (o.with_for) {
        s.append(" for");
        for (int r = 0; r < nrcpt; ++r) {
          std::snprintf(b, sizeof b, " rcpt%d.%lu@remote%d.example", r, rng() % 100000, r);
          s.append(b);
        }
      }
      s.push_back('\n');
      for (int r = 0; r < nrcpt; ++r) {
        Stamp(t, false, &s);
        std::snprintf(b, sizeof b,
                      " %s %s rcpt%d@remote%d.example R=dnslookup T=remote_smtp "
                      "H=mx.remote%d.example [198.51.100.%d] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 "
                      "CV=yes C=\"250 2.0.0 OK\"\n",
                      id.c_str(), r == 0 ? "=>" : "->", r, r, r, r + 1);
        s.append(b);
      }
      Stamp(t, false, &s);
      s.append(" " + id + " Completed\n");
    } else {
      char qid[32];
      std::snprintf(qid, sizeof qid, "%010lX", 0x1000000000L + i);
      std::string head;
      auto line = [&](const char* prog, int pid, const std::string& text) {
        Stamp(t, true, &s);
        std::snprintf(b, sizeof b, " mx1 postfix/%s[%d]: %s\n", prog, pid, text.c_str());
        s.append(b);
      };
      std::snprintf(b, sizeof b, "connect from host-%u.isp.example[%u.%u.%u.%u]", ip, ip >> 24,
                    (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
      line("submission/smtpd", 1000 + acct % 100, b);
      std::snprintf(b, sizeof b,
                    "%s: client=host-%u.isp.example[%u.%u.%u.%u]%s%d@customer%d.example", qid, ip,
                    ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255,
                    auth ? ", sasl_method=LOGIN, sasl_username=user" : ", x=", acct, acct % 50);
      line("submission/smtpd", 1000 + acct % 100, b);
      std::snprintf(b, sizeof b, "%s: message-id=<%ld.%d@pc-%d>", qid, i, acct, acct);
      line("cleanup", 2000, b);
      std::snprintf(b, sizeof b,
                    "%s: from=<user%d@customer%d.example>, size=%u, nrcpt=%d (queue active)", qid,
                    acct, acct % 50, 500 + static_cast<unsigned>(rng() % 20000), nrcpt);
      line("qmgr", 900, b);
      for (int r = 0; r < nrcpt; ++r) {
        std::snprintf(
            b, sizeof b,
            "%s: to=<rcpt%d@remote%d.example>, relay=mx.remote%d.example[198.51.100.%d]:25, "
            "delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 OK)",
            qid, r, r, r, r + 1);
        line("smtp", 3000 + r, b);
      }
      line("qmgr", 900, std::string(qid) + ": removed");
    }
    out.MaybeFlush();
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool v = i + 1 < argc;
    if (a == "--format" && v) {
      o.format = argv[++i];
    } else if (a == "--messages" && v) {
      o.messages = std::atol(argv[++i]);
    } else if (a == "--accounts" && v) {
      o.accounts = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--dir" && v) {
      o.dir = argv[++i];
    } else if (a == "--gzip") {
      o.gzip = true;
    } else if (a == "--no-for") {
      o.with_for = false;
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: logs_bench [--format exim|postfix] [--messages N] [--accounts N] "
                   "[--gzip] [--no-for] [--dir DIR] [--keep]\n");
      return 2;
    }
  }
  if (o.format != "exim" && o.format != "postfix") {
    std::fprintf(stderr, "logs_bench: --format exim or postfix\n");
    return 2;
  }
  std::string path =
      o.dir + "/logs_bench." + std::to_string(getpid()) + "." + o.format + (o.gzip ? ".gz" : "");
  auto g0 = std::chrono::steady_clock::now();
  Generate(o, path);
  double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count();

  compd::LogReaderOptions ro;
  ro.reference_ms = 1790000000000;  // after the generated months, for Postfix's year
  std::unique_ptr<compd::LogReader> reader;
  compd::Status s = compd::LogReader::Open({path}, ro, &reader);
  if (!s.ok()) {
    std::fprintf(stderr, "logs_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  compd::Message m;
  long n = 0, recipients = 0;
  while (reader->Next(&m)) {
    ++n;
    recipients += static_cast<long>(m.recipients.size());
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = CpuSeconds() - cpu0;
  const compd::LogReadStats& st = reader->stats();
  FILE* f = std::fopen(path.c_str(), "rb");
  std::fseek(f, 0, SEEK_END);
  double mb = static_cast<double>(std::ftell(f)) / 1e6;
  std::fclose(f);
  std::printf(
      "format=%s gzip=%d for=%d file=%.0fMB (generated in %.1fs) lines=%llu\n"
      "messages read=%ld (recipients %ld), unauthenticated=%llu, not understood=%llu\n"
      "wall %.2fs, cpu %.2fs: %.0f messages/s (cpu), %.0f lines/s, %.0f MB/s of file\n",
      o.format.c_str(), o.gzip, o.with_for, mb, gen_s,
      static_cast<unsigned long long>(st.total.lines), n, recipients,
      static_cast<unsigned long long>(st.total.unauthenticated),
      static_cast<unsigned long long>(st.total.not_understood), wall, cpu, n / cpu,
      st.total.lines / cpu, mb / cpu);
  if (!o.keep) unlink(path.c_str());
  if (st.total.not_understood != 0 || n == 0) {
    std::fprintf(stderr, "logs_bench: the reader did not understand the generated log\n");
    for (const auto& sample : st.samples) std::fprintf(stderr, "  %s\n", sample.c_str());
    return 1;
  }
  return 0;
}
