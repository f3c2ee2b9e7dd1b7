// Hook targets: running a program with a document on stdin, and POSTing it to a webhook.
//
// Plain functions, safe from any thread; each call blocks its caller until the target
// answers or the timeout passes (they are meant for the HookRunner's thread, never the
// mail path).
//
// Programs run without a shell: an argument vector, an absolute program path, a clean
// environment (never the daemon's, which may hold COMPD_REDIS_PASSWORD), no inherited file
// descriptors beyond stdin/stdout/stderr, default signal dispositions, in a process group
// of their own so a timeout kills whatever they started too.
//
// Webhooks: http:// always; https:// through the TLS support Debian builds into
// libcpp-httplib (OpenSSL), verifying the server certificate against the system CA store.
// Credentials never go in the URL: extra headers (Authorization ...) come from a file.
#ifndef COMPD_ACCOUNTS_HOOK_TARGETS_H_
#define COMPD_ACCOUNTS_HOOK_TARGETS_H_

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compd/base/status.h"

namespace compd {

// Splits a configured command line into words: whitespace separates, '...' quotes
// literally, "..." quotes with \" and \\ escapes. No variables, globs or other shell
// syntax. kInvalid for an unterminated quote, an empty line or a program path that is not
// absolute.
Status ParseCommandLine(std::string_view text, std::vector<std::string>* argv);

struct ProgramResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  bool cancelled = false;
  std::string output;  // stdout and stderr, the first kMaxProgramOutput bytes
};
inline constexpr size_t kMaxProgramOutput = 4096;

// Runs argv[0] with `argv`, environment `env` ("NAME=value"), `input` on stdin. Ok only for
// exit status 0. The program is killed (its whole process group) after `timeout`, or when
// `cancelled` (polled every 100 ms; may be empty) returns true. Failures say why: "exit
// status 3: <output>", "timed out after 10s", "cannot run /x: No such file or directory".
Status RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  const std::string& input, std::chrono::milliseconds timeout,
                  const std::function<bool()>& cancelled, ProgramResult* result = nullptr);

struct WebhookUrl {
  std::string scheme;  // "http" | "https"
  std::string host;    // IPv6 literals without brackets
  int port = 0;
  std::string path;              // with the query, "/" at least
  std::string Origin() const;    // scheme://host:port, as httplib takes it
  std::string ToString() const;  // the whole URL
};

// kInvalid for anything but http(s)://host[:port][/path], and for a URL with user:password.
Status ParseWebhookUrl(std::string_view text, WebhookUrl* out);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Reads "Name: value" lines ('#' comments and blank lines skipped). kIoError names an
// unreadable file, kInvalid the file:line of a bad line.
Status ReadHeadersFile(const std::string& path, HttpHeaders* out);

// POSTs `body` as application/json. Ok only for a 2xx answer; otherwise the message says
// what happened ("HTTP 500: <start of the body>", "connection refused", ...).
Status PostJson(const WebhookUrl& url, const HttpHeaders& headers, const std::string& body,
                std::chrono::milliseconds timeout);

}  // namespace compd

#endif  // COMPD_ACCOUNTS_HOOK_TARGETS_H_
