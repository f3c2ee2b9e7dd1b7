// milter_load: drives a milter through full mail transactions the way Postfix 3.7 does
// (see milter_client.h for what that means on the wire) from N concurrent connections,
// and reports messages per second, per-transaction latency, the milter's replies by kind
// and its own CPU use. With --probe it instead measures map freshness: it repeats one
// transaction to one recipient until the milter refuses (or accepts) it.
//
//   milter_load --socket inet:8890@127.0.0.1 -c 10 -m 2000 --listed-share 0.1
//   milter_load --socket unix:/run/compd/milter.sock -c 10 --duration 20 --json
//   milter_load --socket inet:8890@127.0.0.1 --probe trap1@listed.example
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "milter_client.h"

namespace compd_bench {
namespace {

using Clock = std::chrono::steady_clock;
using compd::Status;

struct Config {
  std::string socket;
  int connections = 10;
  int64_t messages = 1000;  // per connection
  double duration = 0;      // seconds; replaces messages when > 0
  int per_session = 1;      // messages per milter connection; 0: one connection throughout
  int rcpts_min = 1;
  int rcpts_max = 3;
  double listed_share = 0.1;
  std::string listed = "trap{n}@listed.example";
  int64_t listed_count = 1000000;
  std::string unlisted = "user{n}@example.net";
  int64_t unlisted_count = 1000000;
  std::string account = "customer{n}@example.com";
  int64_t accounts = 10000;
  bool header_rcpts = true;
  int headers = 4;  // header fields per message: From, To, Subject, Message-ID, then filler
  int body_bytes = 400;
  int timeout_ms = 10000;
  uint64_t seed = 1;
  bool json = false;
  std::string probe;
  std::string probe_until = "refused";
  double probe_timeout = 10;
  int probe_interval_ms = 1;
};

std::string Expand(const std::string& pattern, int64_t n) {
  std::string out;
  std::string num = std::to_string(n);
  size_t pos = 0;
  for (;;) {
    size_t at = pattern.find("{n}", pos);
    if (at == std::string::npos) break;
    out.append(pattern, pos, at - pos).append(num);
    pos = at + 3;
  }
  out.append(pattern, pos, std::string::npos);
  return out;
}

std::string Z(const std::string& s) { return s + std::string(1, '\0'); }

// What one worker saw; merged at the end.
struct Tally {
  uint64_t messages = 0;
  uint64_t sessions = 0;
  std::map<std::string, uint64_t> replies[kNumStages];
  std::map<std::string, uint64_t> outcomes;
  uint64_t listed_sent = 0, listed_refused = 0, unlisted_sent = 0, unlisted_refused = 0;
  uint64_t modifications = 0;
  uint64_t errors = 0;
  std::string first_error;
  std::vector<uint32_t> txn_us;
  std::vector<uint32_t> session_us;

  void Merge(const Tally& o) {
    messages += o.messages;
    sessions += o.sessions;
    for (int i = 0; i < kNumStages; ++i) {
      for (const auto& [k, v] : o.replies[i]) replies[i][k] += v;
    }
    for (const auto& [k, v] : o.outcomes) outcomes[k] += v;
    listed_sent += o.listed_sent;
    listed_refused += o.listed_refused;
    unlisted_sent += o.unlisted_sent;
    unlisted_refused += o.unlisted_refused;
    modifications += o.modifications;
    errors += o.errors;
    if (first_error.empty()) first_error = o.first_error;
    txn_us.insert(txn_us.end(), o.txn_us.begin(), o.txn_us.end());
    session_us.insert(session_us.end(), o.session_us.begin(), o.session_us.end());
  }
};

uint32_t Micros(Clock::time_point a, Clock::time_point b) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
  return us < 0 ? 0 : static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX));
}

class Worker {
 public:
  Worker(const Config& cfg, int id)
      : cfg_(cfg), id_(id), rng_(cfg.seed * 1000003 + id), client_(cfg.timeout_ms) {
    body_.reserve(cfg.body_bytes + 80);
    while (static_cast<int>(body_.size()) < cfg.body_bytes) {
      body_ += "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    }
  }

  // Runs until `messages` are done or `deadline` passes.
  void Run(int64_t messages, Clock::time_point deadline, bool timed) {
    int in_session = 0;
    for (int64_t done = 0; timed ? Clock::now() < deadline : done < messages; ++done) {
      if (!client_.connected()) {
        in_session = 0;
        Status st = OpenSession();
        if (!st.ok()) {
          Fail(st);
          continue;
        }
      }
      Status st = Transaction(done);
      if (!st.ok()) {
        Fail(st);
        continue;
      }
      ++tally_.messages;
      ++in_session;
      // Postfix aborts after every transaction (the ABORT leaves with the next write),
      // and once more when the SMTP client quits.
      client_.Abort();
      if (cfg_.per_session > 0 && in_session >= cfg_.per_session) EndSession();
    }
    if (client_.connected()) EndSession();
  }

  void EndSession() {
    client_.Abort();
    client_.Quit();
  }

  Tally& tally() { return tally_; }
  MilterClient& client() { return client_; }

  Status OpenSession() {
    auto t0 = Clock::now();
    Status st = client_.Connect(cfg_.socket);
    if (st.ok()) st = client_.Negotiate();
    if (!st.ok()) return st;
    ++tally_.sessions;
    std::string port(2, '\0');
    uint16_t p = static_cast<uint16_t>(40000 + id_);
    port[0] = static_cast<char>(p >> 8);
    port[1] = static_cast<char>(p & 0xff);
    Macros conn = {{"j", "mx.bench.test"},
                   {"{daemon_name}", "mx.bench.test"},
                   {"{daemon_addr}", "127.0.0.1"},
                   {"v", "Postfix 3.7.11"},
                   {"_", "unknown [127.0.0.1]"}};
    Reply r;
    st = client_.Send(Stage::kConnect, Z("[127.0.0.1]") + "4" + port + Z("127.0.0.1"), conn, &r);
    if (!st.ok()) return st;
    Count(Stage::kConnect, r);
    if (IsRefusal(r) || r.code == 'a') return Status::Unavailable("milter refused at connect");
    st = client_.Send(Stage::kHelo, Z("client" + std::to_string(id_) + ".bench.test"), {}, &r);
    if (!st.ok()) return st;
    Count(Stage::kHelo, r);
    if (IsRefusal(r) || r.code == 'a') return Status::Unavailable("milter refused at HELO");
    tally_.session_us.push_back(Micros(t0, Clock::now()));
    return Status::Ok();
  }

  // One transaction, MAIL to end of message (or to the refusal that ends it).
  Status Transaction(int64_t seq) {
    auto t0 = Clock::now();
    char qid[32];
    snprintf(qid, sizeof(qid), "4B%02X%010" PRIX64, id_ & 0xff, static_cast<uint64_t>(seq));
    std::string account = Expand(cfg_.account, Uniform(cfg_.accounts));
    Macros m = {{"{auth_type}", "PLAIN"},
                {"{auth_authen}", account},
                {"{mail_addr}", account},
                {"{mail_host}", "[127.0.0.1]"},
                {"{mail_mailer}", "smtp"}};
    Reply r;
    Status st = client_.Send(Stage::kMail, Z("<" + account + ">"), m, &r);
    if (!st.ok()) return st;
    Count(Stage::kMail, r);
    if (IsRefusal(r) || r.code == 'a' || r.code == 'd') return Done(t0, "mail-" + Kind(r));

    int n = cfg_.rcpts_min + static_cast<int>(Uniform(cfg_.rcpts_max - cfg_.rcpts_min + 1));
    std::vector<std::string> accepted;
    std::string to_header;
    for (int i = 0; i < n; ++i) {
      bool listed = std::uniform_real_distribution<double>(0, 1)(rng_) < cfg_.listed_share;
      std::string rcpt = listed ? Expand(cfg_.listed, Uniform(cfg_.listed_count))
                                : Expand(cfg_.unlisted, Uniform(cfg_.unlisted_count));
      // Postfix has no queue id yet at the first RCPT; it appears from the second on.
      Macros rm = {
          {"{rcpt_addr}", rcpt}, {"{rcpt_host}", "[127.0.0.1]"}, {"{rcpt_mailer}", "smtp"}};
      if (i > 0) rm.push_back({"i", qid});
      st = client_.Send(Stage::kRcpt, Z("<" + rcpt + ">"), rm, &r);
      if (!st.ok()) return st;
      Count(Stage::kRcpt, r);
      bool refused = IsRefusal(r);
      (listed ? tally_.listed_sent : tally_.unlisted_sent)++;
      if (refused) (listed ? tally_.listed_refused : tally_.unlisted_refused)++;
      if (!refused) accepted.push_back(rcpt);
      if (cfg_.header_rcpts) to_header += (to_header.empty() ? "" : ", ") + rcpt;
      if (r.code == 'a' || r.code == 'd') return Done(t0, "rcpt-" + Kind(r));
    }
    // Postfix answers DATA itself ("no valid recipients") when every RCPT was refused.
    if (accepted.empty()) return Done(t0, "all-rcpts-refused");
    if (to_header.empty()) to_header = accepted.front();

    Macros im = {{"i", qid}};
    st = client_.Send(Stage::kData, "", im, &r);
    if (!st.ok()) return st;
    Count(Stage::kData, r);
    if (IsRefusal(r) || r.code == 'a' || r.code == 'd') return Done(t0, "data-" + Kind(r));

    std::vector<std::pair<std::string, std::string>> headers = {
        {"From", "<" + account + ">"},
        {"To", to_header},
        {"Subject", "bench message " + std::to_string(seq)},
        {"Message-ID", "<" + std::to_string(seq) + "." + std::to_string(id_) + "@bench.test>"},
    };
    // Beyond those four, the fields a mail client and the submission server add, in turn.
    static const std::pair<const char*, const char*> kFiller[] = {
        {"Date", "Fri, 04 Dec 2026 11:50:51 +0000"},
        {"MIME-Version", "1.0"},
        {"Content-Type", "text/plain; charset=utf-8; format=flowed"},
        {"Content-Transfer-Encoding", "8bit"},
        {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Thunderbird/115.5.0"},
        {"Content-Language", "en-US"},
        {"Received",
         "from client.bench.test (unknown [127.0.0.1]) by mx.bench.test (Postfix) with ESMTPSA"},
    };
    headers.resize(std::min<size_t>(headers.size(), static_cast<size_t>(cfg_.headers)));
    for (size_t i = 0; static_cast<int>(headers.size()) < cfg_.headers; ++i) {
      const auto& [name, value] = kFiller[i % (sizeof kFiller / sizeof kFiller[0])];
      headers.emplace_back(name, value);
    }
    for (const auto& [name, value] : headers) {
      std::string v = (client_.protocol() & 0x100000) ? " " + value : value;  // HDR_LEADSPC
      st = client_.Send(Stage::kHeader, Z(name) + Z(v), im, &r);
      if (!st.ok()) return st;
      Count(Stage::kHeader, r);
      if (IsRefusal(r) || r.code == 'a' || r.code == 'd') return Done(t0, "header-" + Kind(r));
      if (r.code == 's') break;
    }
    st = client_.Send(Stage::kEoh, "", im, &r);
    if (!st.ok()) return st;
    Count(Stage::kEoh, r);
    if (IsRefusal(r) || r.code == 'a' || r.code == 'd') return Done(t0, "eoh-" + Kind(r));
    if (!body_.empty()) {
      st = client_.Send(Stage::kBody, body_, im, &r);
      if (!st.ok()) return st;
      Count(Stage::kBody, r);
      if (IsRefusal(r) || r.code == 'a' || r.code == 'd') return Done(t0, "body-" + Kind(r));
    }
    st = client_.Send(Stage::kEom, "", im, &r);
    if (!st.ok()) return st;
    Count(Stage::kEom, r);
    tally_.modifications += r.modifications.size();
    for (char c : r.modifications) {
      if (c == 'q') return Done(t0, "quarantined");
    }
    return Done(t0, "eom-" + Kind(r));
  }

 private:
  static std::string Kind(const Reply& r) { return ReplyKind(r); }

  int64_t Uniform(int64_t n) {
    return n <= 1 ? 0 : std::uniform_int_distribution<int64_t>(0, n - 1)(rng_);
  }

  void Count(Stage s, const Reply& r) {
    if (r.code != 0) tally_.replies[static_cast<int>(s)][ReplyKind(r)]++;
  }

  Status Done(Clock::time_point t0, const std::string& outcome) {
    tally_.txn_us.push_back(Micros(t0, Clock::now()));
    tally_.outcomes[outcome]++;
    return Status::Ok();
  }

  void Fail(const Status& st) {
    if (tally_.first_error.empty()) tally_.first_error = st.ToString();
    ++tally_.errors;
    client_.Close();
    // A refusing or absent milter must not turn the run into a busy loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  const Config& cfg_;
  int id_;
  std::mt19937_64 rng_;
  MilterClient client_;
  std::string body_;
  Tally tally_;
};

double Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(i, sorted.size() - 1)];
}

nlohmann::json LatencyJson(std::vector<uint32_t>* v) {
  std::sort(v->begin(), v->end());
  double sum = 0;
  for (uint32_t x : *v) sum += x;
  return {{"count", v->size()},
          {"mean", v->empty() ? 0 : sum / static_cast<double>(v->size())},
          {"p50", Percentile(*v, 0.50)},
          {"p99", Percentile(*v, 0.99)},
          {"p999", Percentile(*v, 0.999)},
          {"max", v->empty() ? 0 : v->back()}};
}

std::string Hex(uint32_t v) {
  char b[16];
  snprintf(b, sizeof(b), "0x%x", v);
  return b;
}

int RunLoad(const Config& cfg) {
  // Negotiate once up front: it reports what the milter asked for and fails early when
  // nothing listens.
  nlohmann::json negotiated;
  {
    MilterClient probe(cfg.timeout_ms);
    Status st = probe.Connect(cfg.socket);
    if (st.ok()) st = probe.Negotiate();
    if (!st.ok()) {
      fprintf(stderr, "milter_load: %s: %s\n", cfg.socket.c_str(), st.ToString().c_str());
      return 1;
    }
    nlohmann::json sym = nlohmann::json::object();
    const char* names[7] = {"connect", "helo", "envfrom", "envrcpt", "data", "eom", "eoh"};
    for (int i = 0; i < 7; ++i) {
      if (!probe.symlist(i).empty()) sym[names[i]] = probe.symlist(i);
    }
    negotiated = {{"version", probe.version()},
                  {"actions", Hex(probe.actions())},
                  {"protocol", Hex(probe.protocol())},
                  {"symlists", sym}};
    probe.Quit();
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < cfg.connections; ++i) workers.push_back(std::make_unique<Worker>(cfg, i));
  rusage ru0{}, ru1{};
  getrusage(RUSAGE_SELF, &ru0);
  auto t0 = Clock::now();
  auto deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.duration));
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back(
        [&w, &cfg, deadline] { w->Run(cfg.messages, deadline, cfg.duration > 0); });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  getrusage(RUSAGE_SELF, &ru1);
  auto tv = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  double cpu_user = tv(ru1.ru_utime) - tv(ru0.ru_utime);
  double cpu_sys = tv(ru1.ru_stime) - tv(ru0.ru_stime);

  Tally all;
  for (auto& w : workers) all.Merge(w->tally());
  nlohmann::json replies = nlohmann::json::object();
  for (int i = 0; i < kNumStages; ++i) {
    if (!all.replies[i].empty()) replies[StageName(static_cast<Stage>(i))] = all.replies[i];
  }
  double msgs = static_cast<double>(all.messages);
  nlohmann::json out = {
      {"socket", cfg.socket},
      {"connections", cfg.connections},
      {"per_session", cfg.per_session},
      {"messages", all.messages},
      {"sessions", all.sessions},
      {"seconds", secs},
      {"msgs_per_s", secs > 0 ? msgs / secs : 0},
      {"latency_us", LatencyJson(&all.txn_us)},
      {"session_us", LatencyJson(&all.session_us)},
      {"replies", replies},
      {"outcomes", all.outcomes},
      {"recipients",
       {{"listed", all.listed_sent},
        {"listed_refused", all.listed_refused},
        {"unlisted", all.unlisted_sent},
        {"unlisted_refused", all.unlisted_refused}}},
      {"modifications", all.modifications},
      {"errors", all.errors},
      {"first_error", all.first_error},
      {"client_cpu_s", cpu_user + cpu_sys},
      {"client_cpu_us_per_msg", msgs > 0 ? (cpu_user + cpu_sys) * 1e6 / msgs : 0},
      {"negotiated", negotiated},
  };
  if (cfg.json) {
    printf("%s\n", out.dump().c_str());
  } else {
    const auto& lat = out["latency_us"];
    const auto& ses = out["session_us"];
    printf("milter_load: %s, %d connections, %s, %d message(s) per milter session\n",
           cfg.socket.c_str(), cfg.connections,
           cfg.duration > 0 ? (std::to_string(cfg.duration) + " s").c_str()
                            : (std::to_string(cfg.messages) + " messages each").c_str(),
           cfg.per_session);
    printf("  negotiated   version %d, actions %s, protocol %s, macros %s\n",
           negotiated["version"].get<int>(), negotiated["actions"].get<std::string>().c_str(),
           negotiated["protocol"].get<std::string>().c_str(),
           negotiated["symlists"].dump().c_str());
    printf("  messages     %" PRIu64 " in %.2f s = %.0f msg/s (%" PRIu64 " sessions)\n",
           all.messages, secs, out["msgs_per_s"].get<double>(), all.sessions);
    printf("  transaction  p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us\n",
           lat["p50"].get<double>(), lat["p99"].get<double>(), lat["p999"].get<double>(),
           lat["max"].get<double>());
    printf("  session set-up p50 %.0f us, p99 %.0f us\n", ses["p50"].get<double>(),
           ses["p99"].get<double>());
    printf("  replies      %s\n", replies.dump().c_str());
    printf("  outcomes     %s\n", out["outcomes"].dump().c_str());
    printf("  recipients   listed %" PRIu64 " (refused %" PRIu64 "), unlisted %" PRIu64
           " (refused %" PRIu64 ")\n",
           all.listed_sent, all.listed_refused, all.unlisted_sent, all.unlisted_refused);
    printf("  client CPU   %.2f s (%.1f us/msg)\n", cpu_user + cpu_sys,
           out["client_cpu_us_per_msg"].get<double>());
    printf("  errors       %" PRIu64 "%s%s\n", all.errors, all.errors ? ", first: " : "",
           all.first_error.c_str());
  }
  return all.errors == 0 ? 0 : 1;
}

// Map freshness: one connection, one transaction after another to `probe` (MAIL, RCPT,
// ABORT), until the RCPT reply flips. Prints "ready" once the first reply is in, so a
// driver knows when to change the map, then the wall-clock time of the flip.
int RunProbe(const Config& cfg) {
  bool want_refusal = cfg.probe_until == "refused";
  MilterClient client(cfg.timeout_ms);
  Status st = client.Connect(cfg.socket);
  if (st.ok()) st = client.Negotiate();
  Reply r;
  if (st.ok()) {
    st = client.Send(Stage::kConnect,
                     Z("[127.0.0.1]") + "4" + std::string("\x9c\x40", 2) + Z("127.0.0.1"),
                     {{"j", "mx.bench.test"}}, &r);
  }
  if (st.ok()) st = client.Send(Stage::kHelo, Z("probe.bench.test"), {}, &r);
  if (!st.ok()) {
    fprintf(stderr, "milter_load --probe: %s\n", st.ToString().c_str());
    return 1;
  }
  auto start = Clock::now();
  auto limit = start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(cfg.probe_timeout));
  uint64_t attempts = 0;
  bool announced = false;
  for (;;) {
    Macros m = {{"{auth_type}", "PLAIN"}, {"{auth_authen}", "probe@bench.test"}};
    st = client.Send(Stage::kMail, Z("<probe@bench.test>"), m, &r);
    if (st.ok()) st = client.Send(Stage::kRcpt, Z("<" + cfg.probe + ">"), {{"i", "PROBE"}}, &r);
    if (!st.ok()) {
      fprintf(stderr, "milter_load --probe: %s\n", st.ToString().c_str());
      return 1;
    }
    ++attempts;
    client.Abort();
    bool refused = IsRefusal(r);
    if (refused == want_refusal) {
      auto now = std::chrono::system_clock::now();
      double epoch = std::chrono::duration<double>(now.time_since_epoch()).count();
      nlohmann::json out = {{"probe", cfg.probe},    {"until", cfg.probe_until},
                            {"flipped_at", epoch},   {"attempts", attempts},
                            {"reply", ReplyKind(r)}, {"text", r.text},
                            {"was_ready", announced}};
      printf("%s\n", out.dump().c_str());
      fflush(stdout);
      client.Quit();
      return announced ? 0 : 2;  // 2: it was already in the wanted state at the start
    }
    if (!announced) {
      printf("ready\n");
      fflush(stdout);
      announced = true;
    }
    if (Clock::now() > limit) {
      fprintf(stderr, "milter_load --probe: %s not %s after %.1f s (%" PRIu64 " attempts)\n",
              cfg.probe.c_str(), cfg.probe_until.c_str(), cfg.probe_timeout, attempts);
      return 1;
    }
    if (cfg.probe_interval_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(cfg.probe_interval_ms));
    }
  }
}

}  // namespace
}  // namespace compd_bench

int main(int argc, char** argv) {
  using compd_bench::Config;
  Config cfg;
  CLI::App app{"milter_load: a milter-protocol load generator that speaks like Postfix 3.7"};
  app.add_option("--socket,-s", cfg.socket,
                 "milter socket: inet:PORT@HOST, inet:HOST:PORT, unix:PATH")
      ->required();
  app.add_option("--connections,-c", cfg.connections, "concurrent connections")
      ->check(CLI::Range(1, 10000));
  app.add_option("--messages,-m", cfg.messages, "messages per connection")
      ->check(CLI::PositiveNumber);
  app.add_option("--duration,-d", cfg.duration, "run for SECONDS instead of a message count");
  app.add_option("--per-session", cfg.per_session,
                 "messages per milter connection (Postfix opens one per SMTP session); 0: keep "
                 "one connection");
  app.add_option("--rcpts-min", cfg.rcpts_min, "fewest recipients per message")
      ->check(CLI::Range(1, 1000));
  app.add_option("--rcpts-max", cfg.rcpts_max, "most recipients per message")
      ->check(CLI::Range(1, 1000));
  app.add_option("--listed-share", cfg.listed_share,
                 "share of recipients drawn from the listed set")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--listed", cfg.listed, "listed recipient pattern, {n} = 0..listed-count-1");
  app.add_option("--listed-count", cfg.listed_count, "how many listed addresses there are");
  app.add_option("--unlisted", cfg.unlisted, "unlisted recipient pattern");
  app.add_option("--unlisted-count", cfg.unlisted_count, "how many unlisted addresses");
  app.add_option("--account", cfg.account, "{auth_authen} pattern");
  app.add_option("--accounts", cfg.accounts, "how many accounts send");
  app.add_flag("!--no-header-rcpts", cfg.header_rcpts,
               "do not list the recipients in the To header");
  app.add_option("--headers", cfg.headers,
                 "header fields per message: From, To, Subject, Message-ID, then Date, "
                 "MIME-Version, ... (fewer than 4: the first ones only)")
      ->check(CLI::Range(0, 1000));
  app.add_option("--body-bytes", cfg.body_bytes, "body size (sent unless SMFIP_NOBODY)");
  app.add_option("--timeout-ms", cfg.timeout_ms, "per-reply timeout");
  app.add_option("--seed", cfg.seed, "random seed");
  app.add_flag("--json", cfg.json, "print one JSON object instead of text");
  app.add_option("--probe", cfg.probe,
                 "freshness probe: repeat a transaction to this recipient until it flips");
  app.add_option("--probe-until", cfg.probe_until, "refused (after mapctl add) or accepted")
      ->check(CLI::IsMember({"refused", "accepted"}));
  app.add_option("--probe-timeout", cfg.probe_timeout, "give up after SECONDS");
  app.add_option("--probe-interval-ms", cfg.probe_interval_ms, "pause between attempts");
  CLI11_PARSE(app, argc, argv);
  if (cfg.rcpts_max < cfg.rcpts_min) {
    fprintf(stderr, "milter_load: --rcpts-max is below --rcpts-min\n");
    return 2;
  }
  if (!cfg.probe.empty()) return compd_bench::RunProbe(cfg);
  return compd_bench::RunLoad(cfg);
}
