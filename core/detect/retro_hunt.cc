#include "compd/detect/retro_hunt.h"

#include <algorithm>
#include <map>
#include <set>

#include "compd/accounts/accounts.h"
#include "compd/base/utc_time.h"

namespace compd {

namespace {

// Requests kept on the list: far more than operators ask at once.
constexpr const char* kKeepRequests = "63";
constexpr const char* kRequestListTtl = "60";
// Messages an event's evidence lists for one account.
constexpr size_t kEvidenceMessages = 20;

}  // namespace

std::string HuntRequest::ToJson() const {
  return nlohmann::json({{"id", id}, {"entry", entry}, {"since_ms", since_ms}, {"at_ms", at_ms}})
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool HuntRequest::FromJson(const std::string& text, HuntRequest* out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return false;
  auto id = j.find("id"), entry = j.find("entry"), since = j.find("since_ms"), at = j.find("at_ms");
  if (id == j.end() || !id->is_string() || entry == j.end() || !entry->is_string() ||
      since == j.end() || !since->is_number_integer() || at == j.end() ||
      !at->is_number_integer()) {
    return false;
  }
  out->id = id->get<std::string>();
  out->entry = entry->get<std::string>();
  out->since_ms = since->get<int64_t>();
  out->at_ms = at->get<int64_t>();
  return !out->id.empty() && !out->entry.empty();
}

nlohmann::json RetroFindJson(const RetroFind& f, const std::string& node) {
  return {{"time", FormatUnixMillis(f.time_ms)},
          {"account", f.account},
          {"recipient", f.recipient},
          {"node", node},
          {"client_ip", f.client_ip},
          {"queue_id", f.queue_id},
          {"entry", f.entry},
          {"entry_kind", f.entry_kind}};
}

std::vector<Event> RetroHitEvents(const std::vector<RetroFind>& finds, const std::string& node) {
  // (entry, account key) -> its finds, oldest first (as Hunt returns them).
  std::map<std::pair<std::string, std::string>, std::vector<const RetroFind*>> groups;
  for (const RetroFind& f : finds) groups[{f.entry, AccountKey(f.account)}].push_back(&f);
  std::vector<Event> out;
  for (const auto& [key, list] : groups) {
    const RetroFind& last = *list.back();
    nlohmann::json messages = nlohmann::json::array();
    size_t from = list.size() > kEvidenceMessages ? list.size() - kEvidenceMessages : 0;
    for (size_t i = from; i < list.size(); ++i) messages.push_back(RetroFindJson(*list[i], node));
    Event e;
    e.type = "hit";
    e.id = "retro:" + key.first + ":" + key.second;
    e.host = node;
    e.account = last.account;
    e.client_ip = last.client_ip;
    e.recipient = last.recipient;
    e.where = "envelope";
    e.entry = last.entry;
    e.entry_kind = last.entry_kind;
    e.action = "monitor";  // the mail went out before the entry was in the map
    e.queue_id = last.queue_id;
    e.source = "retro";
    e.rule = "retro";
    e.evidence =
        nlohmann::json({{"retro", {{"entry", last.entry}, {"messages", std::move(messages)}}}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    e.detail = last.account + " mailed " + last.recipient + " at " +
               FormatUnixMillis(last.time_ms) + " from " +
               (last.client_ip.empty() ? std::string("?") : last.client_ip) + " (queue id " +
               (last.queue_id.empty() ? std::string("?") : last.queue_id) + ") through " + node +
               ", before " + last.entry + " entered the map" +
               (list.size() > 1 ? " (" + std::to_string(list.size()) + " messages)" : "");
    out.push_back(std::move(e));
  }
  return out;
}

RetroJudgement JudgeRetroFinds(const std::vector<RetroFind>& finds, bool truncated,
                               int max_accounts, const std::string& node) {
  RetroJudgement out;
  std::map<std::string, std::set<std::string>> accounts;  // entry -> account keys
  for (const RetroFind& f : finds) accounts[f.entry].insert(AccountKey(f.account));
  std::set<std::string> over;
  for (const auto& [entry, who] : accounts) {
    if (static_cast<int64_t>(who.size()) > max_accounts || (truncated && who.size() > 1)) {
      out.over_cap.push_back({entry, who.size(), truncated});
      over.insert(entry);
    }
  }
  for (Event& e : RetroHitEvents(finds, node)) {
    if (!over.count(e.entry)) out.events.push_back(std::move(e));
  }
  return out;
}

std::string RetroOverCapMessage(const RetroOverCap& o, int max_accounts, int64_t window_ms) {
  const std::string window = window_ms % (86400 * 1000) == 0
                                 ? std::to_string(window_ms / (86400 * 1000)) + "d"
                                 : std::to_string(window_ms / (3600 * 1000)) + "h";
  return o.entry + " matches the mail of " + std::to_string(o.accounts) +
         (o.truncated ? " or more" : "") + " accounts in the last " + window +
         ", more than retro_max_accounts (" + std::to_string(max_accounts) +
         "): not a test address, nobody flagged; mapctl hunt '" + o.entry + "' lists them";
}

Status AskNodes(RedisClient* client, const Keys& keys, const HuntRequest& request,
                std::chrono::milliseconds wait, std::vector<nlohmann::json>* answers,
                long long* listening) {
  answers->clear();
  *listening = 0;
  std::vector<RedisReply> replies;
  Status s = client->Pipeline({{"LPUSH", keys.retro_requests(), request.ToJson()},
                               {"LTRIM", keys.retro_requests(), "0", kKeepRequests},
                               {"EXPIRE", keys.retro_requests(), kRequestListTtl},
                               {"PUBLISH", keys.retro_channel(), request.id}},
                              &replies);
  if (!s.ok()) return s;
  if (replies.size() != 4 || replies[3].type != RedisReply::Type::kInteger) {
    return Status::Unavailable("hunt: unexpected reply from Redis to PUBLISH");
  }
  *listening = replies[3].integer;
  const std::string reply_key = keys.retro_reply(request.id);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  const auto saved_timeout = client->timeout();
  while (static_cast<long long>(answers->size()) < *listening) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    client->set_timeout(left + saved_timeout);
    RedisReply reply;
    char seconds[32];
    snprintf(seconds, sizeof(seconds), "%.3f", left.count() / 1000.0);
    s = client->Command({"BLPOP", reply_key, seconds}, &reply);
    client->set_timeout(saved_timeout);
    if (!s.ok()) return s;
    if (reply.is_nil()) break;
    if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2) {
      return Status::Unavailable("hunt: unexpected reply from Redis to BLPOP");
    }
    nlohmann::json a = nlohmann::json::parse(reply.elements[1].str, nullptr, false);
    if (a.is_object()) answers->push_back(std::move(a));
  }
  client->Command({"DEL", reply_key});
  return Status::Ok();
}

}  // namespace compd
