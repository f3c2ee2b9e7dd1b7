#include "compd/detect/discovery.h"

#include <algorithm>
#include <chrono>

#include "compd/accounts/accounts.h"
#include "compd/base/json_fields.h"
#include "compd/base/text.h"
#include "compd/base/utc_time.h"
#include "compd/detect/features.h"
#include "compd/map/address.h"
#include "compd/map/envelope_address.h"

namespace compd {

namespace {

// Sightings are swept at most this often.
constexpr int64_t kPruneEveryMs = 600 * 1000;
// Sightings kept per recipient: a botnet's list address must not grow without bound.
constexpr size_t kMaxSightings = 64;

// FNV-1a, 64 bits, over the lower-cased account and recipient (what AccountKey and
// CanonicalAddress give), lowered here so that no copy is made per message: the pair
// memory keeps hashes, not addresses (8 bytes of key per pair; a collision can only hide
// a first mail, never invent one).
uint64_t PairHash(std::string_view account, std::string_view recipient) {
  uint64_t h = 1469598103934665603ULL;
  auto add = [&h](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(AsciiLower(c));
      h *= 1099511628211ULL;
    }
  };
  add(account);
  h ^= 0xff;
  h *= 1099511628211ULL;
  add(recipient);
  return h;
}

}  // namespace

size_t UnrelatedDomains(const std::vector<Sighting>& sightings) {
  std::vector<const std::string*> families;
  for (const Sighting& s : sightings) {
    bool related = false;
    for (const std::string* f : families) {
      if (SameDomainFamily(*f, s.domain)) related = true;
    }
    if (!related) families.push_back(&s.domain);
  }
  return families.size();
}

const char* DiscoveryModeName(DiscoveryMode mode) {
  switch (mode) {
    case DiscoveryMode::kOff:
      return "off";
    case DiscoveryMode::kPropose:
      return "propose";
    case DiscoveryMode::kAdd:
      return "add";
  }
  return "propose";
}

Status DiscoveryOptions::FromConfig(const Config& config, const EngineOptions& engine,
                                    DiscoveryOptions* out) {
  DiscoveryOptions o;
  const std::string mode = config.GetString("discovery");
  if (mode == "off") {
    o.mode = DiscoveryMode::kOff;
  } else if (mode == "add") {
    o.mode = DiscoveryMode::kAdd;
  } else if (mode == "propose") {
    o.mode = DiscoveryMode::kPropose;
  } else {
    return Status::Invalid("discovery: expected off, propose or add, got '" + mode + "'");
  }
  o.window_ms = config.GetDurationMs("discovery_window");
  o.retro_window_ms = config.GetDurationMs("retro_window");
  o.min_domains = static_cast<int>(config.GetInt("discovery_min_domains"));
  o.test_points = static_cast<int>(config.GetInt("discovery_test_points"));
  o.test_max_size = engine.test_max_size;
  o.local_domains = engine.local_domains;
  if (o.retro_window_ms < o.window_ms) {
    return Status::Invalid(
        "discovery_window: must not be longer than retro_window (the memory that says "
        "whether a mail was the account's first to the recipient)");
  }
  *out = std::move(o);
  return Status::Ok();
}

nlohmann::json Sighting::ToJson() const {
  nlohmann::json j = {
      {"account", account}, {"time", FormatUnixMillis(time_ms)}, {"points", points}};
  if (engine_signal) j["test_message"] = true;
  if (!node.empty()) j["node"] = node;
  if (!client_ip.empty()) j["client_ip"] = client_ip;
  if (!helo.empty()) j["helo"] = helo;
  if (!subject.empty()) j["subject"] = subject;
  if (size >= 0) j["size"] = size;
  if (!queue_id.empty()) j["queue_id"] = queue_id;
  if (!origin.empty()) j["origin"] = origin;
  return j;
}

Sighting Sighting::FromJson(const nlohmann::json& j, const std::string& recipient,
                            int64_t time_ms) {
  Sighting s;
  if (!j.is_object()) return s;
  s.recipient = recipient;
  s.time_ms = time_ms;
  auto str = [&j](const char* name) { return JsonString(j, name); };
  auto num = [&j](const char* name, int64_t fallback) {
    auto it = j.find(name);
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
  };
  s.account = str("account");
  s.domain = DomainOf(s.account);
  s.node = str("node");
  s.client_ip = str("client_ip");
  s.helo = str("helo");
  s.subject = str("subject");
  s.queue_id = str("queue_id");
  s.origin = str("origin");
  s.size = num("size", -1);
  s.points = static_cast<int>(num("points", 0));
  auto t = j.find("test_message");
  s.engine_signal = t != j.end() && t->is_boolean() && t->get<bool>();
  return s;
}

bool Candidate::Completes(const std::vector<Sighting>& sightings, int min_domains, int64_t now_ms,
                          Candidate* out) {
  if (sightings.empty() || static_cast<int>(UnrelatedDomains(sightings)) < min_domains) {
    return false;
  }
  out->recipient = sightings.front().recipient;
  out->time_ms = now_ms;
  out->sightings = sightings;
  return true;
}

nlohmann::json Candidate::Evidence() const {
  nlohmann::json list = nlohmann::json::array();
  for (const Sighting& s : sightings) list.push_back(s.ToJson());
  return {{"recipient", recipient},
          {"time", FormatUnixMillis(time_ms)},
          {"domains", UnrelatedDomains(sightings)},
          {"sightings", std::move(list)}};
}

std::vector<Reaction> Candidate::AccountReactions(const ReactionTable& table) const {
  std::vector<Reaction> out;
  std::unordered_set<std::string> seen;
  const nlohmann::json evidence = Evidence();
  for (const Sighting& s : sightings) {
    if (!seen.insert(AccountKey(s.account)).second) continue;
    Reaction r;
    r.time_ms = time_ms;
    r.account = s.account;
    r.kind = table[SignalId::kHit];
    Signal sig;
    sig.id = SignalId::kHit;
    sig.evidence["hits"] = nlohmann::json::array(
        {{{"recipient", recipient}, {"entry", recipient}, {"source", "discovered"}}});
    sig.evidence["discovered"] = evidence;
    r.signals.push_back(std::move(sig));
    r.queue_id = s.queue_id;
    r.node = s.node;
    r.client_ip = s.client_ip;
    r.origin = s.origin;
    // The same on every node that completes the same candidate.
    r.event_key = "discovered:" + recipient;
    out.push_back(std::move(r));
  }
  return out;
}

bool HasTestSignal(const std::vector<Reaction>& reactions) {
  for (const Reaction& r : reactions) {
    for (const Signal& s : r.signals) {
      if (s.id == SignalId::kTestMessage) return true;
    }
  }
  return false;
}

Discovery::Discovery(DiscoveryOptions options) : options_(std::move(options)) {
  for (const std::string& d : options_.local_domains) local_domains_.insert(d);
}

void Discovery::Suppress(const std::string& recipient) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string r = CanonicalAddress(recipient);
  done_.insert(r);
  sightings_.erase(r);
}

void Discovery::Remember(const Message& m) {
  if (m.account.empty()) return;
  std::string address;
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& raw : m.recipients) {
    if (!EnvelopeAddress(raw, &address).ok() || address.empty()) continue;
    pairs_.Touch(PairHash(m.account, address), m.time_ms);
  }
}

bool Discovery::Mailed(const std::string& account, const std::string& recipient) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pairs_.Contains(PairHash(account, recipient));
}

DiscoveryStats Discovery::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  DiscoveryStats s = stats_;
  s.pairs = pairs_.size();
  return s;
}

void Discovery::Prune(int64_t now_ms) {
  if (now_ms - last_prune_ms_ < kPruneEveryMs) return;
  last_prune_ms_ = now_ms;
  // The pair memory is large (a provider's whole week): sweep it only every sixteenth of
  // retro_window, which keeps at most that much extra; Observe compares times anyway.
  if (now_ms - last_pair_prune_ms_ >= options_.retro_window_ms / 16) {
    last_pair_prune_ms_ = now_ms;
    pairs_.DropBefore(now_ms - options_.retro_window_ms);
  }
  const int64_t from = now_ms - options_.window_ms;
  for (auto it = sightings_.begin(); it != sightings_.end();) {
    std::vector<Sighting>& v = it->second;
    v.erase(
        std::remove_if(v.begin(), v.end(), [from](const Sighting& s) { return s.time_ms < from; }),
        v.end());
    it = v.empty() ? sightings_.erase(it) : std::next(it);
  }
}

bool Discovery::Sight(const Message& m, int64_t now_ms, bool engine_test_signal,
                      const std::function<bool(const std::string&)>& is_local, Sighting* out) {
  const Look look = Features(m, is_local);
  std::lock_guard<std::mutex> lock(mu_);
  Prune(now_ms);
  return SightLocked(m, look, now_ms, engine_test_signal, out);
}

std::vector<Candidate> Discovery::Observe(const Message& m, int64_t now_ms, bool engine_test_signal,
                                          const std::function<bool(const std::string&)>& is_local) {
  std::vector<Candidate> out;
  Sighting s;
  const Look look = Features(m, is_local);
  std::lock_guard<std::mutex> lock(mu_);
  Prune(now_ms);
  if (!SightLocked(m, look, now_ms, engine_test_signal, &s)) return out;
  const std::string r = s.recipient;
  std::vector<Sighting>& v = sightings_[r];
  const int64_t from = now_ms - options_.window_ms;
  v.erase(
      std::remove_if(v.begin(), v.end(), [from](const Sighting& x) { return x.time_ms < from; }),
      v.end());
  const std::string account_key = AccountKey(s.account);
  for (const Sighting& x : v) {
    if (AccountKey(x.account) == account_key) return out;  // one account counts once
  }
  if (v.size() >= kMaxSightings) v.erase(v.begin());
  v.push_back(std::move(s));
  Candidate c;
  if (!Candidate::Completes(v, options_.min_domains, now_ms, &c)) return out;
  sightings_.erase(r);
  done_.insert(r);
  ++stats_.candidates;
  out.push_back(std::move(c));
  return out;
}

Discovery::Look Discovery::Features(const Message& m,
                                    const std::function<bool(const std::string&)>& is_local) const {
  Look look;
  if (options_.mode == DiscoveryMode::kOff || m.account.empty()) return look;
  look.learn = true;
  look.pairs.reserve(m.recipients.size());
  std::string address;
  for (const std::string& raw : m.recipients) {
    if (!EnvelopeAddress(raw, &address).ok() || address.empty()) continue;
    look.pairs.push_back(PairHash(m.account, address));
    if (look.pairs.size() == 1) look.rcpt = address;
  }
  // Test-like: one external recipient and the engine's signal or enough features.
  if (look.pairs.size() == 1) {
    look.rcpt = CanonicalAddress(look.rcpt);
    look.account_domain = DomainOf(m.account);
    const std::string rcpt_domain = DomainOf(look.rcpt);
    const bool external =
        !rcpt_domain.empty() && !SameDomainFamily(rcpt_domain, look.account_domain) &&
        !local_domains_.count(rcpt_domain) && !(is_local && is_local(rcpt_domain));
    if (external) {
      look.external = true;
      if (m.size >= 0 && m.size <= options_.test_max_size) look.points += 2;
      look.points += HeloPoints(ClassifyHelo(m.helo));  // the engine's HELO points
      if (!m.subject.empty() && RandomLookingSubject(m.subject)) look.points += 3;
      // Only log readers that see the client's own Message-ID can tell it is missing.
      if (m.source == "exim-log" && m.message_id.empty()) look.points += 1;
    }
  }
  return look;
}

// Called with mu_ held; `look` comes from Features, computed before taking it.
bool Discovery::SightLocked(const Message& m, const Look& look, int64_t now_ms,
                            bool engine_test_signal, Sighting* out) {
  if (!look.learn) return false;
  const int points = look.points;
  const bool test_like = look.external && (engine_test_signal || points >= options_.test_points);

  bool first = false;
  for (uint64_t pair : look.pairs) {
    const int64_t before = pairs_.Touch(pair, now_ms);
    first = first || before < 0 || now_ms - before > options_.retro_window_ms;
  }
  if (!test_like) return false;
  ++stats_.test_like;
  if (!first) return false;
  ++stats_.first_mails;
  if (done_.count(look.rcpt)) return false;
  Sighting& s = *out;
  s = Sighting();
  s.recipient = look.rcpt;
  s.account = m.account;
  s.domain = look.account_domain;
  s.time_ms = now_ms;
  s.node = m.node;
  s.client_ip = m.client_ip;
  s.helo = m.helo;
  s.subject = m.subject;
  s.queue_id = m.queue_id;
  s.origin = m.origin;
  s.size = m.size;
  s.points = points;
  s.engine_signal = engine_test_signal;
  return true;
}

}  // namespace compd
