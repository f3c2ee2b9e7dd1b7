#include "callbacks.h"

#include <arpa/inet.h>
#include <libmilter/mfdef.h>
#include <netinet/in.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace compd {

namespace {

// libmilter callbacks take no user pointer, so the shared, read-only context has to be
// reachable from a file-level pointer. It is written once before smfi_main starts threads.
const MilterContext* g_context = nullptr;

}  // namespace

// Per connection, owned through smfi_setpriv from negotiate (or connect) until close, and
// listed in the context's registry meanwhile. `mu` is held during every callback.
// The registry is an intrusive list: joining and leaving it allocates nothing.
struct Connection {
  Connection() {
    std::lock_guard<std::mutex> lock(g_context->connections_mu);
    next = g_context->connections;
    if (next != nullptr) next->prev = this;
    g_context->connections = this;
    ++g_context->open_connections;
  }
  ~Connection() {
    std::lock_guard<std::mutex> lock(g_context->connections_mu);
    if (prev != nullptr) prev->next = next;
    if (next != nullptr) next->prev = prev;
    if (g_context->connections == this) g_context->connections = next;
    --g_context->open_connections;
  }
  std::mutex mu;
  unsigned long noreply = 0;       // SMFIP_NR_* steps negotiated: those must answer NOREPLY
  std::optional<Session> session;  // in place: one allocation per connection, not two
  bool failed = false;             // an error happened where no reply could carry on_error
  Connection* prev = nullptr;      // the registry, under the context's connections_mu
  Connection* next = nullptr;
};

namespace {

Connection* Conn(SMFICTX* ctx) { return static_cast<Connection*>(smfi_getpriv(ctx)); }

// Valid until the callback returns (libmilter owns it); no copy.
std::string_view Macro(SMFICTX* ctx, const char* name) {
  const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
  return v == nullptr ? std::string_view() : std::string_view(v);
}

// The client's SIZE= among the MAIL FROM parameters (argv[1..]), -1 when absent.
int64_t DeclaredSize(char** argv) {
  if (argv == nullptr || argv[0] == nullptr) return -1;
  for (char** a = argv + 1; *a != nullptr; ++a) {
    int64_t n = EsmtpSizeParameter(*a);
    if (n >= 0) return n;
  }
  return -1;
}

std::string AddressText(const sockaddr* sa) {
  if (sa == nullptr) return "";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

void Log(LogLevel level, const std::string& msg) {
  if (g_context != nullptr && g_context->logger != nullptr) g_context->logger->Log(level, msg);
}

sfsistat OnErrorStatus() {
  return g_context != nullptr && g_context->on_error == OnError::kTempfail ? SMFIS_TEMPFAIL
                                                                           : SMFIS_ACCEPT;
}

// Every callback goes through here: no exception may cross into libmilter (C code), and a
// failure becomes the configured on_error answer. In steps negotiated as no-reply the
// answer must be NOREPLY, so the failure is remembered and answered at the next step
// that has a reply.
template <typename F>
sfsistat Guard(SMFICTX* ctx, const char* step, unsigned long noreply_flag, F&& body) {
  Connection* conn = Conn(ctx);
  bool noreply = conn != nullptr && (conn->noreply & noreply_flag) != 0;
  std::unique_lock<std::mutex> lock;
  if (conn != nullptr) lock = std::unique_lock<std::mutex>(conn->mu);
  try {
    if (conn != nullptr && conn->failed && !noreply) {
      conn->failed = false;
      return OnErrorStatus();
    }
    sfsistat r = body(conn);
    return noreply ? SMFIS_NOREPLY : r;
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string(step) + ": " + e.what());
  } catch (...) {
    Log(LogLevel::kError, std::string(step) + ": unknown exception");
  }
  if (noreply) {
    if (conn != nullptr) conn->failed = true;
    return SMFIS_NOREPLY;
  }
  return OnErrorStatus();
}

sfsistat Answer(SMFICTX* ctx, const Verdict& v) {
  switch (v.kind) {
    case Verdict::Kind::kContinue:
      return SMFIS_CONTINUE;
    case Verdict::Kind::kAccept:
      return SMFIS_ACCEPT;
    case Verdict::Kind::kReject:
    case Verdict::Kind::kTempfail:
      smfi_setreply(ctx, const_cast<char*>(v.rcode.c_str()), const_cast<char*>(v.xcode.c_str()),
                    const_cast<char*>(v.text.c_str()));
      return v.kind == Verdict::Kind::kReject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
    case Verdict::Kind::kDiscard:
      return SMFIS_DISCARD;
    case Verdict::Kind::kQuarantine:
      if (smfi_quarantine(ctx, const_cast<char*>(v.reason.c_str())) != MI_SUCCESS) {
        Log(LogLevel::kWarning, "quarantine refused by the MTA: " + v.reason);
      }
      return SMFIS_ACCEPT;
  }
  return SMFIS_CONTINUE;
}

Connection* EnsureConnection(SMFICTX* ctx) {
  Connection* conn = Conn(ctx);
  if (conn == nullptr) {
    conn = new Connection();
    smfi_setpriv(ctx, conn);
  }
  return conn;
}

sfsistat Negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                   unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  try {
    Connection* conn = EnsureConnection(ctx);
    *pf0 = f0 & (SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
    // Everything we never look at (the body, unknown commands) is switched off, and steps
    // whose answer is always "continue" are made no-reply: fewer round trips per message.
    // DATA stays a replied step: without it Postfix waits on a delayed ACK (~40 ms/message).
    const unsigned long wanted = SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NR_CONN | SMFIP_NR_HELO |
                                 SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_UNKN | SMFIP_NR_BODY;
    *pf1 = f1 & wanted;
    *pf2 = 0;
    *pf3 = 0;
    conn->noreply = *pf1 & (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR | SMFIP_NR_EOH |
                            SMFIP_NR_UNKN | SMFIP_NR_BODY);
    if (*pf0 & SMFIF_SETSYMLIST) {
      // Ask for exactly the macros we read, whatever milter_*_macros say.
      smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_type} {auth_authen}"));
      smfi_setsymlist(ctx, SMFIM_ENVRCPT, const_cast<char*>("i"));
      smfi_setsymlist(ctx, SMFIM_EOM, const_cast<char*>("i"));
    }
    return SMFIS_CONTINUE;
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("negotiate: ") + e.what());
  } catch (...) {
    Log(LogLevel::kError, "negotiate: unknown exception");
  }
  return SMFIS_ALL_OPTS;
}

sfsistat Connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* hostaddr) {
  EnsureConnection(ctx);  // before Guard, so a failure here is remembered per connection
  return Guard(ctx, "connect", SMFIP_NR_CONN, [&](Connection* conn) {
    conn->session.reset();
    conn->session.emplace(g_context->tripwire, AddressText(hostaddr),
                          hostname == nullptr ? std::string() : std::string(hostname));
    return SMFIS_CONTINUE;
  });
}

sfsistat Helo(SMFICTX* ctx, char* helo) {
  return Guard(ctx, "helo", SMFIP_NR_HELO, [&](Connection* conn) {
    if (conn != nullptr && conn->session) conn->session->Helo(helo == nullptr ? "" : helo);
    return SMFIS_CONTINUE;
  });
}

sfsistat EnvFrom(SMFICTX* ctx, char** argv) {
  return Guard(ctx, "mail", SMFIP_NR_MAIL, [&](Connection* conn) {
    if (conn == nullptr || !conn->session) return SMFIS_ACCEPT;
    Verdict v = conn->session->Mail(argv != nullptr && argv[0] != nullptr ? argv[0] : "",
                                    Macro(ctx, "{auth_authen}"), Macro(ctx, "{auth_type}"),
                                    Macro(ctx, "i"), DeclaredSize(argv));
    return Answer(ctx, v);
  });
}

sfsistat EnvRcpt(SMFICTX* ctx, char** argv) {
  return Guard(ctx, "rcpt", SMFIP_NR_RCPT, [&](Connection* conn) {
    if (conn == nullptr || !conn->session) return SMFIS_CONTINUE;
    Verdict v =
        conn->session->Rcpt(argv != nullptr && argv[0] != nullptr ? argv[0] : "", Macro(ctx, "i"));
    return Answer(ctx, v);
  });
}

sfsistat Data(SMFICTX* ctx) {
  return Guard(ctx, "data", SMFIP_NR_DATA, [&](Connection*) { return SMFIS_CONTINUE; });
}

sfsistat Header(SMFICTX* ctx, char* name, char* value) {
  return Guard(ctx, "header", SMFIP_NR_HDR, [&](Connection* conn) {
    if (conn != nullptr && conn->session && name != nullptr && value != nullptr) {
      conn->session->Header(name, value);
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat EndOfHeaders(SMFICTX* ctx) {
  return Guard(ctx, "eoh", SMFIP_NR_EOH, [&](Connection* conn) {
    if (conn == nullptr || !conn->session) return SMFIS_CONTINUE;
    return Answer(ctx, conn->session->EndOfHeaders());
  });
}

sfsistat EndOfMessage(SMFICTX* ctx) {
  return Guard(ctx, "eom", 0, [&](Connection* conn) {
    if (conn == nullptr || !conn->session) return SMFIS_CONTINUE;
    return Answer(ctx, conn->session->EndOfMessage(Macro(ctx, "i")));
  });
}

sfsistat Abort(SMFICTX* ctx) {
  // libmilter ignores the answer to abort; Session::Abort tolerates being called twice.
  return Guard(ctx, "abort", 0, [&](Connection* conn) {
    if (conn != nullptr && conn->session) conn->session->Abort();
    return SMFIS_CONTINUE;
  });
}

sfsistat Close(SMFICTX* ctx) {
  Connection* conn = Conn(ctx);
  smfi_setpriv(ctx, nullptr);
  try {
    std::unique_ptr<Connection> owned(conn);
    if (owned && owned->session) {
      std::lock_guard<std::mutex> lock(owned->mu);
      owned->session->Close();
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("close: ") + e.what());
  } catch (...) {
    Log(LogLevel::kError, "close: unknown exception");
  }
  return SMFIS_CONTINUE;
}

}  // namespace

void SetMilterContext(const MilterContext* context) { g_context = context; }

size_t OpenConnections(const MilterContext& context) {
  std::lock_guard<std::mutex> lock(context.connections_mu);
  return context.open_connections;
}

size_t FlushOpenConnections(const MilterContext& context) {
  std::lock_guard<std::mutex> lock(context.connections_mu);
  for (Connection* conn = context.connections; conn != nullptr; conn = conn->next) {
    std::lock_guard<std::mutex> conn_lock(conn->mu);
    if (conn->session) conn->session->Abort();
  }
  return context.open_connections;
}

smfiDesc MilterDescription() {
  smfiDesc d{};
  d.xxfi_name = const_cast<char*>("compd-milter");
  d.xxfi_version = SMFI_VERSION;
  d.xxfi_flags = SMFIF_QUARANTINE | SMFIF_SETSYMLIST;
  d.xxfi_connect = Connect;
  d.xxfi_helo = Helo;
  d.xxfi_envfrom = EnvFrom;
  d.xxfi_envrcpt = EnvRcpt;
  d.xxfi_header = Header;
  d.xxfi_eoh = EndOfHeaders;
  d.xxfi_body = nullptr;
  d.xxfi_eom = EndOfMessage;
  d.xxfi_abort = Abort;
  d.xxfi_close = Close;
  d.xxfi_unknown = nullptr;
  d.xxfi_data = Data;
  d.xxfi_negotiate = Negotiate;
  return d;
}

}  // namespace compd
