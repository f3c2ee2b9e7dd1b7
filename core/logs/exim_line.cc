#include "compd/logs/exim_line.h"

namespace compd {

namespace {

bool IsEximId(std::string_view s) {
  // 1nh9qH-0008OE-RW (up to 4.96) and 1qWr2x-00000001hJN-0jLS (4.97 and later).
  if (s.size() == 16) return s[6] == '-' && s[13] == '-';
  if (s.size() == 23) return s[6] == '-' && s[18] == '-';
  return false;
}

size_t SkipBlanks(std::string_view s, size_t i) {
  while (i < s.size() && s[i] == ' ') ++i;
  return i;
}

size_t TokenEnd(std::string_view s, size_t i) {
  size_t e = s.find(' ', i);
  return e == std::string_view::npos ? s.size() : e;
}

// s[i] is '"': the index after the closing quote (s.size() when unterminated, *ok false).
size_t QuotedEnd(std::string_view s, size_t i, bool* ok) {
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
    } else if (s[j] == '"') {
      *ok = true;
      return j + 1;
    }
  }
  *ok = false;
  return s.size();
}

// H=name (helo) [ip]:port with name and helo optional; i is just after "H=".
bool ParseHost(std::string_view s, size_t* pos, EximArrival* a) {
  size_t i = *pos;
  bool have_helo = false;
  if (i < s.size() && s[i] != '[' && s[i] != '(') {
    size_t e = TokenEnd(s, i);
    a->client_name = s.substr(i, e - i);
    i = SkipBlanks(s, e);
  }
  if (i < s.size() && s[i] == '(') {
    // A HELO argument is one word, but Exim prints whatever came: end at ") [".
    size_t close = s.find(") [", i);
    if (close == std::string_view::npos) return false;
    a->helo = s.substr(i + 1, close - i - 1);
    have_helo = true;
    i = close + 2;
  }
  if (i >= s.size() || s[i] != '[') return false;
  size_t close = s.find(']', i);
  if (close == std::string_view::npos) return false;
  a->client_ip = s.substr(i + 1, close - i - 1);
  if (!have_helo) a->helo = a->client_name;  // Exim omits a HELO equal to the name
  *pos = TokenEnd(s, close);
  return !a->client_ip.empty();
}

std::string_view StripAngles(std::string_view v) {
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') return v.substr(1, v.size() - 2);
  return v;
}

bool ParseArrival(std::string_view s, EximArrival* a) {
  *a = EximArrival();
  size_t i = SkipBlanks(s, 0);
  size_t e = TokenEnd(s, i);
  a->sender = StripAngles(s.substr(i, e - i));
  i = e;
  for (;;) {
    i = SkipBlanks(s, i);
    if (i >= s.size()) break;
    e = TokenEnd(s, i);
    std::string_view tok = s.substr(i, e - i);
    if (tok == "for") {
      a->has_for = true;
      size_t r = SkipBlanks(s, e);
      a->recipients = s.substr(r);
      break;
    }
    if (tok == "from") {  // +received_sender: `from <original sender>`
      i = TokenEnd(s, SkipBlanks(s, e));
      continue;
    }
    size_t eq = tok.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      i = e;
      continue;
    }
    std::string_view key = tok.substr(0, eq);
    size_t v = i + eq + 1;
    if (key == "H") {
      if (!ParseHost(s, &v, a)) return false;
      i = v;
      continue;
    }
    if (key == "A") {
      size_t colon = s.find(':', v);
      size_t end = TokenEnd(s, v);
      if (colon == std::string_view::npos || colon > end) {
        a->authenticator = s.substr(v, end - v);  // no id was set
        i = end;
        continue;
      }
      a->authenticator = s.substr(v, colon - v);
      size_t id = colon + 1;
      if (id < s.size() && s[id] == '"') {
        bool ok;
        size_t q = QuotedEnd(s, id, &ok);
        if (!ok) return false;
        a->auth_id = s.substr(id + 1, q - id - 2);
        a->auth_id_quoted = true;
        i = q;
      } else {
        a->auth_id = s.substr(id, end - id);
        i = end;
      }
      continue;
    }
    if (v < s.size() && s[v] == '"') {
      bool ok;
      size_t q = QuotedEnd(s, v, &ok);
      if (!ok) return false;
      if (key == "T") {
        a->subject = s.substr(v + 1, q - v - 2);
        a->subject_quoted = true;
      }
      i = q;
      continue;
    }
    std::string_view val = s.substr(v, e - v);
    if (key == "S") {
      int64_t n = 0;
      if (val.empty() || val.size() > 15) return false;
      for (char c : val) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + (c - '0');
      }
      a->size = n;
    } else if (key == "id") {
      a->message_id = StripAngles(val);
    } else if (key == "T") {
      a->subject = val;
    }
    i = e;
  }
  return true;
}

// `addr [(parent)] [<original>] ...`: the original address when Exim gives one.
std::string_view DeliveryRecipient(std::string_view s) {
  size_t i = SkipBlanks(s, 0);
  size_t e = TokenEnd(s, i);
  std::string_view addr = s.substr(i, e - i);
  if (!addr.empty() && addr.back() == ':') addr.remove_suffix(1);  // `** addr: reason`
  for (;;) {
    i = SkipBlanks(s, e);
    if (i >= s.size() || (s[i] != '<' && s[i] != '(')) break;
    e = TokenEnd(s, i);
    std::string_view t = s.substr(i, e - i);
    if (!t.empty() && t.back() == ':') t.remove_suffix(1);
    if (t.size() >= 2 && t.front() == '<' && t.back() == '>') addr = t.substr(1, t.size() - 2);
  }
  return addr;
}

}  // namespace

void ParseEximLine(std::string_view text, EximLine* out) {
  out->kind = EximLineKind::kOther;
  out->id = {};
  out->recipient = {};
  size_t sp = text.find(' ');
  if (sp == std::string_view::npos || !IsEximId(text.substr(0, sp))) return;
  out->id = text.substr(0, sp);
  std::string_view rest = text.substr(sp + 1);
  if (rest.size() >= 2 && rest[1] != ' ' && (rest.size() == 2 || rest[2] == ' ')) {
    char a = rest[0], b = rest[1];
    std::string_view args = rest.size() > 3 ? rest.substr(3) : std::string_view();
    if (a == '<' && b == '=') {
      out->kind = ParseArrival(args, &out->arrival) ? EximLineKind::kArrival : EximLineKind::kBad;
      return;
    }
    if ((a == '=' && b == '>') || (a == '-' && b == '>') || (a == '*' && b == '>') ||
        (a == '*' && b == '*') || (a == '=' && b == '=')) {
      out->recipient = DeliveryRecipient(args);
      out->kind = out->recipient.empty() ? EximLineKind::kBad : EximLineKind::kDelivery;
      return;
    }
  }
  if (rest == "Completed" || rest.substr(0, 10) == "Completed ") {
    out->kind = EximLineKind::kCompleted;
  }
}

void AppendEximUnquoted(std::string_view q, std::string* out) {
  for (size_t i = 0; i < q.size(); ++i) {
    char c = q[i];
    if (c != '\\' || i + 1 >= q.size()) {
      out->push_back(c);
      continue;
    }
    char n = q[++i];
    switch (n) {
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      default:
        if (n >= '0' && n <= '7') {
          int v = 0, k = 0;
          while (k < 3 && i < q.size() && q[i] >= '0' && q[i] <= '7') {
            v = v * 8 + (q[i] - '0');
            ++i;
            ++k;
          }
          --i;
          out->push_back(static_cast<char>(v));
        } else {
          out->push_back(n);  // \\ \" and anything else: the character itself
        }
    }
  }
}

void AssignEximValue(std::string_view value, bool quoted, std::string* out) {
  out->clear();
  if (quoted) {
    AppendEximUnquoted(value, out);
  } else {
    out->append(value);
  }
}

}  // namespace compd
