// The map's stored form in Redis, read back: the version counter, which hash fields are
// entries. MapStore's full loads and its change-log reads both go through these, so both
// paths skip the same fields and give the same snapshot.
//
// Pure functions; safe from any thread.
#ifndef COMPD_MAP_MAP_STORE_FIELDS_H_
#define COMPD_MAP_MAP_STORE_FIELDS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "compd/base/redis.h"
#include "compd/base/status.h"
#include "compd/map/entry.h"

namespace compd {
namespace map_fields {

// A decimal number of at most 19 digits, nothing else.
bool ParseU64(const std::string& s, uint64_t* out);

// The map version as Redis returns it: nil is 0, an integer or a decimal string.
Status ParseVersion(const RedisReply& r, uint64_t* out);

// kInternal naming the command whose reply had an unexpected shape.
Status Malformed(const char* what);

// Why a field of the exact hash is not an entry, or "" when it is one. Fields are written
// canonical by compd; one that is not can never match a canonical lookup, so it is
// reported rather than silently kept.
const char* InvalidExactField(std::string_view field);

// A pattern field as an Entry (its stored spelling kept as the identity, so remove and
// list name what is there), or why it is not one.
Status PatternField(std::string_view field, Entry* out);

}  // namespace map_fields
}  // namespace compd

#endif  // COMPD_MAP_MAP_STORE_FIELDS_H_
