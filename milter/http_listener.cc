#include "http_listener.h"

#include <httplib.h>

#include "compd/base/thread_guard.h"
#include "compd/watch/dashboard_page.h"

namespace compd {

namespace {

constexpr const char* kSecurityPolicy =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'";

}  // namespace

HttpListener::HttpListener(HttpListenerOptions options,
                           std::shared_ptr<const HttpAuthenticator> auth, DashboardSource* source,
                           MetricsFn metrics, LogFn log)
    : options_(std::move(options)),
      auth_(std::move(auth)),
      source_(source),
      metrics_(std::move(metrics)),
      log_(std::move(log)),
      server_(std::make_unique<httplib::Server>()) {}

HttpListener::~HttpListener() { Stop(); }

void HttpListener::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

void HttpListener::Route() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(64 * 1024);
  s.set_read_timeout(std::chrono::seconds(10));
  s.set_write_timeout(std::chrono::seconds(10));
  s.set_keep_alive_max_count(100);
  s.set_default_headers({{"Cache-Control", "no-store"},
                         {"X-Content-Type-Options", "nosniff"},
                         {"X-Frame-Options", "DENY"},
                         {"Referrer-Policy", "no-referrer"},
                         {"Content-Security-Policy", kSecurityPolicy}});

  // Authentication for every request, before routing, so unknown paths reveal nothing.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    std::string authorization = req.get_header_value("Authorization");
    bool metrics = req.path == "/metrics";
    std::string who;
    HttpAuthenticator::Result r =
        metrics ? auth_->CheckMetrics(authorization) : auth_->Check(authorization, &who);
    if (r == HttpAuthenticator::Result::kOk) return httplib::Server::HandlerResponse::Unhandled;
    if (r == HttpAuthenticator::Result::kDenied) {
      Log(LogLevel::kWarning,
          "http: refused credentials from " + req.remote_addr + " for " + EscapeForLog(req.path));
    }
    res.status = 401;
    if (metrics) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"compd metrics\"");
    } else {
      res.set_header("WWW-Authenticate", "Basic realm=\"compd\", charset=\"UTF-8\"");
      res.set_header("WWW-Authenticate", "Bearer realm=\"compd\"");
    }
    res.set_content("authentication required\n", "text/plain; charset=utf-8");
    return httplib::Server::HandlerResponse::Handled;
  });

  s.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderDashboardPage(*source_->Get(), options_.refresh_seconds),
                    "text/html; charset=utf-8");
  });
  for (const char* part : {"top", "hits", "anomalies", "signals", "candidates", "accounts", "map",
                           "trends", "dashboard"}) {
    std::string name = part;
    s.Get("/api/" + name, [this, name](const httplib::Request&, httplib::Response& res) {
      auto data = source_->Get();
      if (!data->error.empty()) res.status = 503;
      res.set_content(DashboardJson(*data, name) + "\n", "application/json");
    });
  }
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_(), "text/plain; version=0.0.4; charset=utf-8");
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(std::to_string(res.status) + "\n", "text/plain; charset=utf-8");
    }
  });
  s.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Log(LogLevel::kError, "http: " + EscapeForLog(req.path) + ": " + what);
        res.status = 500;
        res.set_content("internal error\n", "text/plain; charset=utf-8");
      });
}

Status HttpListener::Start() {
  Route();
  if (!server_->bind_to_port(options_.host, options_.port)) {
    return Status::IoError("http_listen: cannot listen on " + options_.host + ":" +
                           std::to_string(options_.port) + " (in use, or not a local address?)");
  }
  // httplib catches what a handler throws (set_exception_handler above); what escapes its
  // accept loop leaves the listener in an unknown state: the daemon stops instead.
  thread_ = std::thread([this] {
    RunOrStop(
        "http", log_, [this] { server_->listen_after_bind(); }, options_.on_fatal);
  });
  Log(LogLevel::kInfo,
      "http: dashboard and /metrics on " + options_.host + ":" + std::to_string(options_.port));
  return Status::Ok();
}

void HttpListener::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace compd
