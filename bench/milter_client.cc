#include "milter_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace compd_bench {
namespace {

using compd::Status;

// Per stage: command byte, "do not send" bit, "no reply" bit, SMFIM macro-list index.
struct StageInfo {
  char cmd;
  uint32_t no_bit;
  uint32_t nr_bit;
  int macros;
  const char* name;
};
constexpr StageInfo kStages[kNumStages] = {
    {'C', 0x1, 0x1000, 0, "connect"},
    {'H', 0x2, 0x2000, 1, "helo"},
    {'M', 0x4, 0x4000, 2, "mail"},
    {'R', 0x8, 0x8000, 3, "rcpt"},
    {'T', 0x200, 0x10000, 4, "data"},
    {'L', 0x20, 0x80, 6, "header"},
    {'N', 0x40, 0x40000, 6, "eoh"},
    {'B', 0x10, 0x80000, 5, "body"},
    {'E', 0, 0, 5, "eom"},
};

// Postfix 3.7's milter_{connect,helo,mail,rcpt,data,end_of_data,end_of_header}_macros
// defaults, by SMFIM index.
constexpr const char* kPostfixMacros[7] = {
    "j {daemon_name} {daemon_addr} v _",
    "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
    "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
    "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
    "i",
    "i",
    "i",
};

const StageInfo& Info(Stage s) { return kStages[static_cast<int>(s)]; }

std::vector<std::string> SplitNames(const std::string& list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : list) {
    if (c == ' ' || c == ',' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string Bare(const std::string& name) {
  if (name.size() >= 2 && name.front() == '{' && name.back() == '}') {
    return name.substr(1, name.size() - 2);
  }
  return name;
}

void PutU32(std::string* s, uint32_t v) {
  uint32_t n = htonl(v);
  s->append(reinterpret_cast<const char*>(&n), 4);
}

uint32_t GetU32(const std::string& s, size_t pos) {
  uint32_t n;
  memcpy(&n, s.data() + pos, 4);
  return ntohl(n);
}

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

}  // namespace

const char* StageName(Stage stage) { return Info(stage).name; }

const char* ReplyKind(const Reply& r) {
  switch (r.code) {
    case 0:
      return "none";
    case 'c':
      return "continue";
    case 'a':
      return "accept";
    case 'r':
      return "reject";
    case 't':
      return "tempfail";
    case 'y':
      return !r.text.empty() && r.text[0] == '4' ? "tempfail" : "reject";
    case 'd':
      return "discard";
    case 's':
      return "skip";
    case '4':
      return "shutdown";
    case 'f':
      return "failure";
  }
  return "other";
}

bool MilterClient::Skips(Stage stage) const { return (protocol_ & Info(stage).no_bit) != 0; }
bool MilterClient::NoReply(Stage stage) const { return (protocol_ & Info(stage).nr_bit) != 0; }

Status MilterClient::Connect(const std::string& spec) {
  Close();
  auto colon = spec.find(':');
  if (colon == std::string::npos) return Status::Invalid("socket spec without type: " + spec);
  std::string type = spec.substr(0, colon), rest = spec.substr(colon + 1);
  int fd = -1;
  if (type == "unix" || type == "local") {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (rest.size() >= sizeof(sa.sun_path)) return Status::Invalid("socket path too long: " + rest);
    memcpy(sa.sun_path, rest.c_str(), rest.size() + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::IoError(Errno("socket"));
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      Status st = Status::Unavailable(Errno("connect " + spec));
      ::close(fd);
      return st;
    }
  } else if (type == "inet" || type == "inet6") {
    std::string host, port;
    auto at = rest.find('@');
    if (at != std::string::npos) {  // libmilter: PORT@HOST
      port = rest.substr(0, at);
      host = rest.substr(at + 1);
    } else {  // Postfix: HOST:PORT
      auto c = rest.rfind(':');
      if (c == std::string::npos) return Status::Invalid("inet spec without port: " + spec);
      host = rest.substr(0, c);
      port = rest.substr(c + 1);
    }
    if (host.empty()) host = "127.0.0.1";
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = type == "inet6" ? AF_INET6 : AF_UNSPEC;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) return Status::Invalid(spec + ": " + gai_strerror(rc));
    Status st = Status::Unavailable("connect " + spec + ": no address");
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
      st = Status::Unavailable(Errno("connect " + spec));
      ::close(fd);
      fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return st;
    // Nagle stays on: Postfix does not set TCP_NODELAY on milter connections.
  } else {
    return Status::Invalid("unknown socket type '" + type + "' in " + spec);
  }
  timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  fd_ = fd;
  out_.clear();
  in_.clear();
  in_pos_ = 0;
  return Status::Ok();
}

void MilterClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  out_.clear();
}

void MilterClient::Append(char cmd, const std::string& data) {
  PutU32(&out_, static_cast<uint32_t>(data.size() + 1));
  out_.push_back(cmd);
  out_.append(data);
}

Status MilterClient::Flush() {
  size_t off = 0;
  while (off < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + off, out_.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Status::Unavailable(Errno("write to milter"));
      Close();
      return st;
    }
    off += static_cast<size_t>(n);
  }
  out_.clear();
  return Status::Ok();
}

Status MilterClient::ReadPacket(char* cmd, std::string* data) {
  auto need = [this](size_t n) -> Status {
    while (in_.size() - in_pos_ < n) {
      if (in_pos_ > 0) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
      }
      char buf[8192];
      ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        Status st = Status::Unavailable(errno == EAGAIN || errno == EWOULDBLOCK
                                            ? std::string("timeout waiting for milter reply")
                                            : Errno("read from milter"));
        Close();
        return st;
      }
      if (got == 0) {
        Close();
        return Status::Unavailable("milter closed the connection");
      }
      in_.append(buf, static_cast<size_t>(got));
    }
    return Status::Ok();
  };
  Status st = need(4);
  if (!st.ok()) return st;
  uint32_t len = GetU32(in_, in_pos_);
  if (len < 1 || len > (1u << 24)) {
    Close();
    return Status::Internal("bad milter packet length " + std::to_string(len));
  }
  st = need(4 + len);
  if (!st.ok()) return st;
  *cmd = in_[in_pos_ + 4];
  data->assign(in_, in_pos_ + 5, len - 1);
  in_pos_ += 4 + len;
  return Status::Ok();
}

Status MilterClient::Negotiate(uint32_t actions, uint32_t protocol) {
  std::string d;
  PutU32(&d, 6);
  PutU32(&d, actions);
  PutU32(&d, protocol);
  Append('O', d);
  Status st = Flush();
  if (!st.ok()) return st;
  char cmd;
  std::string data;
  st = ReadPacket(&cmd, &data);
  if (!st.ok()) return st;
  if (cmd != 'O' || data.size() < 12) {
    Close();
    return Status::Internal(std::string("unexpected negotiation reply '") + cmd + "'");
  }
  version_ = GetU32(data, 0);
  actions_ = GetU32(data, 4);
  // Like Postfix, take the milter's event mask as it is (it may only narrow the offer).
  protocol_ = GetU32(data, 8) & protocol;
  for (auto& s : symlists_) s.clear();
  size_t pos = 12;
  while (pos + 4 < data.size()) {
    uint32_t where = GetU32(data, pos);
    pos += 4;
    size_t end = data.find('\0', pos);
    if (end == std::string::npos) end = data.size();
    if (where < 7) symlists_[where] = data.substr(pos, end - pos);
    pos = end + 1;
  }
  for (int i = 0; i < 7; ++i) {
    // An empty override falls back to the MTA's list, as in Postfix's MILTER_MACRO_EVAL.
    macro_lists_[i] = SplitNames(symlists_[i].empty() ? kPostfixMacros[i] : symlists_[i]);
  }
  return Status::Ok();
}

void MilterClient::AppendMacros(Stage stage, const Macros& known) {
  const StageInfo& info = Info(stage);
  std::string d(1, info.cmd);
  for (const std::string& name : macro_lists_[info.macros]) {
    std::string bare = Bare(name);
    for (const auto& [k, v] : known) {
      if (Bare(k) == bare) {
        d.append(name).push_back('\0');
        d.append(v).push_back('\0');
        break;
      }
    }
  }
  Append('D', d);
}

Status MilterClient::ReadReply(Stage stage, Reply* reply) {
  for (;;) {
    char cmd;
    std::string data;
    Status st = ReadPacket(&cmd, &data);
    if (!st.ok()) return st;
    switch (cmd) {
      case 'p':  // progress: still working
        continue;
      case 'c':
      case 'a':
      case 'r':
      case 't':
      case 'd':
      case 's':
      case '4':
      case 'f':
        reply->code = cmd;
        return Status::Ok();
      case 'y':
        reply->code = cmd;
        reply->text = data.substr(0, data.find('\0'));
        return Status::Ok();
      case 'q':
      case 'h':
      case 'i':
      case 'm':
      case '+':
      case '-':
      case '2':
      case 'e':
      case 'b':
        if (stage == Stage::kEom) {
          reply->modifications.push_back(cmd);
          continue;
        }
        [[fallthrough]];
      default:
        Close();
        return Status::Internal(std::string("unexpected milter reply '") + cmd + "' at " +
                                StageName(stage));
    }
  }
}

Status MilterClient::Send(Stage stage, const std::string& args, const Macros& known, Reply* reply) {
  *reply = Reply();
  if (fd_ < 0) return Status::Unavailable("not connected");
  AppendMacros(stage, known);
  if (!Skips(stage)) Append(Info(stage).cmd, args);
  if (Skips(stage) || NoReply(stage)) {
    // After DATA the content comes from Postfix's cleanup server, a different process:
    // what smtpd wrote (at least the DATA macros) leaves now, the content in a later write.
    return stage == Stage::kData ? Flush() : Status::Ok();
  }
  Status st = Flush();
  if (!st.ok()) return st;
  return ReadReply(stage, reply);
}

void MilterClient::Abort() {
  if (fd_ >= 0) Append('A', "");
}

void MilterClient::Quit() {
  if (fd_ < 0) return;
  Append('Q', "");
  (void)Flush();
  Close();
}

}  // namespace compd_bench
