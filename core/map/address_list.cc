// RFC 5322 address lists. Every scanner here moves forward only: each input byte is looked
// at a bounded number of times, so hostile headers (1 MB of commas, 100k nested comments)
// cost linear time and memory, and nothing recurses.
#include "compd/map/address_list.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/encoded_words.h"
#include "compd/base/text.h"
#include "compd/map/address.h"

namespace compd {
namespace {

// Control characters (raw or decoded) become spaces; runs of spaces collapse; trimmed.
std::string CleanDisplayName(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (IsAsciiControl(c) || c == ' ') {
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

// The one-byte tokens; kOther for any other byte.
Tok Punctuation(char c) {
  static constexpr struct {
    char c;
    Tok type;
  } kTable[] = {{'<', Tok::kLt},    {'>', Tok::kGt},   {'@', Tok::kAt}, {',', Tok::kComma},
                {':', Tok::kColon}, {';', Tok::kSemi}, {'.', Tok::kDot}};
  for (const auto& row : kTable) {
    if (row.c == c) return row.type;
  }
  return Tok::kOther;
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  // False at the end of the input.
  bool Next(Token* t) {
    const size_t n = s_.size();
    bool space = false;
    while (pos_ < n && IsBlankOrEol(s_[pos_])) {
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
        t->ok = SkipEnclosed(')');
        break;
      case '"':
        t->type = Tok::kQuoted;
        t->ok = SkipEnclosed('"');
        break;
      case '[':
        t->type = SkipLiteral() ? Tok::kLiteral : Tok::kOther;
        break;
      default:
        if (IsAtext(c)) {
          t->type = Tok::kAtom;
          while (pos_ < n && IsAtext(s_[pos_])) ++pos_;
        } else {
          t->type = Punctuation(c);
          ++pos_;
        }
    }
    t->raw = s_.substr(start, pos_ - start);
    return true;
  }

 private:
  // From the opening '(' or '"' at pos_ to past its closing byte; quoted pairs are stepped
  // over whole. Nesting (comments only) is a counter, not recursion: 100k '(' cost 100k
  // steps and no stack. False when the input ends first.
  bool SkipEnclosed(char close) {
    const size_t n = s_.size();
    const char open = s_[pos_++];
    size_t depth = 1;
    while (pos_ < n) {
      char c = s_[pos_];
      if (c == '\\') {
        pos_ = pos_ + 2 < n ? pos_ + 2 : n;
        continue;
      }
      ++pos_;
      if (c == close && --depth == 0) return true;
      if (c == open && open != close) ++depth;
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
          c == ')' || c == '\\' || (IsAsciiControl(c) && !IsBlankOrEol(c))) {
        return false;
      }
      ++pos_;
    }
    return false;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// Content of a quoted string or a comment (raw[0] is the opening byte): quoted pairs
// unescaped; inner parentheses of a comment are kept as text; folding CR/LF are removed
// when drop_eol (quoted strings).
void AppendEnclosed(std::string_view raw, char close, bool drop_eol, std::string* out) {
  const char open = raw[0];
  size_t depth = 1;
  for (size_t i = 1; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\') {
      if (i + 1 < raw.size()) out->push_back(raw[i + 1]);
      ++i;
      continue;
    }
    if (c == close && --depth == 0) break;
    if (c == open && open != close) ++depth;
    if (drop_eol && (c == '\r' || c == '\n')) continue;
    out->push_back(c);
  }
}

// Same rule as EnvelopeAddress: no MTA delivers to an address with a control character.
bool HasCtl(std::string_view s) {
  for (char c : s) {
    if (IsAsciiControl(c)) return true;
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
          AppendEnclosed(t.raw, '"', true, &addr);
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
      if (!IsBlankOrEol(c)) addr.push_back(c);
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
      AppendEnclosed(t.raw, '"', true, &s);
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
    AppendEnclosed(c, ')', false, &s);
  }
  return CleanDisplayName(DecodeEncodedWords(s));
}

// Splits the token stream into mailboxes. One forward pass; per-mailbox buffers are reused,
// so memory stays proportional to the largest mailbox.
class ListParser {
 public:
  std::vector<HeaderAddress> Run(std::string_view header) {
    // Every message's From and To go through here: room for a usual address up front
    // rather than a reallocation per doubling.
    phrase_.reserve(8);
    angle_.reserve(8);
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

}  // namespace

std::vector<HeaderAddress> ParseAddressList(std::string_view header_value) {
  return ListParser().Run(header_value);
}

}  // namespace compd
