#include "compd/map/map_store_fields.h"

#include <string>
#include <string_view>

#include "compd/base/text.h"

namespace compd {
namespace map_fields {

bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

Status ParseVersion(const RedisReply& r, uint64_t* out) {
  *out = 0;
  if (r.is_nil()) return Status::Ok();
  if (r.type == RedisReply::Type::kInteger && r.integer >= 0) {
    *out = static_cast<uint64_t>(r.integer);
    return Status::Ok();
  }
  if (r.type == RedisReply::Type::kString && ParseU64(r.str, out)) return Status::Ok();
  return Status::Internal("map version is not a number: '" + r.str + "'");
}

Status Malformed(const char* what) {
  return Status::Internal(std::string("unexpected reply from Redis to ") + what);
}

const char* InvalidExactField(std::string_view field) {
  if (field.empty() || field.find('@') == std::string_view::npos) return "not an address";
  if (HasAsciiUpper(field)) return "not in canonical (lower-case) form";
  return "";
}

Status PatternField(std::string_view field, Entry* out) {
  Status ps = ParseEntry(field, out);
  if (ps.ok() && out->kind != EntryKind::kPattern) return Status::Invalid("not a /pattern/");
  if (!ps.ok()) return ps;
  out->text = std::string(field);
  return Status::Ok();
}

}  // namespace map_fields
}  // namespace compd
