#include "compd/detect/reaction.h"

#include <chrono>

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
  e.detail = account + ": " + e.rule + " -> " + e.action + " " + e.evidence;
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
