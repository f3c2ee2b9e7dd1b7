#include "compd/detect/reaction.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "compd/base/json_fields.h"

namespace compd {

namespace {

constexpr const char* kSignalNames[kSignalCount] = {"hit",           "test_message", "new_networks",
                                                    "display_spoof", "day_volume",   "hour_volume",
                                                    "networks",      "new_account",  "combined"};
constexpr const char* kReactionNames[] = {"monitor", "flag", "tempfail", "lock"};

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

const char* ReactionName(ReactionKind kind) { return kReactionNames[static_cast<int>(kind)]; }

bool ParseReaction(std::string_view name, ReactionKind* out) {
  for (int i = 0; i < 4; ++i) {
    if (name == kReactionNames[i]) {
      *out = static_cast<ReactionKind>(i);
      return true;
    }
  }
  return false;
}

const char* SignalName(SignalId id) { return kSignalNames[static_cast<size_t>(id)]; }

bool ParseSignal(std::string_view name, SignalId* out) {
  for (size_t i = 0; i < kSignalCount; ++i) {
    if (name == kSignalNames[i]) {
      *out = static_cast<SignalId>(i);
      return true;
    }
  }
  return false;
}

std::string Reaction::SignalNames() const {
  std::string out;
  for (const Signal& s : signals) {
    if (!out.empty()) out += ",";
    out += SignalName(s.id);
  }
  return out;
}

namespace {

// Evidence of another shape (a stored event, an older node) says less, never throws.
std::string Text(const nlohmann::json& e, const char* key) { return JsonString(e, key); }

int64_t Int(const nlohmann::json& e, const char* key) {
  if (!e.is_object()) return 0;
  auto it = e.find(key);
  return it != e.end() && it->is_number() ? static_cast<int64_t>(it->get<double>()) : 0;
}

std::string Number(const nlohmann::json& e, const char* key) { return std::to_string(Int(e, key)); }

const nlohmann::json& Member(const nlohmann::json& e, const char* key) {
  static const nlohmann::json kNone;
  if (!e.is_object()) return kNone;
  auto it = e.find(key);
  return it == e.end() ? kNone : *it;
}

// "test_message 5, new_networks 4 (2 groups)": each contributing signal once, in the
// order of the contributions, its entries' scores added up to at most its weight, as the
// window's score counts them.
std::string Contributions(const nlohmann::json& list) {
  struct Part {
    std::string signal;
    int64_t score = 0, weight = 0;
    int entries = 0;
  };
  std::vector<Part> per;
  if (list.is_array()) {
    for (const nlohmann::json& c : list) {
      if (!c.is_object()) continue;
      std::string name = Text(c, "signal");
      if (name.empty()) name = "?";
      auto it =
          std::find_if(per.begin(), per.end(), [&](const Part& p) { return p.signal == name; });
      if (it == per.end()) it = per.insert(per.end(), Part{name});
      it->score += Int(c, "score");
      it->weight = std::max(it->weight, Int(c, "weight"));
      it->entries += 1;
    }
  }
  std::string out;
  for (const Part& p : per) {
    if (!out.empty()) out += ", ";
    out += p.signal + " " + std::to_string(p.weight > 0 ? std::min(p.score, p.weight) : p.score);
    if (p.entries > 1) {
      out += " (" + std::to_string(p.entries) +
             (p.signal == SignalName(SignalId::kNewNetworks) ? " groups)" : " entries)");
    }
  }
  return out;
}

}  // namespace

std::string SignalSummary(const Signal& s) {
  const nlohmann::json& e = s.evidence;
  switch (s.id) {
    case SignalId::kHit:
      if (!Member(e, "retro").is_null()) {
        return "mailed " + Text(Member(e, "retro"), "entry") + " before it entered the map";
      }
      if (Member(e, "hits").is_array() && !Member(e, "hits").empty()) {
        return "hit " + Text(Member(e, "hits")[0], "recipient");
      }
      return "hit";
    case SignalId::kTestMessage:
      return "test to " + Text(e, "recipient") + " (" + Number(e, "points") + " points)";
    case SignalId::kNewNetworks:
      return Number(e, "count") + " new networks";
    case SignalId::kDisplaySpoof:
      return Text(e, "header") + " shows " + Text(e, "display");
    case SignalId::kCombined:
      // The score reached its threshold (>=), and why: without the contributions the
      // operator sees a number and nothing to check.
      {
        const std::string parts = Contributions(Member(e, "contributions"));
        return std::string(SignalName(s.id)) + " " + Number(e, "score") +
               " >= " + Number(e, "threshold") + (parts.empty() ? "" : ": " + parts);
      }
    default:
      return std::string(SignalName(s.id)) + " " + Number(e, "value") + " > " +
             Number(e, "threshold");
  }
}

std::string Reaction::Summary() const {
  std::string out;
  for (const Signal& s : signals) {
    if (!out.empty()) out += "; ";
    out += SignalSummary(s);
  }
  return out;
}

std::string Reaction::ToJson() const {
  // Fixed key order, time first, so sort(1) and a human reading the output agree.
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["time"] = FormatUnixMillis(time_ms);
  j["account"] = account;
  j["reaction"] = ReactionName(kind);
  nlohmann::ordered_json names = nlohmann::ordered_json::array();
  nlohmann::ordered_json evidence = nlohmann::ordered_json::object();
  for (const Signal& s : signals) {
    names.push_back(SignalName(s.id));
    evidence[SignalName(s.id)] = s.evidence;
  }
  j["signals"] = std::move(names);
  j["evidence"] = std::move(evidence);
  if (!queue_id.empty()) j["queue_id"] = queue_id;
  if (!node.empty()) j["node"] = node;
  if (!client_ip.empty()) j["client_ip"] = client_ip;
  if (!origin.empty()) j["origin"] = origin;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Event Reaction::ToEvent() const {
  Event e;
  e.type = "signal";
  e.id = "signal:" + (signals.empty() ? std::string("none") : SignalName(signals[0].id)) + ":" +
         event_key + ":" + account;
  e.time = FormatUnixMillis(time_ms);
  e.host = node;
  e.account = account;
  e.client_ip = client_ip;
  e.queue_id = queue_id;
  e.source = "detect";
  e.rule = SignalNames();
  e.action = ReactionName(kind);
  nlohmann::json evidence = nlohmann::json::object();
  for (const Signal& s : signals) evidence[SignalName(s.id)] = s.evidence;
  e.evidence = Dump(evidence);
  // The evidence is beside it in full; the detail is what a person reads first.
  e.detail = Summary();
  return e;
}

Status ReactionTable::FromConfig(const Config& config, ReactionTable* out) {
  ReactionTable t;
  t.of[static_cast<size_t>(SignalId::kHit)] =
      config.GetBool("lock_on_hit") ? ReactionKind::kLock : ReactionKind::kFlag;
  t.of[static_cast<size_t>(SignalId::kCombined)] = ReactionKind::kFlag;
  for (size_t i = 1; i < kSignalCount; ++i) {
    if (static_cast<SignalId>(i) == SignalId::kCombined) continue;
    std::string name = std::string("reaction_") + kSignalNames[i];
    if (!ParseReaction(config.GetString(name), &t.of[i])) {
      return Status::Invalid(name + ": '" + config.GetString(name) +
                             "' is not one of monitor|flag|tempfail|lock");
    }
  }
  *out = t;
  return Status::Ok();
}

}  // namespace compd
