// Map edits: operator input and rspamd map files turned into checked lists of entries,
// and what importing files into the map would change. The logic behind `mapctl add`,
// `remove` and `import`, kept apart from the CLI so it is tested on its own.
//
// Pure functions over values; safe from any thread.
#ifndef COMPD_MAP_MAP_EDIT_H_
#define COMPD_MAP_MAP_EDIT_H_

#include <string>
#include <string_view>
#include <vector>

#include "compd/map/entry.h"
#include "compd/map/map_store.h"
#include "compd/map/rspamd_map.h"

namespace compd {

// One entry as the operator gave it, with where it came from for messages.
struct EntryInput {
  std::string origin;  // "" for a command-line argument, "<stdin>:3" for a line
  std::string text;
};

// Entries read from a stream (`mapctl add -`): one per line, surrounding whitespace and a
// trailing CR removed, blank lines and lines starting with `#` skipped. `name` labels
// the origin of each line ("<stdin>" gives "<stdin>:3").
std::vector<EntryInput> SplitEntryLines(std::string_view text, std::string_view name);

// Parses every input with ParseEntry and returns one message per invalid input,
// "ORIGIN: 'TEXT': reason" (no "ORIGIN: " for command-line arguments), so a caller can
// report all of them and write nothing. `out` receives the valid entries in input
// order, each once (inputs that canonicalise to the same entry collapse).
std::vector<std::string> ParseEntryInputs(const std::vector<EntryInput>& inputs,
                                          std::vector<Entry>* out);

// The kind a map file is read as when the operator does not say: a file named like
// compd's exact map (compd_rcpt.map) is plain, anything else regexp, which is how
// existing rspamd recipient maps with `regexp = true` are read.
MapKind DefaultMapKind(std::string_view path);
const char* MapKindName(MapKind kind);  // "plain" / "regexp"

struct ImportFile {
  std::string path;
  MapKind kind = MapKind::kRegexp;
  MapReadResult read;
};

struct ImportItem {
  Entry entry;
  std::string file;
  int line = 0;
  std::string meaning_change;  // from the reader; empty when the meaning is unchanged
};

struct ImportPlan {
  std::vector<ImportItem> entries;          // all the files give, first occurrence wins
  std::vector<ImportItem> to_add;           // in the files, not in the map
  std::vector<Entry> to_remove;             // with replace only: in the map, not in the files
  size_t unchanged = 0;                     // in both
  std::vector<std::string> errors;          // "file:line: message" for every error hazard
  std::vector<std::string> warnings;        // the same for every warning
  std::vector<ImportItem> meaning_changes;  // converted lines whose meaning changes
  std::vector<std::string> not_imported;    // "file:line: key" for lines not converted
};

// What importing `files` into a map holding `current` would do; with `replace` the map
// is to become equal to the files.
ImportPlan PlanImport(const std::vector<ImportFile>& files, const std::vector<Entry>& current,
                      bool replace);

}  // namespace compd

#endif  // COMPD_MAP_MAP_EDIT_H_
