// noop_milter: a libmilter milter that decides nothing, the ceiling compd-milter is
// measured against.
//
// --mode negotiated (default) negotiates exactly what compd-milter negotiates, so the
// only difference left is compd's own work:
//   actions  SMFIF_QUARANTINE | SMFIF_SETSYMLIST (as far as offered)
//   protocol SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR
//            | SMFIP_NR_EOH | SMFIP_NR_UNKN | SMFIP_NR_BODY (masked by the offer)
//   macros   ENVFROM "i {auth_type} {auth_authen}", ENVRCPT "i", EOM "i"
//   and it registers and answers DATA.
// --mode plain registers every callback but DATA and negotiates nothing: libmilter's
// defaults, which answer every command and leave DATA unanswered (the Nagle/delayed-ACK
// stall over TCP). --mode plain-data is the same plus a DATA callback. --mode
// negotiated-body is negotiated without SMFIP_NOBODY: what a body callback costs.
//
//   noop_milter --socket inet:8891@127.0.0.1
//   noop_milter --socket unix:/tmp/noop.sock --mode plain
#include <libmilter/mfapi.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

// What was negotiated on one connection: which stages get SMFIS_NOREPLY.
struct Conn {
  unsigned long protocol = 0;
};

Conn* Get(SMFICTX* ctx) { return static_cast<Conn*>(smfi_getpriv(ctx)); }

// Set once in main, before smfi_main starts threads.
bool g_want_body = false;

sfsistat Reply(SMFICTX* ctx, unsigned long nr_bit) {
  Conn* c = Get(ctx);
  return c != nullptr && (c->protocol & nr_bit) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat Negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                   unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  *pf0 = f0 & (SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
  *pf1 = f1 & ((g_want_body ? 0 : SMFIP_NOBODY) | SMFIP_NOUNKNOWN | SMFIP_NR_CONN | SMFIP_NR_HELO |
               SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_UNKN | SMFIP_NR_BODY);
  *pf2 = 0;
  *pf3 = 0;
  if (f0 & SMFIF_SETSYMLIST) {
    char from[] = "i {auth_type} {auth_authen}";
    char rcpt[] = "i";
    char eom[] = "i";
    smfi_setsymlist(ctx, SMFIM_ENVFROM, from);
    smfi_setsymlist(ctx, SMFIM_ENVRCPT, rcpt);
    smfi_setsymlist(ctx, SMFIM_EOM, eom);
  }
  Conn* c = new Conn;
  c->protocol = *pf1;
  smfi_setpriv(ctx, c);
  return SMFIS_CONTINUE;
}

sfsistat Connect(SMFICTX* ctx, char*, _SOCK_ADDR*) { return Reply(ctx, SMFIP_NR_CONN); }
sfsistat Helo(SMFICTX* ctx, char*) { return Reply(ctx, SMFIP_NR_HELO); }
sfsistat EnvFrom(SMFICTX*, char**) { return SMFIS_CONTINUE; }
sfsistat EnvRcpt(SMFICTX*, char**) { return SMFIS_CONTINUE; }
sfsistat Data(SMFICTX*) { return SMFIS_CONTINUE; }
sfsistat Header(SMFICTX* ctx, char*, char*) { return Reply(ctx, SMFIP_NR_HDR); }
sfsistat Eoh(SMFICTX* ctx) { return Reply(ctx, SMFIP_NR_EOH); }
sfsistat Body(SMFICTX* ctx, unsigned char*, size_t) { return Reply(ctx, SMFIP_NR_BODY); }
sfsistat Eom(SMFICTX*) { return SMFIS_CONTINUE; }
sfsistat Abort(SMFICTX*) { return SMFIS_CONTINUE; }
sfsistat Close(SMFICTX* ctx) {
  delete Get(ctx);
  smfi_setpriv(ctx, nullptr);
  return SMFIS_CONTINUE;
}

int Usage() {
  fprintf(stderr,
          "usage: noop_milter --socket SPEC [--mode negotiated|negotiated-body|plain|plain-data] "
          "[--socket-mode OCTAL]\n"
          "  SPEC: inet:PORT@HOST or unix:PATH (libmilter syntax)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string spec, mode = "negotiated";
  unsigned mode_bits = 0666;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--socket" || a == "--mode" || a == "--socket-mode") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--socket") spec = v;
      if (a == "--mode") mode = v;
      if (a == "--socket-mode") mode_bits = static_cast<unsigned>(std::stoul(v, nullptr, 8));
    } else {
      return Usage();
    }
  }
  if (spec.empty() || (mode != "negotiated" && mode != "negotiated-body" && mode != "plain" &&
                       mode != "plain-data")) {
    return Usage();
  }
  g_want_body = mode == "negotiated-body";
  const bool negotiated = mode == "negotiated" || g_want_body;
  char name[] = "noop_milter";
  smfiDesc desc{};
  desc.xxfi_name = name;
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = negotiated ? (SMFIF_QUARANTINE | SMFIF_SETSYMLIST) : 0;
  desc.xxfi_connect = Connect;
  desc.xxfi_helo = Helo;
  desc.xxfi_envfrom = EnvFrom;
  desc.xxfi_envrcpt = EnvRcpt;
  desc.xxfi_header = Header;
  desc.xxfi_eoh = Eoh;
  desc.xxfi_body = Body;
  desc.xxfi_eom = Eom;
  desc.xxfi_abort = Abort;
  desc.xxfi_close = Close;
  if (mode != "plain") desc.xxfi_data = Data;
  if (negotiated) desc.xxfi_negotiate = Negotiate;

  std::string conn = spec;
  if (smfi_setconn(conn.data()) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
    fprintf(stderr, "noop_milter: cannot set up %s\n", spec.c_str());
    return 1;
  }
  smfi_setbacklog(256);
  if (smfi_opensocket(true) != MI_SUCCESS) {
    fprintf(stderr, "noop_milter: cannot open %s\n", spec.c_str());
    return 1;
  }
  // Postfix's smtpd runs as user postfix and must be able to connect.
  if (spec.rfind("unix:", 0) == 0 || spec.rfind("local:", 0) == 0) {
    chmod(spec.substr(spec.find(':') + 1).c_str(), mode_bits);
  }
  fprintf(stderr, "noop_milter: %s mode on %s\n", mode.c_str(), spec.c_str());
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
