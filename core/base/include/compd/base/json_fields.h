// Reading fields of JSON that compd did not necessarily write (stored events, another
// node's evidence, an older version's records): a field that is absent or of another type
// reads as empty, never throws. Stateless functions; thread-safe.
#ifndef COMPD_BASE_JSON_FIELDS_H_
#define COMPD_BASE_JSON_FIELDS_H_

#include <nlohmann/json.hpp>
#include <string>

namespace compd {

// The string field `key` of object `j`; "" when `j` is no object or the field no string.
inline std::string JsonString(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::string();
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace compd

#endif  // COMPD_BASE_JSON_FIELDS_H_
