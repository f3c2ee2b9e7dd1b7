#include "compd/detect/engine.h"

#include <algorithm>
#include <functional>
#include <sstream>

#include "compd/accounts/accounts.h"
#include "compd/base/text.h"
#include "compd/detect/features.h"
#include "compd/map/address.h"
#include "compd/map/envelope_address.h"
#include "compd/watch/volume.h"

namespace compd {

namespace {

constexpr int64_t kDaySec = 86400;
// A known group's last use is shared again only after this long: enough for
// known_network_days, and it keeps the live store's traffic to new facts.
constexpr int64_t kRefreshMs = 6 * 3600 * 1000;
constexpr size_t kMaxHourNetworks = 256;
constexpr size_t kMaxGroups = 4096;  // per account: a botnet must not grow it without bound

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text + ",") {
    if (c == ',' || c == ' ' || c == '\t') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

// The domain of an address as it is written (no copy); empty without '@'.
std::string_view DomainView(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

// `domain` in lower case in `buf` (no allocation), or false when it does not fit (a domain
// has at most 253 characters).
bool LowerInto(std::string_view domain, char (&buf)[256], std::string_view* out) {
  if (domain.size() >= sizeof buf) return false;
  for (size_t i = 0; i < domain.size(); ++i) buf[i] = AsciiLower(domain[i]);
  *out = std::string_view(buf, domain.size());
  return true;
}

// A signal that fired, for the window: its full weight and its evidence.
WindowEntry Full(const Signal& s, int64_t now_ms) {
  WindowEntry w;
  w.id = s.id;
  w.time_ms = now_ms;
  w.evidence = s.evidence;
  return w;
}

bool QuietSignal(SignalId id) {
  return id == SignalId::kTestMessage || id == SignalId::kNewNetworks ||
         id == SignalId::kDisplaySpoof;
}

}  // namespace

Status EngineOptions::FromConfig(const Config& config, EngineOptions* out) {
  EngineOptions o;
  Status s = ReactionTable::FromConfig(config, &o.reactions);
  if (!s.ok()) return s;
  o.local_domains = SplitList(config.GetString("local_domains"));
  o.test_max_size = config.GetInt("test_message_max_size");
  o.test_score = static_cast<int>(config.GetInt("test_message_score"));
  o.new_networks_window_ms = config.GetDurationMs("new_networks_window");
  o.new_networks_min = static_cast<int>(config.GetInt("new_networks_min"));
  o.group_ipv4_prefix = static_cast<int>(config.GetInt("new_networks_group_ipv4_prefix"));
  o.group_ipv6_prefix = static_cast<int>(config.GetInt("new_networks_group_ipv6_prefix"));
  o.ipv4_prefix = static_cast<int>(config.GetInt("volume_ipv4_prefix"));
  o.ipv6_prefix = static_cast<int>(config.GetInt("volume_ipv6_prefix"));
  s = ParseCidrList(config.GetString("own_networks"), &o.own_networks);
  if (!s.ok()) return Status::Invalid("own_networks: " + s.message());
  o.known_network_ms = config.GetInt("known_network_days") * kDaySec * 1000;
  o.quiet_ms = config.GetDurationMs("signal_quiet_period");
  if (o.group_ipv4_prefix > o.ipv4_prefix || o.group_ipv6_prefix > o.ipv6_prefix) {
    return Status::Invalid(
        "new_networks_group_ipv4_prefix/new_networks_group_ipv6_prefix: a group must not be "
        "smaller than a network (volume_ipv4_prefix/volume_ipv6_prefix)");
  }
  s = AnomalyRules::FromConfig(config, &o.anomaly);
  if (!s.ok()) return s;
  s = SignalWindowOptions::FromConfig(config, &o.combined);
  if (!s.ok()) return s;
  *out = std::move(o);
  return Status::Ok();
}

Engine::Engine(EngineOptions options, std::shared_ptr<DetectState> state)
    : options_(std::move(options)), state_(std::move(state)) {
  for (const std::string& d : options_.local_domains) local_domains_.insert(d);
}

bool Engine::Quiet(AccountState& a, SignalId id, int64_t now_ms) const {
  if (!QuietSignal(id)) return false;
  int64_t& last = a.raised_ms[static_cast<size_t>(id)];
  if (last != 0 && now_ms - last < options_.quiet_ms && now_ms >= last) return true;
  last = now_ms;
  return false;
}

void Engine::NewNetworksCheck(AccountState& a, int64_t now_ms, std::vector<Signal>* out) const {
  const int64_t from = now_ms - options_.new_networks_window_ms;
  a.recent.erase(std::remove_if(a.recent.begin(), a.recent.end(),
                                [from](const RecentNewGroup& r) { return r.first_ms < from; }),
                 a.recent.end());
  if (static_cast<int>(a.recent.size()) < options_.new_networks_min) return;
  Signal s;
  s.id = SignalId::kNewNetworks;
  nlohmann::json nets = nlohmann::json::array();
  for (const RecentNewGroup& r : a.recent) {
    nets.push_back({{"network", r.network},
                    {"group", r.group},
                    {"client_ip", r.client_ip},
                    {"first_seen", FormatUnixMillis(r.first_ms)}});
  }
  s.evidence["count"] = a.recent.size();
  s.evidence["window_s"] = options_.new_networks_window_ms / 1000;
  s.evidence["known_groups"] = a.groups.size() - a.recent.size();
  s.evidence["new"] = std::move(nets);
  out->push_back(std::move(s));
}

void Engine::CountVolume(AccountState& a, const Message& m, const std::string& network,
                         const std::string& key, int64_t now_ms, std::vector<Signal>* out) const {
  const int64_t sec = now_ms / 1000;
  const int64_t ds = DayStart(sec), hs = HourStart(sec);
  if (ds > a.day_start) {
    if (a.day_start >= 0 && a.day_messages > 0) {
      DayCounts d;
      d.day = DayId(a.day_start);
      d.messages = a.day_messages;
      d.recipients = a.day_recipients;
      d.networks = std::max<int64_t>(a.day_networks, static_cast<int64_t>(a.hour_networks.size()));
      a.days.push_back(std::move(d));
      const std::string oldest = DayId(ds - int64_t{options_.anomaly.history_days} * kDaySec);
      size_t drop = 0;
      while (drop < a.days.size() && a.days[drop].day < oldest) ++drop;
      a.days.erase(a.days.begin(), a.days.begin() + static_cast<std::ptrdiff_t>(drop));
    }
    a.day_start = ds;
    a.day_messages = a.day_recipients = a.day_networks = 0;
    a.hour_start = -1;
  }
  if (hs > a.hour_start) {
    a.day_networks =
        std::max<int64_t>(a.day_networks, static_cast<int64_t>(a.hour_networks.size()));
    a.hour_start = hs;
    a.hour_messages = a.hour_recipients = 0;
    a.hour_networks.clear();
  }
  const int64_t n = static_cast<int64_t>(m.recipients.size());
  ++a.hour_messages;
  ++a.day_messages;
  a.hour_recipients += n;
  a.day_recipients += n;
  if (!network.empty() && a.hour_networks.size() < kMaxHourNetworks &&
      std::find(a.hour_networks.begin(), a.hour_networks.end(), network) == a.hour_networks.end()) {
    a.hour_networks.push_back(network);
  }
  AccountTotals t;
  t.hour_start = a.hour_start;
  t.hour_messages = a.hour_messages;
  t.hour_recipients = a.hour_recipients;
  t.hour_networks = a.hour_networks.empty() ? -1 : static_cast<int64_t>(a.hour_networks.size());
  t.day_messages = a.day_messages;
  if (!MayBeAnomalous(t, options_.anomaly)) return;
  t.account = key;
  const std::string day = DayId(a.day_start);
  if (a.baseline_day != day) {
    a.baseline = BuildBaseline(a.days, a.day_start, options_.anomaly);
    a.baseline_day = day;
  }
  for (const Anomaly& an : Evaluate(t, a.baseline, options_.anomaly)) {
    std::string& last = a.anomaly_periods[an.rule];
    if (last == an.period) continue;
    last = an.period;
    out->push_back(AnomalySignal(an));
  }
}

std::vector<Reaction> Engine::Observe(const Message& m, int64_t now_ms, const Matcher* matcher) {
  if (m.account.empty()) return {};
  std::vector<Signal> signals;
  if (matcher != nullptr) {
    nlohmann::json hits;  // null until a hit: nothing allocated for the others
    std::string address;
    for (const std::string& r : m.recipients) {
      if (!EnvelopeAddress(r, &address).ok()) continue;
      std::optional<Match> hit = matcher->Lookup(address);
      if (hit) hits.push_back({{"recipient", address}, {"entry", hit->entry}});
    }
    if (!hits.is_null()) {
      Signal s;
      s.id = SignalId::kHit;
      s.evidence["hits"] = std::move(hits);
      signals.push_back(std::move(s));
    }
  }
  SpoofFinding spoof = FromDisplaySpoof(m.from_header);
  if (!spoof.found) spoof = ToDisplaySpoof(m.to_header);
  bool spoofed = spoof.found;

  // The mail path: nothing below allocates for a message that raises nothing and teaches
  // nothing new (an account's key is its name when that is lower case already).
  std::string lowered;
  if (HasAsciiUpper(m.account)) lowered = AccountKey(m.account);
  const std::string& key = lowered.empty() ? m.account : lowered;
  const std::string_view account_domain = DomainView(m.account);
  bool single_external = false;
  if (m.recipients.size() == 1) {
    char buf[256];
    std::string_view rcpt_domain;
    std::string long_domain;  // longer than any valid domain: not worth avoiding the copy
    if (!LowerInto(DomainView(m.recipients[0]), buf, &rcpt_domain)) {
      long_domain = DomainOf(m.recipients[0]);
      rcpt_domain = long_domain;
    }
    single_external = !rcpt_domain.empty() && !EqualsIgnoreAsciiCase(rcpt_domain, account_domain) &&
                      local_domains_.find(rcpt_domain) == local_domains_.end() &&
                      !state_->IsLocalDomain(rcpt_domain);
  }
  // A client in own_networks (by default loopback and private) is the provider's own
  // webmail or relay, not a network the customer moved to: never a new network (webmail
  // users were flagged for it).
  const std::string group =
      InNetworks(options_.own_networks, m.client_ip)
          ? std::string()
          : ClientNetwork(m.client_ip, options_.group_ipv4_prefix, options_.group_ipv6_prefix);
  const std::string network =
      (options_.count_volume || !group.empty())
          ? ClientNetwork(m.client_ip, options_.ipv4_prefix, options_.ipv6_prefix)
          : std::string();
  GroupUse use;
  bool publish = false, note_domain = false;
  const bool combine = options_.combined.enabled();
  std::vector<WindowEntry> adds, shared;
  std::vector<Signal> combined;
  ReactionKind combined_kind = ReactionKind::kMonitor;
  // By reference: a std::function holding the lambda itself would allocate per message.
  auto per_account = [&](AccountState& a) {
    const bool has_history = a.first_ms != 0 && !a.groups.empty();
    bool new_group = false;
    KnownGroup* known = nullptr;
    if (!group.empty()) {
      auto it = a.groups.find(group);
      if (it == a.groups.end()) {
        new_group = true;
      } else {
        known = &it->second;
        new_group = now_ms - known->last_ms > options_.known_network_ms;
      }
    }
    if (single_external) {
      // The points first, the evidence only for a message that fires: most messages have
      // one external recipient and few fire, and building JSON for each was most of a
      // replay's allocations.
      const HeloKind helo = ClassifyHelo(m.helo);
      const bool small = m.size >= 0 && m.size <= options_.test_max_size;
      const bool new_network = new_group && has_history;
      std::string why;
      const bool random_subject = !m.subject.empty() && RandomLookingSubject(m.subject, &why);
      int points = 0;
      if (small) points += 2;
      points += HeloPoints(helo);
      if (new_network) points += 2;
      if (random_subject) points += 3;
      auto evidence = [&](nlohmann::json& e) {
        e["recipient"] = m.recipients[0];
        if (m.size >= 0) e["size"] = m.size;
        if (helo != HeloKind::kUnknown) {
          e["helo"] = m.helo;
          e["helo_kind"] = HeloKindName(helo);
        }
        if (new_network) e["new_network"] = network.empty() ? group : network;
        if (!m.subject.empty()) e["subject"] = m.subject;
        if (random_subject) e["random_subject"] = why;
        e["points"] = points;
        e["needed"] = options_.test_score;
      };
      if (points >= options_.test_score) {
        if (!Quiet(a, SignalId::kTestMessage, now_ms)) {
          Signal s;
          s.id = SignalId::kTestMessage;
          evidence(s.evidence);
          signals.push_back(std::move(s));
        }
      } else if (combine && points >= options_.combined.test_min_points) {
        // Test-like, too weak alone: its share of a test_message's weight.
        WindowEntry w;
        w.id = SignalId::kTestMessage;
        w.time_ms = now_ms;
        w.score = options_.combined.Weight(SignalId::kTestMessage) * points / options_.test_score;
        evidence(w.evidence);
        adds.push_back(std::move(w));
      }
    }
    if (spoofed && !Quiet(a, SignalId::kDisplaySpoof, now_ms)) {
      Signal s;
      s.id = SignalId::kDisplaySpoof;
      s.evidence = {
          {"header", spoof.header}, {"display", spoof.display}, {"address", spoof.address}};
      signals.push_back(std::move(s));
    }
    if (!group.empty()) {
      if (known == nullptr) {
        if (a.groups.size() < kMaxGroups) {
          known = &a.groups[group];
          known->first_ms = now_ms;
        }
      }
      if (known != nullptr) {
        if (new_group || now_ms - known->last_ms > kRefreshMs) publish = true;
        known->last_ms = std::max(known->last_ms, now_ms);
      }
      if (new_group && has_history) {
        a.recent.push_back(RecentNewGroup{group, network, m.client_ip, now_ms});
        use.was_new = true;
        std::vector<Signal> nn;
        NewNetworksCheck(a, now_ms, &nn);
        if (!nn.empty() && !Quiet(a, SignalId::kNewNetworks, now_ms)) {
          signals.push_back(std::move(nn[0]));
        } else if (combine) {
          // One new group: its share of new_networks; the groups of the window add up.
          WindowEntry w;
          w.id = SignalId::kNewNetworks;
          w.time_ms = now_ms;
          w.score = std::max(
              1, options_.combined.Weight(SignalId::kNewNetworks) / options_.new_networks_min);
          w.part = group;
          w.evidence = {{"network", network.empty() ? group : network},
                        {"group", group},
                        {"client_ip", m.client_ip},
                        {"first_seen", FormatUnixMillis(now_ms)}};
          adds.push_back(std::move(w));
        }
      }
    }
    if (options_.count_volume) CountVolume(a, m, network, key, now_ms, &signals);
    if (combine) {
      for (const Signal& s : signals) adds.push_back(Full(s, now_ms));
      if (!adds.empty()) Combine(a, std::move(adds), now_ms, &shared, &combined, &combined_kind);
    }
    if (a.first_ms == 0) a.first_ms = now_ms;
    if (!a.domain_noted) {
      a.domain_noted = true;
      note_domain = true;
    }
  };
  state_->WithAccount(key, std::ref(per_account));
  if (note_domain) state_->AddDomain(account_domain);
  if (publish) {
    use.group = group;
    use.network = network;
    use.client_ip = m.client_ip;
    use.time_ms = now_ms;
    state_->Learned(key, use);
  }
  Share(key, shared);
  return Reactions(m, std::move(signals), std::move(combined), combined_kind, now_ms);
}

void Engine::Combine(AccountState& a, std::vector<WindowEntry> adds, int64_t now_ms,
                     std::vector<WindowEntry>* shared, std::vector<Signal>* combined,
                     ReactionKind* kind) const {
  for (WindowEntry& e : adds) {
    if (e.score == 0) e.score = options_.combined.Weight(e.id);  // a signal that fired
    WindowEntry copy = e;
    if (AddToWindow(&a.window, std::move(e), now_ms, options_.combined.window_ms)) {
      shared->push_back(std::move(copy));
    }
  }
  Signal s;
  if (CheckCombined(&a.window, options_.combined, now_ms, &s, kind)) {
    combined->push_back(std::move(s));
  }
}

std::vector<Reaction> Engine::Reactions(const Message& m, std::vector<Signal> signals,
                                        std::vector<Signal> combined, ReactionKind combined_kind,
                                        int64_t now_ms) const {
  std::vector<Reaction> out;
  if (!signals.empty()) out.push_back(MakeReaction(m, std::move(signals), now_ms));
  // A combination no stronger than what the message raised itself adds nothing to act on
  // (the window still remembers it reacted).
  if (!combined.empty() && (out.empty() || out[0].kind < combined_kind)) {
    out.push_back(MakeReaction(m, std::move(combined), now_ms, combined_kind));
  }
  return out;
}

void Engine::Share(const std::string& key, const std::vector<WindowEntry>& shared) const {
  for (const WindowEntry& e : shared) state_->Contributed(key, e);
}

Reaction Engine::MakeReaction(const Message& m, std::vector<Signal> signals, int64_t now_ms,
                              std::optional<ReactionKind> kind) const {
  Reaction r;
  r.time_ms = now_ms;
  r.account = m.account;
  r.queue_id = m.queue_id;
  r.node = m.node;
  r.client_ip = m.client_ip;
  r.origin = m.origin;
  if (kind) {
    r.kind = *kind;
  } else {
    for (const Signal& s : signals) r.kind = std::max(r.kind, options_.reactions[s.id]);
  }
  r.signals = std::move(signals);
  // After the kind: a combined key names the level, so a lock keyed as the window's earlier
  // flag is not dropped as that flag's duplicate.
  r.event_key = EventKey(r);
  return r;
}

std::string Engine::EventKey(const Reaction& r) {
  if (r.signals.empty()) return std::to_string(r.time_ms);
  const Signal& s = r.signals[0];
  if (s.id == SignalId::kCombined) {
    // Every node sharing the window names it by its first contribution and the reaction.
    return s.evidence.value("since", std::string()) + ":" + ReactionName(r.kind);
  }
  if (s.id == SignalId::kNewNetworks) {
    auto it = s.evidence.find("new");
    if (it != s.evidence.end() && it->is_array() && !it->empty()) {
      return (*it)[0].value("first_seen", std::string());
    }
  }
  auto period = s.evidence.find("period");
  if (period != s.evidence.end() && period->is_string()) return period->get<std::string>();
  if (!r.queue_id.empty()) return r.queue_id;
  return std::to_string(r.time_ms);
}

std::vector<Reaction> Engine::ObserveAnomaly(const Anomaly& anomaly, int64_t now_ms) {
  Message m;
  m.account = anomaly.account;
  std::vector<Signal> signals = {AnomalySignal(anomaly)};
  std::vector<WindowEntry> shared;
  std::vector<Signal> combined;
  ReactionKind combined_kind = ReactionKind::kMonitor;
  const std::string key = AccountKey(anomaly.account);
  if (options_.combined.enabled()) {
    state_->WithAccount(key, [&](AccountState& a) {
      Combine(a, {Full(signals[0], now_ms)}, now_ms, &shared, &combined, &combined_kind);
    });
  }
  Share(key, shared);
  std::vector<Reaction> out = Reactions(m, {}, std::move(combined), combined_kind, now_ms);
  // The anomaly's own reaction first, always (the caller submits it unless monitor).
  out.insert(out.begin(), MakeReaction(m, std::move(signals), now_ms));
  return out;
}

std::vector<Reaction> Engine::Reevaluate(const std::string& account, int64_t now_ms) {
  std::vector<Signal> signals;
  std::vector<WindowEntry> shared;
  std::vector<Signal> combined;
  ReactionKind combined_kind = ReactionKind::kMonitor;
  const std::string key = AccountKey(account);
  state_->WithAccount(key, [&](AccountState& a) {
    std::vector<Signal> nn;
    NewNetworksCheck(a, now_ms, &nn);
    if (!nn.empty() && !Quiet(a, SignalId::kNewNetworks, now_ms))
      signals.push_back(std::move(nn[0]));
    // Another node's signals were merged into the window: it may add up now.
    if (options_.combined.enabled()) {
      std::vector<WindowEntry> adds;
      for (const Signal& s : signals) adds.push_back(Full(s, now_ms));
      Combine(a, std::move(adds), now_ms, &shared, &combined, &combined_kind);
    }
  });
  Share(key, shared);
  Message m;
  m.account = account;
  return Reactions(m, std::move(signals), std::move(combined), combined_kind, now_ms);
}

Signal AnomalySignal(const Anomaly& a) {
  Signal s;
  SignalId id = SignalId::kDayVolume;
  ParseSignal(a.rule, &id);
  s.id = id;
  s.evidence = {{"period", a.period},
                {"value", a.value},
                {"baseline", a.baseline},
                {"threshold", a.threshold},
                {"history_days", a.history.history_days},
                {"detail", a.Describe()}};
  return s;
}

}  // namespace compd
