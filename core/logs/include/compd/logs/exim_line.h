// Parsing of one Exim mainlog line (the part after the timestamp): the `<=` arrival line
// with its H=, A=, S=, id=, T= and `for` fields, delivery lines (=> -> *> ** ==) and
// `Completed`. Pure functions on string_views into the line; safe from any thread.
#ifndef COMPD_LOGS_EXIM_LINE_H_
#define COMPD_LOGS_EXIM_LINE_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace compd {

enum class EximLineKind {
  kArrival,    // <=
  kDelivery,   // => -> *> ** == : `recipient` is set
  kCompleted,  // Completed
  kOther,      // an Exim line compd has no use for (queue runs, rejections, ...)
  kBad,        // an arrival or delivery line that does not parse
};

struct EximArrival {
  std::string_view sender;
  std::string_view client_name;  // H=name, empty when Exim had none
  std::string_view helo;         // (helo), or the name when Exim left it out as equal
  std::string_view client_ip;
  std::string_view authenticator;  // A=authenticator:id; empty when not authenticated
  std::string_view auth_id;        // raw: still quoted when auth_id_quoted
  bool auth_id_quoted = false;
  std::string_view subject;  // T="..." raw, between the quotes when subject_quoted
  bool subject_quoted = false;
  std::string_view message_id;  // id=, without <>
  int64_t size = -1;
  bool has_for = false;         // `for r1 r2` was there (+received_recipients)
  std::string_view recipients;  // the blank-separated list after `for`
};

struct EximLine {
  EximLineKind kind = EximLineKind::kOther;
  std::string_view id;         // 1nh9qH-0008OE-RW or the 23-character 4.97 form
  std::string_view recipient;  // delivery lines: the original address when logged
  EximArrival arrival;         // kArrival only
};

// `text` is what follows the timestamp (and pid).
void ParseEximLine(std::string_view text, EximLine* out);

// Exim's quoting (T="...", A=x:"..."): \\ \" \n \r \t and \ooo octal. Appends to out.
void AppendEximUnquoted(std::string_view quoted, std::string* out);
// A value as Exim logged it, quoted (`quoted`: unquoted as above) or bare. Replaces out.
void AssignEximValue(std::string_view value, bool quoted, std::string* out);

}  // namespace compd

#endif  // COMPD_LOGS_EXIM_LINE_H_
