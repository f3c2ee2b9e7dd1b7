// Address parsing. Every scanner here moves forward only: each input byte is looked at a
// bounded number of times, so hostile headers (1 MB of commas, 100k nested comments) cost
// linear time and memory, and nothing recurses.
#include "compd/map/address.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/base64.h"

namespace compd {
namespace {

bool IsCtl(unsigned char c) { return c < 0x20 || c == 0x7f; }
bool IsWsp(char c) { return c == ' ' || c == '\t'; }
bool IsFws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// RFC 5322 specials (without '.', which dot-atoms allow between atoms).
bool IsSpecial(char c) {
  switch (c) {
    case '(':
    case ')':
    case '<':
    case '>':
    case '[':
    case ']':
    case ':':
    case ';':
    case '@':
    case '\\':
    case ',':
    case '"':
      return true;
    default:
      return false;
  }
}

// atext plus '.', plus any byte >= 0x80 (SMTPUTF8, RFC 6532).
bool IsAtomOrDot(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x80) return true;
  return !IsCtl(u) && c != ' ' && !IsSpecial(c);
}

bool IsAtext(char c) { return c != '.' && IsAtomOrDot(c); }

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view TrimWsp(std::string_view s) {
  while (!s.empty() && IsWsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWsp(s.back())) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------------------
// Envelope addresses (RFC 5321 syntax, no CFWS).

// `local@domain` after brackets and route are gone.
Status ParseEnvelopeMailbox(std::string_view addr, std::string* out) {
  std::string local;
  size_t i = 0;
  const size_t n = addr.size();
  if (addr[0] == '"') {
    // rspamd 3.4 matches the quoted local part without its quotes and with quoted pairs
    // unescaped: `"john doe"@x.com` is matched as `john doe@x.com`.
    i = 1;
    for (;;) {
      if (i >= n) return Status::Invalid("unterminated quoted string");
      char c = addr[i];
      if (c == '\\') {
        if (i + 1 >= n) return Status::Invalid("unterminated quoted string");
        c = addr[i + 1];
        if (IsCtl(static_cast<unsigned char>(c))) return Status::Invalid("control character");
        local += c;
        i += 2;
        continue;
      }
      if (c == '"') {
        ++i;
        break;
      }
      if (IsCtl(static_cast<unsigned char>(c))) return Status::Invalid("control character");
      local += c;
      ++i;
    }
    if (i >= n || addr[i] != '@') {
      return Status::Invalid("quoted local part not followed by '@'");
    }
  } else {
    for (; i < n && addr[i] != '@'; ++i) {
      char c = addr[i];
      if (IsCtl(static_cast<unsigned char>(c))) return Status::Invalid("control character");
      if (!IsAtomOrDot(c)) return Status::Invalid("invalid character in local part");
      local += c;
    }
    if (i >= n) return Status::Invalid("missing '@'");
  }
  if (local.empty()) return Status::Invalid("empty local part");
  std::string_view domain = addr.substr(i + 1);
  if (domain.empty()) return Status::Invalid("empty domain");
  if (domain.front() == '[') {
    if (domain.size() < 3 || domain.back() != ']') {
      return Status::Invalid("unterminated address literal");
    }
    for (char c : domain.substr(1, domain.size() - 2)) {
      if (IsCtl(static_cast<unsigned char>(c))) return Status::Invalid("control character");
      if (c == '[' || c == ']' || c == '\\' || c == ' ') {
        return Status::Invalid("invalid character in address literal");
      }
    }
  } else {
    for (char c : domain) {
      if (IsCtl(static_cast<unsigned char>(c))) return Status::Invalid("control character");
      if (c == '@') return Status::Invalid("more than one '@'");
      if (!IsAtomOrDot(c)) return Status::Invalid("invalid character in domain");
    }
  }
  out->assign(local);
  out->push_back('@');
  out->append(domain);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// RFC 2047 encoded words.

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string DecodeQ(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
               HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

enum class Charset { kUnknown, kUtf8, kLatin1 };

Charset LookupCharset(std::string_view name) {
  // RFC 2231 allows a language suffix: `utf-8*en`.
  size_t star = name.find('*');
  if (star != std::string_view::npos) name = name.substr(0, star);
  std::string lower;
  for (char c : name) lower.push_back(AsciiLower(c));
  if (lower == "utf-8" || lower == "utf8" || lower == "us-ascii" || lower == "ascii") {
    return Charset::kUtf8;
  }
  if (lower == "iso-8859-1" || lower == "iso8859-1" || lower == "iso_8859-1" || lower == "latin1" ||
      lower == "latin-1" || lower == "l1") {
    return Charset::kLatin1;
  }
  return Charset::kUnknown;
}

void AppendLatin1AsUtf8(std::string_view in, std::string* out) {
  for (char c : in) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      out->push_back(c);
    } else {
      out->push_back(static_cast<char>(0xc0 | (u >> 6)));
      out->push_back(static_cast<char>(0x80 | (u & 0x3f)));
    }
  }
}

bool IsEncodedWordStop(char c) {
  return c == '?' || IsFws(c) || IsCtl(static_cast<unsigned char>(c));
}

// Tries `=?charset?B|Q?text?=` at s[i]. Scanning stops at the next '?' of each part, so a
// failed attempt only looks at text up to the fourth '?' after `i`: repeated attempts over
// a hostile string stay linear overall.
bool DecodeEncodedWordAt(std::string_view s, size_t i, size_t* end, std::string* out) {
  const size_t n = s.size();
  size_t j = i + 2;
  size_t cs_start = j;
  while (j < n && !IsEncodedWordStop(s[j])) ++j;
  if (j >= n || s[j] != '?' || j == cs_start) return false;
  std::string_view charset = s.substr(cs_start, j - cs_start);
  ++j;
  if (j + 1 >= n || s[j + 1] != '?') return false;
  char enc = AsciiLower(s[j]);
  if (enc != 'b' && enc != 'q') return false;
  j += 2;
  size_t text_start = j;
  while (j < n && !IsEncodedWordStop(s[j])) ++j;
  if (j + 1 >= n || s[j] != '?' || s[j + 1] != '=') return false;
  Charset cs = LookupCharset(charset);
  if (cs == Charset::kUnknown) return false;  // leave the raw text: better than mojibake
  std::string_view text = s.substr(text_start, j - text_start);
  std::string bytes = enc == 'b' ? DecodeBase64Lenient(text) : DecodeQ(text);
  out->clear();
  if (cs == Charset::kLatin1) {
    AppendLatin1AsUtf8(bytes, out);
  } else {
    *out = std::move(bytes);
  }
  *end = j + 2;
  return true;
}

// Decodes every encoded word in `s`, also inside what was a quoted string (as common mail
// readers do). Whitespace between two adjacent encoded words is dropped (RFC 2047 6.2).
std::string DecodeEncodedWords(std::string_view s) {
  std::string out;
  bool after_word = false;  // only whitespace since the last decoded encoded word
  size_t word_end = 0;      // out.size() right after that word
  std::string decoded;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = 0;
    if (s[i] == '=' && i + 1 < s.size() && s[i + 1] == '?' &&
        DecodeEncodedWordAt(s, i, &end, &decoded)) {
      if (after_word) out.resize(word_end);
      out += decoded;
      i = end;
      after_word = true;
      word_end = out.size();
      continue;
    }
    if (!IsFws(s[i])) after_word = false;
    out.push_back(s[i]);
    ++i;
  }
  return out;
}

// Control characters (raw or decoded) become spaces; runs of spaces collapse; trimmed.
std::string CleanDisplayName(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (IsCtl(static_cast<unsigned char>(c)) || c == ' ') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// RFC 5322 address-list lexer.

enum class Tok {
  kAtom,     // run of atext (and bytes >= 0x80)
  kDot,      // '.'
  kQuoted,   // "..." (raw keeps the quotes; ok is false when unterminated)
  kLiteral,  // [...] domain literal
  kComment,  // (...) with nesting (ok is false when unterminated)
  kLt,
  kGt,
  kAt,
  kComma,
  kColon,
  kSemi,
  kOther,  // anything else: stray ')' ']' '\\', control characters, broken literals
};

struct Token {
  Tok type = Tok::kOther;
  bool space_before = false;  // folding whitespace or a comment before it
  bool ok = true;
  std::string_view raw;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  // False at the end of the input.
  bool Next(Token* t) {
    const size_t n = s_.size();
    bool space = false;
    while (pos_ < n && IsFws(s_[pos_])) {
      space = true;
      ++pos_;
    }
    if (pos_ >= n) return false;
    const size_t start = pos_;
    t->space_before = space;
    t->ok = true;
    const char c = s_[pos_];
    switch (c) {
      case '(':
        t->type = Tok::kComment;
        t->ok = SkipComment();
        break;
      case '"':
        t->type = Tok::kQuoted;
        t->ok = SkipQuoted();
        break;
      case '[':
        t->type = SkipLiteral() ? Tok::kLiteral : Tok::kOther;
        break;
      case '<':
        t->type = Tok::kLt;
        ++pos_;
        break;
      case '>':
        t->type = Tok::kGt;
        ++pos_;
        break;
      case '@':
        t->type = Tok::kAt;
        ++pos_;
        break;
      case ',':
        t->type = Tok::kComma;
        ++pos_;
        break;
      case ':':
        t->type = Tok::kColon;
        ++pos_;
        break;
      case ';':
        t->type = Tok::kSemi;
        ++pos_;
        break;
      case '.':
        t->type = Tok::kDot;
        ++pos_;
        break;
      default:
        if (IsAtext(c)) {
          t->type = Tok::kAtom;
          while (pos_ < n && IsAtext(s_[pos_])) ++pos_;
        } else {
          t->type = Tok::kOther;
          ++pos_;
        }
    }
    t->raw = s_.substr(start, pos_ - start);
    return true;
  }

 private:
  // Nesting is a counter, not recursion: 100k '(' cost 100k steps and no stack.
  bool SkipComment() {
    const size_t n = s_.size();
    size_t depth = 0;
    while (pos_ < n) {
      char c = s_[pos_];
      if (c == '\\') {
        pos_ = pos_ + 2 < n ? pos_ + 2 : n;
        continue;
      }
      ++pos_;
      if (c == '(') {
        ++depth;
      } else if (c == ')') {
        if (--depth == 0) return true;
      }
    }
    return false;
  }

  bool SkipQuoted() {
    const size_t n = s_.size();
    ++pos_;
    while (pos_ < n) {
      char c = s_[pos_];
      if (c == '\\') {
        pos_ = pos_ + 2 < n ? pos_ + 2 : n;
        continue;
      }
      ++pos_;
      if (c == '"') return true;
    }
    return false;
  }

  // A domain literal cannot contain these; stopping at them (instead of running to the end
  // of the header on a stray '[') lets the rest of the list still parse.
  bool SkipLiteral() {
    const size_t n = s_.size();
    ++pos_;
    while (pos_ < n) {
      char c = s_[pos_];
      if (c == ']') {
        ++pos_;
        return true;
      }
      if (c == '[' || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '(' ||
          c == ')' || c == '\\' || (IsCtl(static_cast<unsigned char>(c)) && !IsFws(c))) {
        return false;
      }
      ++pos_;
    }
    return false;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// Content of a quoted string: quotes dropped, quoted pairs unescaped, folding CR/LF removed.
void AppendUnquoted(std::string_view raw, std::string* out) {
  size_t i = 1;  // skip the opening quote
  while (i < raw.size()) {
    char c = raw[i];
    if (c == '\\') {
      if (i + 1 < raw.size()) out->push_back(raw[i + 1]);
      i += 2;
      continue;
    }
    if (c == '"') break;
    if (c != '\r' && c != '\n') out->push_back(c);
    ++i;
  }
}

// Content of a comment without the outer parentheses; inner ones are kept as text.
void AppendCommentText(std::string_view raw, std::string* out) {
  size_t depth = 1;
  size_t i = 1;
  while (i < raw.size()) {
    char c = raw[i];
    if (c == '\\') {
      if (i + 1 < raw.size()) out->push_back(raw[i + 1]);
      i += 2;
      continue;
    }
    if (c == '(') ++depth;
    if (c == ')' && --depth == 0) break;
    out->push_back(c);
    ++i;
  }
}

// Same rule as EnvelopeAddress: no MTA delivers to an address with a control character.
bool HasCtl(std::string_view s) {
  for (char c : s) {
    if (IsCtl(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

// [obs-route] local-part "@" domain from tokens (comments already removed). CFWS around
// dots and '@' is allowed (obsolete syntax), so `john . doe @ example . com` is accepted.
bool ParseAddrSpecTokens(const std::vector<Token>& toks, bool allow_route, std::string* out) {
  const size_t n = toks.size();
  size_t i = 0;
  if (allow_route && n > 0 && toks[0].type == Tok::kAt) {
    while (i < n && toks[i].type != Tok::kColon) ++i;
    if (i >= n) return false;
    ++i;
  }
  std::string addr;
  bool last_word = false;
  bool any_word = false;
  for (; i < n && toks[i].type != Tok::kAt; ++i) {
    const Token& t = toks[i];
    switch (t.type) {
      case Tok::kAtom:
      case Tok::kQuoted:
        if (last_word || !t.ok) return false;
        if (t.type == Tok::kAtom) {
          addr.append(t.raw);
        } else {
          AppendUnquoted(t.raw, &addr);
        }
        last_word = any_word = true;
        break;
      case Tok::kDot:
        addr.push_back('.');
        last_word = false;
        break;
      default:
        return false;
    }
  }
  if (i >= n || !any_word || addr.empty() || HasCtl(addr)) return false;
  ++i;
  addr.push_back('@');
  if (i < n && toks[i].type == Tok::kLiteral) {
    for (char c : toks[i].raw) {
      if (!IsFws(c)) addr.push_back(c);
    }
    ++i;
  } else {
    last_word = any_word = false;
    for (; i < n; ++i) {
      const Token& t = toks[i];
      if (t.type == Tok::kAtom) {
        if (last_word) return false;
        addr.append(t.raw);
        last_word = any_word = true;
      } else if (t.type == Tok::kDot) {
        addr.push_back('.');
        last_word = false;
      } else {
        return false;
      }
    }
    if (!any_word) return false;
  }
  if (i != n) return false;
  *out = std::move(addr);
  return true;
}

std::string RenderPhrase(const std::vector<Token>& toks) {
  std::string s;
  for (const Token& t : toks) {
    if (t.space_before && !s.empty()) s.push_back(' ');
    if (t.type == Tok::kQuoted) {
      AppendUnquoted(t.raw, &s);
    } else {
      s.append(t.raw);
    }
  }
  return CleanDisplayName(DecodeEncodedWords(s));
}

std::string RenderComments(const std::vector<std::string_view>& comments) {
  std::string s;
  for (std::string_view c : comments) {
    if (!s.empty()) s.push_back(' ');
    AppendCommentText(c, &s);
  }
  return CleanDisplayName(DecodeEncodedWords(s));
}

// Splits the token stream into mailboxes. One forward pass; per-mailbox buffers are reused,
// so memory stays proportional to the largest mailbox.
class ListParser {
 public:
  std::vector<HeaderAddress> Run(std::string_view header) {
    Lexer lexer(header);
    Token t;
    bool pending_space = false;
    while (lexer.Next(&t)) {
      if (t.type == Tok::kComment) {
        comments_.push_back(t.raw);
        pending_space = true;
        continue;
      }
      t.space_before = t.space_before || pending_space;
      pending_space = false;
      Feed(t);
    }
    Finish();
    return std::move(out_);
  }

 private:
  enum class State { kPhrase, kAngle, kAfterAngle };

  void Feed(const Token& t) {
    switch (state_) {
      case State::kPhrase:
        if (t.type == Tok::kComma || t.type == Tok::kSemi) {
          Finish();
        } else if (t.type == Tok::kColon && !phrase_has_at_) {
          // Group start: the phrase so far was the group name, which is not an address.
          phrase_.clear();
          comments_.clear();
        } else if (t.type == Tok::kLt) {
          state_ = State::kAngle;
        } else {
          if (t.type == Tok::kAt) phrase_has_at_ = true;
          phrase_.push_back(t);
        }
        break;
      case State::kAngle:
        if (t.type == Tok::kGt) {
          state_ = State::kAfterAngle;
        } else if (t.type == Tok::kLt) {
          angle_.clear();  // `<junk <a@b>`: the innermost bracket wins
          angle_has_colon_ = false;
        } else if (t.type == Tok::kSemi ||
                   (t.type == Tok::kComma &&
                    !(angle_.size() > 0 && angle_[0].type == Tok::kAt && !angle_has_colon_))) {
          // A comma inside '<' only belongs to an obs-route (`<@a,@b:u@x>`); otherwise the
          // bracket was never closed and this mailbox is dropped.
          Reset();
        } else {
          if (t.type == Tok::kColon) angle_has_colon_ = true;
          angle_.push_back(t);
        }
        break;
      case State::kAfterAngle:
        if (t.type == Tok::kComma || t.type == Tok::kSemi) Finish();
        // Anything else between '>' and the separator is trailing garbage.
        break;
    }
  }

  void Finish() {
    std::string addr;
    if (state_ == State::kPhrase) {
      if (!phrase_.empty() && ParseAddrSpecTokens(phrase_, false, &addr)) {
        // Obsolete style `addr (Display Name)`: the comment is the only name there is.
        out_.push_back({std::move(addr), RenderComments(comments_)});
      }
    } else if (state_ == State::kAfterAngle) {
      if (ParseAddrSpecTokens(angle_, true, &addr)) {
        // `(Name) <addr>` has no phrase; its comment is still the best name there is.
        out_.push_back(
            {std::move(addr), phrase_.empty() ? RenderComments(comments_) : RenderPhrase(phrase_)});
      }
    }
    Reset();
  }

  void Reset() {
    state_ = State::kPhrase;
    phrase_.clear();
    angle_.clear();
    comments_.clear();
    phrase_has_at_ = false;
    angle_has_colon_ = false;
  }

  State state_ = State::kPhrase;
  std::vector<Token> phrase_;
  std::vector<Token> angle_;
  std::vector<std::string_view> comments_;
  bool phrase_has_at_ = false;
  bool angle_has_colon_ = false;
  std::vector<HeaderAddress> out_;
};

bool IsTextDelimiter(char c) {
  switch (c) {
    case '<':
    case '>':
    case '(':
    case ')':
    case ',':
    case ';':
    case ':':
    case '"':
      return true;
    default:
      return IsFws(c) || IsCtl(static_cast<unsigned char>(c));
  }
}

}  // namespace

namespace {
Status ParseEnvelope(std::string_view raw, std::string* out);
}  // namespace

Status EnvelopeAddress(std::string_view raw, std::string* out) {
  std::string result;
  Status s = ParseEnvelope(raw, &result);
  if (!s.ok()) return s;
  // A plain-looking result must read back as itself, so that entries and events built from
  // it are stable. Quotes can pair up differently once a source route is removed:
  // `@":u@["]` gives `u@["]`, which is not an address on its own.
  if (LooksLikeAddress(result)) {
    std::string again;
    if (!ParseEnvelope(result, &again).ok() || again != result) {
      return Status::Invalid("malformed quoting around the source route");
    }
  }
  *out = std::move(result);
  return Status::Ok();
}

namespace {

Status ParseEnvelope(std::string_view raw, std::string* out) {
  for (char c : raw) {
    if (c == '\0' || c == '\r' || c == '\n') return Status::Invalid("control character");
  }
  std::string_view s = TrimWsp(raw);
  if (s.empty()) return Status::Invalid("empty address");
  std::string_view addr;
  const size_t n = s.size();
  bool in_quotes = false;
  size_t i = 0;
  if (s[0] == '<') {
    for (i = 1; i < n; ++i) {
      char c = s[i];
      if (in_quotes) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_quotes = false;
        }
      } else if (c == '"') {
        in_quotes = true;
      } else if (c == '>') {
        break;
      } else if (c == '<') {
        return Status::Invalid("unbalanced angle brackets");
      }
    }
    if (i >= n) {
      return Status::Invalid(in_quotes ? "unterminated quoted string" : "missing '>'");
    }
    // ESMTP parameters after '>' (NOTIFY=..., ORCPT=...) are not part of the address.
    addr = TrimWsp(s.substr(1, i - 1));
    if (addr.empty()) return Status::Invalid("null address <>");
  } else {
    for (; i < n; ++i) {
      char c = s[i];
      if (in_quotes) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_quotes = false;
        }
      } else if (c == '"') {
        in_quotes = true;
      } else if (IsWsp(c)) {
        break;
      } else if (c == '<' || c == '>') {
        return Status::Invalid("unbalanced angle brackets");
      }
    }
    if (in_quotes) return Status::Invalid("unterminated quoted string");
    addr = s.substr(0, i < n ? i : n);
  }
  if (addr.front() == '@') {
    // Source route `@a,@b:user@dom` (RFC 5321 4.1.2): rspamd matches only the mailbox.
    size_t colon = addr.find(':');
    if (colon == std::string_view::npos) return Status::Invalid("source route without ':'");
    addr.remove_prefix(colon + 1);
    if (addr.empty()) return Status::Invalid("empty address after source route");
  }
  return ParseEnvelopeMailbox(addr, out);
}

}  // namespace

std::string CanonicalAddress(std::string_view address, const CanonOptions& options) {
  std::string out(address.size(), '\0');
  for (size_t i = 0; i < address.size(); ++i) out[i] = AsciiLower(address[i]);
  size_t at = out.rfind('@');  // a quoted local part may hold '@'; a domain never does
  if (at == std::string::npos) return out;
  std::string local = out.substr(0, at);
  std::string domain = out.substr(at + 1);
  if (options.strip_subaddress) {
    size_t plus = local.find('+');
    if (plus != std::string::npos && plus > 0) local.resize(plus);
  }
  if (options.gmail_dots && (domain == "gmail.com" || domain == "googlemail.com")) {
    std::string undotted;
    for (char c : local) {
      if (c != '.') undotted.push_back(c);
    }
    if (!undotted.empty()) local = std::move(undotted);
  }
  return local + "@" + domain;
}

bool LooksLikeAddress(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  if (n == 0) return false;
  if (s[0] == '"') {
    i = 1;
    size_t content = 0;
    for (;;) {
      if (i >= n) return false;
      char c = s[i];
      if (IsCtl(static_cast<unsigned char>(c)) || IsFws(c)) return false;
      if (c == '\\') {
        if (i + 1 >= n || IsCtl(static_cast<unsigned char>(s[i + 1])) || IsFws(s[i + 1])) {
          return false;
        }
        i += 2;
        ++content;
        continue;
      }
      ++i;
      if (c == '"') break;
      ++content;
    }
    if (content == 0 || i >= n || s[i] != '@') return false;
  } else {
    for (; i < n && s[i] != '@'; ++i) {
      if (!IsAtomOrDot(s[i])) return false;
    }
    if (i == 0 || i >= n) return false;
  }
  std::string_view domain = s.substr(i + 1);
  if (domain.empty()) return false;
  if (domain.front() == '[') {
    if (domain.size() < 3 || domain.back() != ']') return false;
    for (char c : domain.substr(1, domain.size() - 2)) {
      if (IsCtl(static_cast<unsigned char>(c)) || IsFws(c) || c == '[' || c == ']' || c == '\\') {
        return false;
      }
    }
    return true;
  }
  // Text is full of `@handles`; insisting on non-empty labels keeps `a@.`, `a@b..c` out.
  bool label_empty = true;
  for (char c : domain) {
    if (c == '.') {
      if (label_empty) return false;
      label_empty = true;
    } else if (IsAtext(c)) {
      label_empty = false;
    } else {
      return false;
    }
  }
  return !label_empty;
}

std::vector<HeaderAddress> ParseAddressList(std::string_view header_value) {
  return ListParser().Run(header_value);
}

std::vector<std::string> AddressesInText(std::string_view text) {
  std::vector<std::string> found;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsTextDelimiter(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !IsTextDelimiter(text[i])) ++i;
    std::string_view tok = text.substr(start, i - start);
    // Quotes, brackets and sentence punctuation that hug the address are not part of it.
    while (!tok.empty() && (tok.front() == '\'' || tok.front() == '[')) tok.remove_prefix(1);
    while (!tok.empty() &&
           (tok.back() == '\'' || tok.back() == '.' || tok.back() == '!' || tok.back() == '?')) {
      tok.remove_suffix(1);
    }
    if (LooksLikeAddress(tok)) {
      found.emplace_back(tok);
    } else if (!tok.empty() && tok.back() == ']' &&
               LooksLikeAddress(tok.substr(0, tok.size() - 1))) {
      found.emplace_back(tok.substr(0, tok.size() - 1));
    }
  }
  return found;
}

std::string DecodeHeaderText(std::string_view value) { return DecodeEncodedWords(value); }

}  // namespace compd
