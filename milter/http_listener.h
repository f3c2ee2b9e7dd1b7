// HTTP listener of compd-milter: the dashboard page, the JSON API and /metrics, served by
// cpp-httplib on its own threads, far from the mail path. Wiring only: authentication,
// data, page and metrics text live in core (http_auth.h, dashboard.h, dashboard_page.h,
// metrics.h).
//
// Every path but /metrics needs credentials (HTTP basic or a bearer token); /metrics needs
// a metrics token when metrics_token_file is set. No TLS here: put a reverse proxy in front
// (docs/dashboard.md). Start/Stop from one controlling thread.
#ifndef COMPD_MILTER_HTTP_LISTENER_H_
#define COMPD_MILTER_HTTP_LISTENER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "compd/base/log.h"
#include "compd/base/status.h"
#include "compd/watch/dashboard.h"
#include "compd/watch/http_auth.h"

namespace httplib {
class Server;
}

namespace compd {

struct HttpListenerOptions {
  // From http_listen by ParseHostPort: "127.0.0.1:8891", "[::1]:8891", "localhost:8891".
  std::string host = "127.0.0.1";
  int port = 8891;
  int refresh_seconds = 10;
  // Called (from the listener's thread) when it fails and cannot carry on; it makes the
  // daemon stop with a non-zero status. None: only logged.
  std::function<void(const Status&)> on_fatal;
};

class HttpListener {
 public:
  using MetricsFn = std::function<std::string()>;
  HttpListener(HttpListenerOptions options, std::shared_ptr<const HttpAuthenticator> auth,
               DashboardSource* source, MetricsFn metrics, LogFn log);
  ~HttpListener();  // Stop()s
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds (kIoError when the address is taken or not ours) and starts serving.
  Status Start();
  void Stop();

 private:
  void Route();
  void Log(LogLevel level, const std::string& message) const;

  const HttpListenerOptions options_;
  const std::shared_ptr<const HttpAuthenticator> auth_;
  DashboardSource* const source_;
  const MetricsFn metrics_;
  const LogFn log_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace compd

#endif  // COMPD_MILTER_HTTP_LISTENER_H_
