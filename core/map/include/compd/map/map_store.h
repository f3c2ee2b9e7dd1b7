// MapStore: the map as kept in Redis, the single source of truth for every node.
//
// Key layout under the prefix (default "compd:"; names from compd/base/keys.h):
//   {prefix}map:exact    hash  canonical address -> JSON metadata
//   {prefix}map:re       hash  `/regex/flags`    -> JSON metadata
//   {prefix}map:version  int   bumped by every change that changes something
//   {prefix}map:changed  hash  at (unix seconds, Redis' clock), by, op, added, removed,
//                              version and id of the last change (the id, from Redis'
//                              clock, tells states with the same version number apart)
//   {prefix}map:changes  pub/sub channel; each change publishes the new version
//   {prefix}map:log      list, the last kLogKeep changes, one element per version: what it
//                        added and removed (see ChangesSince), so a milter applies a small
//                        change to its snapshot instead of reloading a million entries
//   {prefix}map:lost     string, set by a milter that found Redis without the map it holds
//                        (Redis lost its data): until a replace clears it, adds and removes
//                        are refused, so one stray add cannot replace every milter's map
// The exact hash uses canonical addresses as fields so rspamd's `redis://` multimap
// (a plain HGET) can read it directly.
//
// Every change is one atomic Lua script: validated entries in, hashes, version, the
// "changed" record, the log and the PUBLISH all updated together or not at all.
// A batch too large for one script call (more than max_script_entries()) is first staged
// in a private list {prefix}map:staging:<random> with pipelined RPUSHes (it expires after
// an hour if the writer dies), then applied by one script that reads and deletes it; the
// map hashes and the version therefore still change in one step, whatever the size.
//
// Not thread-safe (it uses one RedisClient); give each thread its own MapStore.
#ifndef COMPD_MAP_MAP_STORE_H_
#define COMPD_MAP_MAP_STORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/keys.h"
#include "compd/base/redis.h"
#include "compd/base/status.h"
#include "compd/map/entry.h"

namespace compd {

struct EntryMeta {
  int64_t added_at = 0;  // unix seconds
  std::string added_by;  // operator (login name) or "import"
  std::string note;
  std::string source;  // "mapctl", "import:FILE:LINE", ...
  std::string ToJson() const;
  static EntryMeta FromJson(const std::string& json);  // tolerant: bad JSON -> empty meta
};

struct StoredEntry {
  Entry entry;
  EntryMeta meta;
};

struct MapState {
  std::vector<StoredEntry> entries;  // exact first, then patterns, each sorted
  uint64_t version = 0;
  // Fields found in Redis that are not valid entries (written by hand?), skipped:
  // "map:re: /(/: invalid regex ...". Callers should warn; they are never matched.
  std::vector<std::string> invalid;
};

// What a change did.
struct ChangeResult {
  size_t added = 0;
  size_t removed = 0;
  uint64_t version = 0;  // the version after the change (unchanged if nothing changed)
};

// One version's change, from the log: exact entries by their text (as in the hash);
// patterns parsed when added, by their text alone when removed.
struct MapChange {
  uint64_t version = 0;
  std::string id;  // of the state this change made
  std::vector<Entry> added;
  std::vector<Entry> removed;
};

// The entries without metadata, read in place from Redis' reply (see ReadEntries).
struct MapEntriesView {
  uint64_t version = 0;
  std::string id;                       // of this state ("" for a map written before ids)
  std::vector<std::string_view> exact;  // canonical addresses, unsorted
  std::vector<Entry> patterns;          // sorted by text
  std::vector<std::string> invalid;     // as MapState::invalid
};

struct MapStats {
  size_t exact = 0;
  size_t patterns = 0;
  uint64_t version = 0;
  int64_t changed_at = 0;
  std::string changed_by;
  std::string changed_op;
};

class MapStore {
 public:
  MapStore(RedisClient* client, std::string prefix = kDefaultPrefix);

  // Adds entries that are not there yet (existing ones keep their metadata). `added[i]`
  // tells whether entries[i] was new; an entry given twice is new at most once.
  // Version bumps (and a change is published) only if something was added. Entries must
  // come from ParseEntry. A failure that leaves the outcome unknown (the connection broke
  // after sending) says so in its message; every other failure changed nothing.
  Status Add(const std::vector<StoredEntry>& entries, const std::string& by,
             std::vector<bool>* added, ChangeResult* result = nullptr);
  // Removes entries; `removed[i]` tells whether entries[i] was there.
  Status Remove(const std::vector<Entry>& entries, const std::string& by,
                std::vector<bool>* removed, ChangeResult* result = nullptr);
  // Makes the map equal to `entries` (metadata of entries that stay is kept).
  Status Replace(const std::vector<StoredEntry>& entries, const std::string& by,
                 ChangeResult* result = nullptr);

  // A consistent copy of everything (one MULTI/EXEC).
  Status Load(MapState* out);
  // The same without metadata (HKEYS instead of HGETALL): what a matcher needs, several
  // times faster at 100,000 entries. `out` is sorted as in MapState.
  Status LoadEntries(std::vector<Entry>* out, uint64_t* version,
                     std::vector<std::string>* invalid = nullptr);
  // The same, handed to `fn` while the reply is still in memory, so that a million exact
  // entries are neither copied into Entry objects nor sorted: what a snapshot build
  // needs. The views in `map` are only valid during the call; its status is returned.
  Status ReadEntries(const std::function<Status(const MapEntriesView& map)>& fn);

  // What changed after the state (`since`, `since_id`) the caller holds, oldest first, one
  // MapChange per version up to the current one (`*version`, `*id`; `out` is empty when
  // that is `since`). kNotFound when the log cannot tell: it no longer reaches back that
  // far (more than kLogKeep changes), a change in between was too big to log (over
  // kLogMaxEntries entries: an import), the records are too big for one short read, a
  // record cannot be read, the version went backwards, or Redis' state `since` is not the
  // caller's (its id differs: a failover to a replica that missed writes, or a restored
  // backup). The caller then reads the whole map.
  Status ChangesSince(uint64_t since, const std::string& since_id, std::vector<MapChange>* out,
                      uint64_t* version, std::string* id);
  static constexpr size_t kLogKeep = 200;
  static constexpr size_t kLogMaxEntries = 10000;

  // The version alone: cheap, for polling.
  Status Version(uint64_t* version);
  Status Stats(MapStats* out);

  const Keys& keys() const { return keys_; }

  // Batches larger than this go through the staging list (see the top of this file).
  // bench/import_bench measured both paths equally fast at 100,000 entries; the limit
  // keeps single commands to a few MB.
  static constexpr size_t kDefaultMaxScriptEntries = 50000;
  size_t max_script_entries() const { return max_script_entries_; }
  void set_max_script_entries(size_t n) { max_script_entries_ = n == 0 ? 1 : n; }

 private:
  struct Item {
    char kind;  // 'e' exact, 'p' pattern
    const std::string* field;
    const std::string* value;  // null for removals
  };
  Status LoadRaw(bool with_meta, MapState* out);
  Status Change(const char* op, const std::vector<Item>& items, const std::string& by,
                std::vector<bool>* flags, ChangeResult* result);
  // Change for entries stored with their metadata (add and replace).
  Status ChangeStored(const char* op, const std::vector<StoredEntry>& entries,
                      const std::string& by, std::vector<bool>* flags, ChangeResult* result);

  RedisClient* client_;
  Keys keys_;
  size_t max_script_entries_ = kDefaultMaxScriptEntries;
};

}  // namespace compd

#endif  // COMPD_MAP_MAP_STORE_H_
