#include "compd/mta/policy.h"

#include <cstring>

#include "compd/base/text.h"

namespace compd {

namespace {

// Client text quoted into an error message: short, printable ASCII only, so the message
// is safe in a log line and in the one-line reply that carries it back.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 40;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += text.size() > kMax ? "\"..." : "\"";
  return out;
}

bool ValidName(std::string_view name) {
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// Exim's $recipients: "a@x, b@y". Quoted local parts with commas are not split apart
// correctly, but such an address would not be a valid map entry either.
std::vector<std::string> SplitRecipients(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(start, comma - start);
    item = TrimBlanks(item);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

// Tripwire reply texts have '%' doubled for libmilter; a policy reply is taken literally.
std::string UndoubledPercent(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    if (text[i] == '%' && i + 1 < text.size() && text[i + 1] == '%') ++i;
  }
  return out;
}

std::string QuarantineReason(std::string_view ref) {
  return "compd: listed test recipient (ref " + std::string(ref) + ")";
}

}  // namespace

std::string_view PolicyRequest::Get(std::string_view name) const {
  for (const auto& [n, v] : attributes) {
    if (n == name) return v;
  }
  return {};
}

bool PolicyRequest::Has(std::string_view name) const {
  for (const auto& a : attributes) {
    if (a.first == name) return true;
  }
  return false;
}

PolicyParser::PolicyParser(PolicyLimits limits) : limits_(limits), line_no_(1) {}

Status PolicyParser::Fail(std::string message) {
  failed_ = true;
  return Status::Invalid("request " + std::to_string(request_no_) + ", line " +
                         std::to_string(line_no_) + ": " + message);
}

Status PolicyParser::EndLine() {
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (line_.empty()) {
    if (current_.attributes.empty()) {
      return Fail("empty line before any attribute (an empty request)");
    }
    complete_ = true;
    return Status::Ok();
  }
  if (std::memchr(line_.data(), '\0', line_.size()) != nullptr) {
    return Fail("NUL byte in " + Quote(line_));
  }
  size_t eq = line_.find('=');
  if (eq == std::string::npos) return Fail("expected name=value, got " + Quote(line_));
  std::string_view name(line_.data(), eq);
  if (name.empty()) return Fail("empty attribute name in " + Quote(line_));
  if (!ValidName(name)) return Fail("invalid attribute name " + Quote(name));
  if (current_.Has(name)) return Fail("attribute " + Quote(name) + " given twice");
  if (current_.attributes.size() >= limits_.max_attributes) {
    return Fail("more than " + std::to_string(limits_.max_attributes) + " attributes");
  }
  current_.attributes.emplace_back(std::string(name), line_.substr(eq + 1));
  line_.clear();
  ++line_no_;
  return Status::Ok();
}

Status PolicyParser::Feed(std::string_view data, size_t* consumed, bool* complete) {
  *consumed = 0;
  *complete = false;
  if (failed_) return Status::Invalid("the connection sent malformed input earlier");
  if (complete_) TakeRequest();  // the caller did not want the last one
  size_t pos = 0;
  while (pos < data.size()) {
    const void* nl = std::memchr(data.data() + pos, '\n', data.size() - pos);
    size_t end = nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - data.data())
                               : data.size();
    size_t take = end - pos;
    // Counted with the LF still to come, so a line is refused as soon as it cannot fit.
    // When both bounds break within this piece, the one a byte-at-a-time reader would hit
    // first is reported, so the message does not depend on how the bytes arrived.
    const size_t line_room =
        limits_.max_line_bytes > line_.size() ? limits_.max_line_bytes - line_.size() : 0;
    const size_t request_room =
        limits_.max_request_bytes > request_bytes_ ? limits_.max_request_bytes - request_bytes_ : 0;
    const bool line_over = take >= line_room;
    const bool request_over = take >= request_room;
    if (line_over && (!request_over || line_room <= request_room)) {
      *consumed = end;
      return Fail("line longer than " + std::to_string(limits_.max_line_bytes) + " bytes");
    }
    if (request_over) {
      *consumed = end;
      return Fail("request larger than " + std::to_string(limits_.max_request_bytes) + " bytes");
    }
    line_.append(data.data() + pos, take);
    request_bytes_ += take;
    pos = end;
    if (nl == nullptr) break;
    ++pos;
    ++request_bytes_;
    Status s = EndLine();
    if (!s.ok() || complete_) {
      *consumed = pos;
      *complete = complete_;
      return s;
    }
  }
  *consumed = pos;
  return Status::Ok();
}

PolicyRequest PolicyParser::TakeRequest() {
  PolicyRequest out = std::move(current_);
  current_ = PolicyRequest();
  line_.clear();
  request_bytes_ = 0;
  line_no_ = 1;
  if (complete_) ++request_no_;
  complete_ = false;
  return out;
}

void PostfixMessageMemory::Prepare(PolicyRequest* request) {
  if (Upper(request->Get("protocol_state")) != "END-OF-MESSAGE" || !request->Has("instance")) {
    return;
  }
  std::vector<std::string> recipients;
  if (request->Get("instance") == instance_) {
    for (auto& [recipient, action] : answers_) {
      if (action == "DUNNO" || action.compare(0, 4, "HOLD") == 0) {  // let through
        recipients.push_back(std::move(recipient));
      }
    }
  }
  instance_.clear();
  answers_.clear();
  for (const auto& a : request->attributes) {
    if (a.first.compare(0, 6, "compd_") == 0) return;  // the client wrote its own
  }
  if (recipients.empty() && !request->Get("recipient").empty()) {
    recipients.emplace_back(request->Get("recipient"));  // Postfix names a single one
  }
  if (recipients.empty()) return;
  std::string list;
  for (const std::string& r : recipients) list += (list.empty() ? "" : ", ") + r;
  request->attributes.emplace_back("compd_accepted_rcpts", std::move(list));
}

const std::string* PostfixMessageMemory::AnswerFor(std::string_view recipient) const {
  for (const auto& [r, a] : answers_) {
    if (r == recipient) return &a;
  }
  return nullptr;
}

bool PostfixMessageMemory::Repeated(const PolicyRequest& request, std::string* action) const {
  if (!request.Has("instance") || request.Get("instance") != instance_ ||
      Upper(request.Get("protocol_state")) != "RCPT") {
    return false;
  }
  const std::string* earlier = AnswerFor(request.Get("recipient"));
  if (earlier == nullptr) return false;
  *action = *earlier;
  return true;
}

void PostfixMessageMemory::Answered(const PolicyRequest& request, std::string_view action) {
  if (Upper(request.Get("protocol_state")) != "RCPT" || !request.Has("instance")) return;
  if (request.Get("instance") != instance_) {
    instance_ = std::string(request.Get("instance"));
    answers_.clear();
  }
  // With Postfix's default smtpd_delay_reject = yes, smtpd_sender_restrictions are
  // evaluated at RCPT too: the same recipient comes once per restriction list asking.
  const std::string_view recipient = request.Get("recipient");
  if (!recipient.empty() && answers_.size() < 1000 && AnswerFor(recipient) == nullptr) {
    answers_.emplace_back(recipient, action);
  }
}

std::string DecodeEximEscapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '\\' || i + 1 >= text.size()) {
      out += c;
      continue;
    }
    char n = text[i + 1];
    char decoded = 0;
    switch (n) {
      case 'n':
        decoded = '\n';
        break;
      case 'r':
        decoded = '\r';
        break;
      case 't':
        decoded = '\t';
        break;
      case 'b':
        decoded = '\b';
        break;
      case 'v':
        decoded = '\v';
        break;
      case 'f':
        decoded = '\f';
        break;
      default:
        break;
    }
    if (decoded != 0) {
      out += decoded;
      ++i;
      continue;
    }
    auto octal = [](char d) { return d >= '0' && d <= '7'; };
    if (i + 3 < text.size() && octal(text[i + 1]) && octal(text[i + 2]) && octal(text[i + 3]) &&
        text[i + 1] <= '3') {
      out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 +
                               (text[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += c;  // a backslash Exim left alone
  }
  return out;
}

std::string PolicyAction(const Verdict& v, std::string_view ref) {
  switch (v.kind) {
    case Verdict::Kind::kContinue:
    case Verdict::Kind::kAccept:
      return "DUNNO";
    case Verdict::Kind::kReject:
    case Verdict::Kind::kTempfail: {
      bool reject = v.kind == Verdict::Kind::kReject;
      std::string out = v.rcode.empty() ? (reject ? "550" : "451") : v.rcode;
      if (!v.xcode.empty()) out += " " + v.xcode;
      std::string text = UndoubledPercent(v.text);
      out += " " + (text.empty() ? std::string("compd: refused by policy") : text);
      return out;
    }
    case Verdict::Kind::kDiscard:
      return "DISCARD " + (v.text.empty() ? QuarantineReason(ref) : UndoubledPercent(v.text));
    case Verdict::Kind::kQuarantine:
      return "HOLD " + (v.reason.empty() ? QuarantineReason(ref) : v.reason);
  }
  return "DUNNO";
}

std::string FormatPolicyReply(std::string_view action) {
  std::string out = "action=";
  for (char c : action) {
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  }
  out += "\n\n";
  return out;
}

Status EvaluatePolicyRequest(const Tripwire& tripwire, const PolicyRequest& request,
                             std::string* action) {
  if (!request.Has("request")) return Status::Invalid("missing request=smtpd_access_policy");
  if (request.Get("request") != "smtpd_access_policy") {
    return Status::Invalid("unsupported request=" + Quote(request.Get("request")) +
                           " (expected smtpd_access_policy)");
  }
  if (!request.Has("protocol_state")) {
    return Status::Invalid("missing protocol_state (RCPT, or END-OF-MESSAGE for headers)");
  }
  const std::string state = Upper(request.Get("protocol_state"));
  const bool rcpt = state == "RCPT";
  // check_policy_service in smtpd_sender_restrictions asks at MAIL: there is no recipient
  // to check yet, but a locked account gets the reply compd-milter gives it at MAIL FROM.
  const bool mail = state == "MAIL";
  const bool message = (state == "DATA" || state == "END-OF-MESSAGE") &&
                       (request.Has("compd_to") || request.Has("compd_cc") ||
                        request.Has("compd_rcpts") || request.Has("compd_accepted_rcpts"));
  if ((!rcpt && !mail && !message) || (rcpt && request.Get("recipient").empty())) {
    *action = "DUNNO";
    return Status::Ok();
  }

  Session session(&tripwire, std::string(request.Get("client_address")),
                  std::string(request.Get("client_name")), "policy");
  session.Helo(request.Get("helo_name"));
  const std::string_view queue_id = request.Get("queue_id");
  // Postfix sends size= (SIZE= of MAIL FROM, the real size at END-OF-MESSAGE, 0 when not
  // known); Exim's DATA request gives $message_size.
  int64_t size = -1;
  ParseDecimal(request.Get("size"), &size);
  Verdict v = session.Mail(request.Get("sender"), request.Get("sasl_username"),
                           request.Get("sasl_method"), queue_id, size > 0 ? size : -1);
  if (v.kind != Verdict::Kind::kContinue || mail) {  // out of scope, or a locked account
    *action = PolicyAction(v, session.transaction_id());
    return Status::Ok();
  }
  if (rcpt) {
    v = session.Rcpt(request.Get("recipient"), queue_id);
    if (v.kind == Verdict::Kind::kContinue && session.quarantine_pending()) {
      v.kind = Verdict::Kind::kQuarantine;
      v.reason = QuarantineReason(session.transaction_id());
    }
    // Postfix (the client that sends `instance`) itself prefixes a recipient restriction's
    // text with "<address>: Recipient address rejected: "; the default reject_text would
    // say it twice.
    constexpr std::string_view kPostfixSays = "Recipient address rejected: ";
    if (request.Has("instance") && v.text.compare(0, kPostfixSays.size(), kPostfixSays) == 0) {
      v.text.erase(0, kPostfixSays.size());
    }
    *action = PolicyAction(v, session.transaction_id());
    return Status::Ok();  // the Session's destructor hands its events over
  }

  // Subject and Message-ID first, so envelope hits of compd_rcpts carry them too.
  static constexpr std::pair<const char*, const char*> kHeaders[] = {
      {"compd_subject", "Subject"}, {"compd_message_id", "Message-ID"},
      {"compd_from", "From"},       {"compd_to", "To"},
      {"compd_cc", "Cc"},
  };
  for (const auto& [attribute, header] : {kHeaders[0], kHeaders[1], kHeaders[2]}) {
    if (request.Has(attribute)) session.Header(header, DecodeEximEscapes(request.Get(attribute)));
  }
  // The recipients an SMTP session got accepted, for the detection engine (each was asked
  // about at RCPT; not looked up again).
  for (const std::string& r :
       SplitRecipients(DecodeEximEscapes(request.Get("compd_accepted_rcpts")))) {
    session.AcceptedRecipient(r);
  }
  for (const std::string& r : SplitRecipients(DecodeEximEscapes(request.Get("compd_rcpts")))) {
    v = session.Rcpt(r, queue_id);
    if (v.kind == Verdict::Kind::kReject || v.kind == Verdict::Kind::kTempfail ||
        v.kind == Verdict::Kind::kDiscard) {
      // One request is one message: a refused recipient refuses all of it.
      session.EndOfHeaders();  // no To/Cc given yet: this only adds the subject to the events
      *action = PolicyAction(v, session.transaction_id());
      return Status::Ok();
    }
  }
  for (const auto& [attribute, header] : {kHeaders[3], kHeaders[4]}) {
    if (request.Has(attribute)) session.Header(header, DecodeEximEscapes(request.Get(attribute)));
  }
  session.EndOfHeaders();
  v = session.EndOfMessage(queue_id);
  *action = PolicyAction(v, session.transaction_id());
  return Status::Ok();
}

}  // namespace compd
