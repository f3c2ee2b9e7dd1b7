#include "compd/base/sentinel.h"

#include <cstdio>

#include "compd/base/net.h"
#include "compd/base/text.h"

namespace compd {

namespace {

// How long one wait for a `+switch-master` message lasts: bounds how long Stop takes.
constexpr std::chrono::milliseconds kReadSlice{200};
// Pause after every sentinel refused the subscription, before going round again.
constexpr std::chrono::milliseconds kRoundPause{500};

// A port of a sentinel's reply or message: 1..65535.
bool ParsePort(std::string_view s, int* out) {
  const int n = PortDigits(s);
  if (n < 1 || n > 65535) return false;
  *out = n;
  return true;
}

std::string Seconds(std::chrono::nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

Status ParseSentinelList(std::string_view list, std::vector<HostPort>* out) {
  std::vector<HostPort> result;
  for (std::string_view item : SplitList(list, ",")) {
    HostPort hp;
    Status s = ParseHostPort(item, &hp);
    if (!s.ok()) return s;
    result.push_back(std::move(hp));
  }
  if (result.empty()) return Status::Invalid("no sentinel given (HOST:PORT,HOST:PORT,...)");
  *out = std::move(result);
  return Status::Ok();
}

Status ParseMasterAddrReply(const RedisReply& reply, HostPort* out) {
  if (reply.is_nil()) return Status::NotFound("the sentinel does not know this master");
  if (reply.type == RedisReply::Type::kError) return Status::Unavailable(reply.str);
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2 ||
      reply.elements[0].type != RedisReply::Type::kString || reply.elements[0].str.empty() ||
      reply.elements[1].type != RedisReply::Type::kString) {
    return Status::Unavailable("malformed reply to SENTINEL get-master-addr-by-name");
  }
  HostPort hp;
  hp.host = reply.elements[0].str;
  if (!ParsePort(reply.elements[1].str, &hp.port)) {
    return Status::Unavailable("SENTINEL get-master-addr-by-name: bad port '" +
                               reply.elements[1].str + "'");
  }
  *out = std::move(hp);
  return Status::Ok();
}

Status ParseRoleReply(const RedisReply& reply, std::string* role) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.empty() ||
      reply.elements[0].type != RedisReply::Type::kString) {
    return Status::Unavailable("malformed reply to ROLE");
  }
  *role = reply.elements[0].str;
  return Status::Ok();
}

bool ParseSwitchMaster(std::string_view payload, std::string_view master, HostPort* to) {
  std::vector<std::string_view> words;
  while (!payload.empty()) {
    size_t space = payload.find(' ');
    std::string_view w = payload.substr(0, space);
    if (!w.empty()) words.push_back(w);
    payload = space == std::string_view::npos ? std::string_view() : payload.substr(space + 1);
  }
  if (words.size() != 5 || words[0] != master) return false;
  HostPort hp;
  hp.host = std::string(words[3]);
  if (!ParsePort(words[4], &hp.port)) return false;
  *to = std::move(hp);
  return true;
}

Sentinel::Sentinel(SentinelOptions options)
    : options_(std::move(options)),
      current_(std::make_shared<const Primary>()),
      lost_since_(std::chrono::steady_clock::now()) {}

Sentinel::~Sentinel() { Stop(); }

std::string Sentinel::Describe() const {
  std::string list;
  for (const HostPort& hp : options_.sentinels) list += (list.empty() ? "" : ",") + hp.ToString();
  return "master " + options_.master + " via sentinels " + list;
}

void Sentinel::Log(LogLevel level, const std::string& message) const {
  LogFn log;
  {
    std::lock_guard<std::mutex> lock(mu_);
    log = log_;
  }
  if (log) log(level, message);
}

std::shared_ptr<const Primary> Sentinel::Current() const { return std::atomic_load(&current_); }

uint64_t Sentinel::Update(const HostPort& address, const std::string& source) {
  std::string message;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto cur = std::atomic_load(&current_);
    if (cur->generation > 0 && cur->address == address) return cur->generation;
    auto next = std::make_shared<Primary>();
    next->address = address;
    next->generation = cur->generation + 1;
    generation = next->generation;
    if (cur->generation > 0) {
      ++switches_;
      message = "redis: the primary of " + options_.master + " moved from " +
                cur->address.ToString() + " to " + address.ToString() + " (" + source +
                "); reconnecting";
    } else {
      message = "redis: the primary of " + options_.master + " is " + address.ToString() + " (" +
                source + ")";
    }
    std::atomic_store(&current_, std::shared_ptr<const Primary>(std::move(next)));
    generation_.store(generation, std::memory_order_release);
  }
  Log(generation > 1 ? LogLevel::kWarning : LogLevel::kInfo, message);
  return generation;
}

Status Sentinel::Resolve(Primary* out) {
  std::lock_guard<std::mutex> one(resolve_mu_);
  const size_t n = options_.sentinels.size();
  size_t first = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = next_sentinel_;
  }
  std::string why;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (first + k) % n;
    const HostPort& hp = options_.sentinels[i];
    RedisUrl url;
    url.host = hp.host;
    url.port = hp.port;
    url.password = options_.password;
    RedisClient client(std::move(url), options_.timeout);
    RedisReply reply;
    Status s = client.Command({"SENTINEL", "get-master-addr-by-name", options_.master}, &reply);
    HostPort address;
    if (s.ok()) s = ParseMasterAddrReply(reply, &address);
    if (!s.ok()) {
      // A dead sentinel is skipped; the next one is asked at once.
      std::lock_guard<std::mutex> lock(mu_);
      ++sentinel_errors_;
      why += (why.empty() ? "" : "; ") + hp.ToString() + ": " + s.message();
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      next_sentinel_ = i;
    }
    out->address = address;
    out->generation = Update(address, "sentinel " + hp.ToString());
    return Status::Ok();
  }
  ReportLost(generation(), "no sentinel answered");
  return Status::Unavailable("redis " + Describe() + ": no sentinel answered (" + why + ")");
}

void Sentinel::ReportLost(uint64_t generation, const std::string& why) {
  std::string message;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation != generation_.load() || lost_) return;
    lost_ = true;
    lost_since_ = std::chrono::steady_clock::now();
    message = "redis: lost the primary " + std::atomic_load(&current_)->address.ToString() +
              " of " + options_.master + " (" + why + "); asking the sentinels";
  }
  Log(LogLevel::kWarning, message);
}

void Sentinel::ReportConfirmed(uint64_t generation) {
  std::string message;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation != generation_.load() || !lost_) return;
    lost_ = false;
    auto gap = std::chrono::steady_clock::now() - lost_since_;
    without_total_ += std::chrono::duration_cast<std::chrono::nanoseconds>(gap);
    message = "redis: on the primary " + std::atomic_load(&current_)->address.ToString() + " of " +
              options_.master + " (" + Seconds(gap) + " without one)";
  }
  Log(LogLevel::kInfo, message);
}

void Sentinel::Start(LogFn log) {
  std::lock_guard<std::mutex> lock(mu_);
  log_ = std::move(log);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread(&Sentinel::Subscriber, this);
}

void Sentinel::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Sentinel::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, d, [&] { return stop_; });
}

void Sentinel::Subscriber() {
  // Nothing may escape a thread; a failure here only costs the fast path (clients still
  // find a new primary through their own errors).
  try {
    const size_t n = options_.sentinels.size();
    for (size_t i = 0; !WaitFor(std::chrono::milliseconds(0)); ++i) {
      const HostPort& hp = options_.sentinels[i % n];
      RedisUrl url;
      url.host = hp.host;
      url.port = hp.port;
      url.password = options_.password;
      RedisClient client(std::move(url), options_.timeout);
      Status s = client.Subscribe({"+switch-master"});
      if (!s.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++sentinel_errors_;
        }
        if ((i + 1) % n == 0 && WaitFor(kRoundPause)) break;
        continue;
      }
      // A switch announced while nobody listened was a message nobody heard.
      Primary p;
      Resolve(&p);
      while (!WaitFor(std::chrono::milliseconds(0))) {
        std::string channel, payload;
        s = client.ReadMessage(kReadSlice, &channel, &payload);
        if (s.IsNotFound()) continue;
        if (!s.ok()) break;  // this sentinel went away: the next one
        HostPort to;
        if (ParseSwitchMaster(payload, options_.master, &to)) {
          Update(to, "+switch-master from sentinel " + hp.ToString());
        }
      }
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("redis: sentinel subscriber stopped: ") + e.what());
  } catch (...) {
    Log(LogLevel::kError, "redis: sentinel subscriber stopped by an unknown exception");
  }
}

SentinelStats Sentinel::stats() const {
  SentinelStats st;
  auto cur = Current();
  if (cur->generation > 0) st.primary = cur->address.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  st.primary_up = !lost_;
  st.switches = switches_;
  auto total = without_total_;
  if (lost_) total += std::chrono::steady_clock::now() - lost_since_;
  st.seconds_without_primary = std::chrono::duration<double>(total).count();
  st.sentinel_errors = sentinel_errors_;
  return st;
}

}  // namespace compd
