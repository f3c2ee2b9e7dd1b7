#include "compd/mta/tripwire.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "compd/base/encoded_words.h"
#include "compd/base/text.h"
#include "compd/map/address.h"
#include "compd/map/address_list.h"
#include "compd/map/envelope_address.h"

namespace compd {

namespace {

// To/Cc text kept per message. Postfix's header_size_limit is 100 KiB per header by default;
// this bounds memory and parse time even when the MTA allows more.
constexpr size_t kMaxHeaderBytes = 1 << 20;
constexpr size_t kMaxFieldBytes = 998;  // Subject/Message-ID kept for events (RFC 5322 line)

// Folding removed, leading blanks dropped, at most kMaxFieldBytes kept: one allocation.
void AssignUnfolded(std::string_view v, std::string* out) {
  size_t b = 0;
  while (b < v.size() && (v[b] == ' ' || v[b] == '\t' || v[b] == '\r' || v[b] == '\n')) ++b;
  v.remove_prefix(b);
  out->clear();
  out->reserve(std::min(v.size(), kMaxFieldBytes));
  for (char c : v) {
    if (out->size() >= kMaxFieldBytes) break;
    if (c == '\r' || c == '\n') continue;
    out->push_back(c);
  }
}

// The bytes a header field takes in the message: "Name: value\r\n" (folding included;
// libmilter passes the value with its line breaks as LF only, each is CRLF on the wire).
int64_t HeaderFieldBytes(std::string_view name, std::string_view value) {
  int64_t n = static_cast<int64_t>(name.size() + value.size()) + 4;
  for (char c : value) n += c == '\n' ? 1 : 0;
  return n;
}

bool IsLoopback(std::string_view ip) { return ip == "127.0.0.1" || ip == "::1"; }

Verdict Refusal(Verdict::Kind kind, const char* rcode, const char* xcode, std::string_view text) {
  Verdict v;
  v.kind = kind;
  v.rcode = rcode;
  v.xcode = xcode;
  v.text = SafeReplyText(text);
  return v;
}

}  // namespace

Verdict Verdict::Reject(std::string_view text) {
  return Refusal(Kind::kReject, "550", "5.7.1", text);
}

Verdict Verdict::Tempfail(std::string_view text) {
  return Refusal(Kind::kTempfail, "451", "4.7.1", text);
}

int64_t EsmtpSizeParameter(std::string_view param) {
  int64_t n = -1;
  if (!StartsWithIgnoreAsciiCase(param, "SIZE=") || !ParseDecimal(param.substr(5), &n)) return -1;
  return n;
}

bool ParseHitAction(std::string_view name, HitAction* out) {
  static constexpr std::pair<const char*, HitAction> kNames[] = {
      {"reject", HitAction::kReject},         {"tempfail", HitAction::kTempfail},
      {"quarantine", HitAction::kQuarantine}, {"discard", HitAction::kDiscard},
      {"monitor", HitAction::kMonitor},
  };
  for (const auto& [n, a] : kNames) {
    if (name == n) {
      *out = a;
      return true;
    }
  }
  return false;
}

std::string SafeReplyText(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') continue;
    if (c == '%') out += '%';
    out += c;
  }
  return out;
}

const char* HitActionName(HitAction action) {
  switch (action) {
    case HitAction::kReject:
      return "reject";
    case HitAction::kTempfail:
      return "tempfail";
    case HitAction::kQuarantine:
      return "quarantine";
    case HitAction::kDiscard:
      return "discard";
    case HitAction::kMonitor:
      return "monitor";
  }
  return "?";
}

Status TripwireOptions::FromConfig(const Config& config, TripwireOptions* out) {
  TripwireOptions o;
  if (!ParseHitAction(config.GetString("action"), &o.action) ||
      !ParseHitAction(config.GetString("non_smtpd_action"), &o.non_smtpd_action)) {
    return Status::Internal("action settings not validated");
  }
  o.check_headers = config.GetBool("check_headers");
  o.check_display_names = config.GetBool("check_display_names");
  o.check_non_smtpd = config.GetBool("check_non_smtpd");
  Status s = ParseCidrList(config.GetString("trusted_networks"), &o.trusted_networks);
  if (!s.ok()) return Status::Invalid("trusted_networks: " + s.message());
  o.reject_text = config.GetString("reject_text");
  o.hostname = config.GetString("hostname");
  if (o.hostname.empty()) {
    char buf[256] = {0};
    if (gethostname(buf, sizeof buf - 1) == 0) o.hostname = buf;
  }
  *out = std::move(o);
  return Status::Ok();
}

Tripwire::Tripwire(TripwireOptions options, TripwireOutlets outlets)
    : options_(std::make_shared<const TripwireOptions>(std::move(options))),
      outlets_(std::move(outlets)) {
  std::random_device rd;
  seed_ = (uint64_t{rd()} << 32) ^ rd();
}

void Tripwire::SetOptions(TripwireOptions options) {
  std::atomic_store(&options_, std::shared_ptr<const TripwireOptions>(
                                   std::make_shared<const TripwireOptions>(std::move(options))));
}

TripwireStats Tripwire::stats() const {
  TripwireStats st;
  st.transactions = transactions_.load(std::memory_order_relaxed);
  st.recipients_checked = rcpts_checked_.load(std::memory_order_relaxed);
  st.header_addresses_checked = header_checked_.load(std::memory_order_relaxed);
  return st;
}

std::string Tripwire::NewTransactionId() const {
  // Counter mixed with a per-process random seed through a bijective 64-bit mix
  // (splitmix64 finaliser): unique within the process, unpredictable across processes.
  uint64_t x = seed_ + 0x9e3779b97f4a7c15ULL * (counter_.fetch_add(1) + 1);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  static constexpr char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::string id(10, 'A');
  for (char& c : id) {
    c = kAlphabet[x & 31];
    x >>= 5;
  }
  return id;
}

Session::Session(const Tripwire* tripwire, std::string client_ip, std::string client_name,
                 std::string source)
    : tw_(tripwire),
      opts_(tripwire->options()),
      client_ip_(std::move(client_ip)),
      client_name_(std::move(client_name)),
      source_(std::move(source)) {}

Session::~Session() { Flush(); }

void Session::Helo(std::string_view helo) { AssignUnfolded(helo, &helo_); }

void Session::ResetTransaction() {
  in_scope_ = false;
  local_submission_ = false;
  txn_id_.clear();
  account_.clear();
  auth_type_.clear();
  sender_.clear();
  queue_id_.clear();
  accepted_.clear();
  to_cc_.clear();
  header_bytes_ = 0;
  declared_size_ = -1;
  header_fields_bytes_ = 0;
  header_seen_ = false;
  subject_.clear();
  message_id_.clear();
  from_header_.clear();
  to_header_.clear();
  envelope_quarantine_ = false;
  header_hit_ = false;
}

void Session::Flush() {
  for (auto& e : pending_) {
    if (e.queue_id.empty()) e.queue_id = queue_id_;
    tw_->Emit(std::move(e));
  }
  pending_.clear();
}

HitAction Session::EffectiveAction() const {
  if (!local_submission_) return opts_->action;
  // Non-SMTP submissions cannot be refused per recipient (and Postfix's non_smtpd_milters
  // must not reject), so only quarantine or record there.
  return opts_->non_smtpd_action == HitAction::kQuarantine ? HitAction::kQuarantine
                                                           : HitAction::kMonitor;
}

Verdict Session::ActOn(HitAction action) const {
  Verdict v;
  std::string text = opts_->reject_text;
  for (size_t p; (p = text.find("{ref}")) != std::string::npos;) text.replace(p, 5, txn_id_);
  switch (action) {
    case HitAction::kReject:
      return Verdict::Reject(text);
    case HitAction::kTempfail:
      return Verdict::Tempfail(text);
    case HitAction::kDiscard:
      v.kind = Verdict::Kind::kDiscard;
      break;
    case HitAction::kQuarantine:
      v.kind = Verdict::Kind::kQuarantine;
      v.reason = "compd: listed test recipient (ref " + txn_id_ + ")";
      break;
    case HitAction::kMonitor:
      break;
  }
  return v;
}

Verdict Session::Mail(std::string_view sender, std::string_view auth_authen,
                      std::string_view auth_type, std::string_view queue_id,
                      int64_t declared_size) {
  Flush();
  ResetTransaction();
  opts_ = tw_->options();
  const TripwireOptions& o = *opts_;
  if (!auth_authen.empty()) {
    account_ = std::string(auth_authen);
  } else if (InNetworks(o.trusted_networks, client_ip_)) {
    account_ = "ip:" + client_ip_;
  } else if (o.check_non_smtpd && IsLoopback(client_ip_) && client_name_ == "localhost") {
    // Postfix presents sendmail(1)/pickup mail to non_smtpd_milters as a connection from
    // localhost [127.0.0.1] without authentication.
    local_submission_ = true;
    std::string s;
    account_ = "local:" + (EnvelopeAddress(sender, &s).ok() ? s : std::string(sender));
  } else {
    return Verdict{Verdict::Kind::kAccept, "", "", "", ""};  // not ours: stop calling us
  }
  in_scope_ = true;
  tw_->CountTransaction();
  txn_id_ = tw_->NewTransactionId();
  if (tw_->outlets().account_gate) {
    Verdict v = tw_->outlets().account_gate(account_);
    if (v.kind != Verdict::Kind::kContinue) {
      in_scope_ = false;
      return v;
    }
  }
  auth_type_.assign(auth_type);
  if (!EnvelopeAddress(sender, &sender_).ok()) sender_.clear();
  queue_id_.assign(queue_id);
  declared_size_ = declared_size;
  return Verdict::Continue();
}

Event Session::NewEvent(const std::string& recipient, const char* where, const Match& match,
                        HitAction action) const {
  Event e;
  e.id = txn_id_ + "-" + std::to_string(pending_.size() + 1);
  e.type = "hit";
  e.time = FormatUtcMillis(std::chrono::system_clock::now());
  e.host = opts_->hostname;
  e.account = account_;
  e.auth_type = auth_type_;
  e.client_ip = client_ip_;
  e.client_name = client_name_;
  e.helo = helo_;
  e.sender = sender_;
  e.recipient = recipient;
  e.where = where;
  e.entry = match.entry;
  e.entry_kind = EntryKindName(match.kind);
  e.action = HitActionName(action);
  e.queue_id = queue_id_;
  e.txn_id = txn_id_;
  e.source = source_;
  return e;
}

Verdict Session::Rcpt(std::string_view recipient, std::string_view queue_id) {
  if (!in_scope_) return Verdict::Continue();
  if (queue_id_.empty()) queue_id_.assign(queue_id);
  std::string address;
  if (accepted_.capacity() == 0) accepted_.reserve(4);
  if (!EnvelopeAddress(recipient, &address).ok()) {
    accepted_.emplace_back(recipient);
    return Verdict::Continue();  // the MTA judges syntax; nothing for us to match
  }
  std::shared_ptr<const Matcher> m = tw_->Snapshot();
  tw_->CountRecipientChecked();
  std::optional<Match> hit = m ? m->Lookup(address) : std::nullopt;
  if (!hit) {
    accepted_.push_back(std::move(address));
    return Verdict::Continue();
  }
  HitAction action = EffectiveAction();
  pending_.push_back(NewEvent(address, "envelope", *hit, action));
  switch (action) {
    case HitAction::kReject:
    case HitAction::kTempfail:
      return ActOn(action);  // this recipient only
    case HitAction::kQuarantine:
      envelope_quarantine_ = true;
      break;
    case HitAction::kDiscard:
      return ActOn(action);  // the whole message
    case HitAction::kMonitor:
      break;
  }
  accepted_.push_back(std::move(address));
  return Verdict::Continue();
}

void Session::AcceptedRecipient(std::string_view recipient) {
  if (!in_scope_) return;
  std::string address;
  accepted_.push_back(EnvelopeAddress(recipient, &address).ok() ? address : std::string(recipient));
}

void Session::Header(std::string_view name, std::string_view value) {
  if (!in_scope_) return;
  header_seen_ = true;
  header_fields_bytes_ += HeaderFieldBytes(name, value);
  if (EqualsIgnoreAsciiCase(name, "Subject")) {
    // Decoded, as the MTAs' logs hold it, so live and replay see the same subject.
    if (subject_.empty()) subject_ = SubjectText(value, kMaxFieldBytes);
  } else if (EqualsIgnoreAsciiCase(name, "Message-ID")) {
    if (message_id_.empty()) AssignUnfolded(value, &message_id_);
  } else if (EqualsIgnoreAsciiCase(name, "From")) {
    if (from_header_.empty() && value.size() <= kMaxHeaderBytes) {
      AssignUnfolded(value, &from_header_);
    }
  } else if (EqualsIgnoreAsciiCase(name, "To") || EqualsIgnoreAsciiCase(name, "Cc")) {
    const bool to = EqualsIgnoreAsciiCase(name, "To");
    // The first To for the display-name signal, whether or not headers are checked.
    if (to && to_header_.empty() && value.size() <= kMaxHeaderBytes) {
      AssignUnfolded(value, &to_header_);
    }
    if (!opts_->check_headers) return;
    if (header_bytes_ + value.size() > kMaxHeaderBytes) return;
    header_bytes_ += value.size();
    if (to_cc_.capacity() == 0) to_cc_.reserve(2);  // a To and a Cc: one allocation
    to_cc_.emplace_back(to ? "header:to" : "header:cc", std::string(value));
  }
}

void Session::CheckHeaderAddress(const Matcher& m, const std::string& address, const char* where) {
  tw_->CountHeaderAddressChecked();
  std::optional<Match> hit = m.Lookup(address);
  if (!hit) return;
  for (const Event& e : pending_) {
    if (e.recipient == address && e.where == where) return;  // one event per place
  }
  header_hit_ = true;
  Event e = NewEvent(address, where, *hit, EffectiveAction());
  e.subject = subject_;
  e.message_id = message_id_;
  pending_.push_back(std::move(e));
}

Verdict Session::EndOfHeaders() {
  if (!in_scope_) return Verdict::Continue();
  for (Event& e : pending_) {  // envelope hits learn the subject now
    if (e.subject.empty()) e.subject = subject_;
    if (e.message_id.empty()) e.message_id = message_id_;
  }
  if (to_cc_.empty()) return Verdict::Continue();
  std::shared_ptr<const Matcher> m = tw_->Snapshot();
  if (!m) return Verdict::Continue();
  for (const auto& [where, value] : to_cc_) {
    for (const HeaderAddress& a : ParseAddressList(value)) {
      CheckHeaderAddress(*m, a.address, where.c_str());
      if (opts_->check_display_names && !a.display_name.empty()) {
        for (const std::string& inner : AddressesInText(a.display_name)) {
          CheckHeaderAddress(*m, inner, "display-name");
        }
      }
    }
  }
  to_cc_.clear();
  return Verdict::Continue();
}

Verdict Session::EndOfMessage(std::string_view queue_id) {
  if (!in_scope_) return Verdict::Continue();
  if (!queue_id.empty()) queue_id_.assign(queue_id);
  for (Event& e : pending_) e.queue_id = queue_id_;
  HitAction action = EffectiveAction();
  Verdict v;
  if (header_hit_) {
    v = ActOn(action);
  } else if (envelope_quarantine_) {
    v = ActOn(HitAction::kQuarantine);
  }
  bool delivered = v.kind == Verdict::Kind::kContinue || v.kind == Verdict::Kind::kAccept ||
                   v.kind == Verdict::Kind::kQuarantine;
  if (delivered && !accepted_.empty() && tw_->outlets().messages) {
    tw_->outlets().messages(
        MessageRecord{account_, client_ip_, accepted_.size(), std::chrono::system_clock::now()});
  }
  if (delivered && !accepted_.empty() && tw_->outlets().observe) {
    Message m;
    m.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    m.node = opts_->hostname;
    m.queue_id = std::move(queue_id_);
    // The account and the HELO are lent for the call and taken back after it.
    m.account = std::move(account_);
    m.client_ip = client_ip_;
    m.client_name = client_name_;
    m.helo = std::move(helo_);
    // The transaction's own fields are moved: nothing reads them after this but Abort,
    // which clears them (the recipients come back for accepted_recipients()). Events
    // pending took their copies, and their queue id above, when they were made.
    m.sender = std::move(sender_);
    m.recipients = std::move(accepted_);
    m.from_header = std::move(from_header_);
    m.to_header = std::move(to_header_);
    m.subject = std::move(subject_);
    m.message_id = std::move(message_id_);
    m.source = source_;
    if (declared_size_ >= 0) {
      m.size = declared_size_;
    } else if (header_seen_ && source_ == "milter") {
      // No SIZE=: the header fields seen are a lower bound; the body is not asked for (a
      // body callback costs every message a round of the milter protocol).
      m.size = header_fields_bytes_;
    }
    // Taken back even if observe throws: the next transaction needs the HELO.
    struct GiveBack {
      Session* s;
      Message* m;
      ~GiveBack() {
        s->accepted_ = std::move(m->recipients);
        s->account_ = std::move(m->account);
        s->helo_ = std::move(m->helo);
      }
    } give_back{this, &m};
    Verdict d = tw_->outlets().observe(m);
    if (d.kind == Verdict::Kind::kTempfail && v.kind != Verdict::Kind::kQuarantine) v = d;
  }
  Flush();
  in_scope_ = false;
  return v;
}

void Session::Abort() {
  Flush();
  ResetTransaction();
}

void Session::Close() { Abort(); }

}  // namespace compd
