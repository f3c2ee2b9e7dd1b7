#include "compd/events/event.h"

#include <nlohmann/json.hpp>
#include <utility>

namespace compd {

namespace {

// The fields in JSON order. One table keeps ToJson, FromJson and == in step.
using Field = std::string Event::*;
struct FieldDef {
  const char* name;
  Field field;
  bool optional;  // omitted from JSON when empty
};
const FieldDef kFields[] = {
    {"time", &Event::time, false},
    {"type", &Event::type, false},
    {"id", &Event::id, false},
    {"host", &Event::host, false},
    {"account", &Event::account, false},
    {"auth_type", &Event::auth_type, false},
    {"client_ip", &Event::client_ip, false},
    {"client_name", &Event::client_name, false},
    {"helo", &Event::helo, false},
    {"sender", &Event::sender, false},
    {"recipient", &Event::recipient, false},
    {"where", &Event::where, false},
    {"entry", &Event::entry, false},
    {"entry_kind", &Event::entry_kind, false},
    {"action", &Event::action, false},
    {"queue_id", &Event::queue_id, false},
    {"txn_id", &Event::txn_id, false},
    {"subject", &Event::subject, false},
    {"message_id", &Event::message_id, false},
    {"source", &Event::source, false},
    {"rule", &Event::rule, true},
    {"period", &Event::period, true},
    {"value", &Event::value, true},
    {"baseline", &Event::baseline, true},
    {"threshold", &Event::threshold, true},
    {"detail", &Event::detail, true},
    {"evidence", &Event::evidence, true},
};

}  // namespace

std::string Event::ToJson() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [name, field, optional] : kFields) {
    if (optional && (this->*field).empty()) continue;
    j[name] = this->*field;
  }
  // Subjects, HELO names and addresses come from the client: replace invalid UTF-8
  // rather than throw, so a hostile message can never stop an event being recorded.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Status Event::FromJson(std::string_view json, Event* out) {
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Invalid("not valid JSON");
  if (!j.is_object()) return Status::Invalid("not a JSON object");
  Event e;
  for (const auto& [name, field, optional] : kFields) {
    (void)optional;
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return Status::Invalid(std::string("key '") + name + "' is not a string");
    e.*field = it->get<std::string>();
  }
  *out = std::move(e);
  return Status::Ok();
}

bool Event::operator==(const Event& o) const {
  for (const auto& [name, field, optional] : kFields) {
    (void)name;
    (void)optional;
    if (this->*field != o.*field) return false;
  }
  return true;
}

}  // namespace compd
