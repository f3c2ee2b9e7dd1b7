// mapctl top, anomalies, dashboard-user: the volume views and the helper that
// makes a dashboard login.
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "app.h"
#include "compd/base/text_output.h"
#include "compd/events/event_stream.h"
#include "compd/watch/dashboard.h"
#include "compd/watch/http_auth.h"
#include "compd/watch/volume.h"

namespace mapctl {

namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A connection of our own, after OpenStore has checked that Redis answers (and explained
// a missing password).
compd::Status OpenRedis(Context& ctx, std::unique_ptr<compd::RedisClient>* out) {
  compd::MapStore* store = nullptr;
  compd::Status s = ctx.OpenStore(&store);
  if (!s.ok()) return s;
  // The same URL, password and sentinels as the store's connection.
  *out = std::make_unique<compd::RedisClient>(ctx.redis()->url(), ctx.redis()->timeout());
  return compd::Status::Ok();
}

// "24h", "90m", "7d", "3600s" (a bare number is seconds).
bool ParseSince(const std::string& text, int64_t* seconds) {
  size_t i = 0;
  int64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i < 12) {
    n = n * 10 + (text[i] - '0');
    ++i;
  }
  if (i == 0) return false;
  std::string unit = text.substr(i);
  int64_t mul = 0;
  if (unit.empty() || unit == "s") {
    mul = 1;
  } else if (unit == "m") {
    mul = 60;
  } else if (unit == "h") {
    mul = 3600;
  } else if (unit == "d") {
    mul = 86400;
  } else {
    return false;
  }
  *seconds = n * mul;
  return true;
}

std::string Change(const compd::TopRow& r) {
  if (r.previous == 0) return "new";
  int64_t d = r.messages - r.previous;
  if (d == 0) return "=";
  return (d > 0 ? "+" : "") + std::to_string(d);
}

std::string ColumnTitle(const char* name, const compd::TopColumn& c, int64_t now, bool current) {
  std::string t = std::string(name) + " " + compd::HourLabel(c.hour_start).substr(0, 10) + " " +
                  compd::HourLabel(c.hour_start).substr(11) + ":00Z";
  if (current) t += " (" + std::to_string((now - c.hour_start) / 60) + " min)";
  return t;
}

struct TopOptions {
  size_t n = 15;
};

int RunTop(const TopOptions& o, Context& ctx) {
  std::unique_ptr<compd::RedisClient> redis;
  compd::Status s = OpenRedis(ctx, &redis);
  if (!s.ok()) return Fail(s);
  const std::string prefix = ctx.config().GetString("prefix");
  const int64_t now = Now();
  compd::TopView top;
  s = compd::ReadTop(redis.get(), prefix, now, o.n, &top);
  if (!s.ok()) return Fail(s);
  std::vector<compd::Event> anomalies;
  s = compd::ReadRecentEvents(redis.get(), prefix, "anomaly", (now - 86400) * 1000, 1000,
                              &anomalies);
  if (!s.ok()) return Fail(s);
  std::set<std::string> anomalous;
  for (const auto& e : anomalies) anomalous.insert(e.account);

  if (ctx.globals.json) {
    nlohmann::json j = nlohmann::json::parse(compd::TopViewJson(top));
    for (const char* col : {"this_hour", "last_hour"}) {
      for (auto& row : j[col]["rows"]) {
        row["anomaly_24h"] = anomalous.count(row["account"].get<std::string>()) > 0;
      }
    }
    j["n"] = o.n;
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  compd::TextTable table;
  table.AddRow({"ACCOUNT", "COUNT", "CHANGE", "", "", "ACCOUNT", "COUNT", "CHANGE"});
  auto cells = [&](const std::vector<compd::TopRow>& rows, size_t i) {
    if (i >= rows.size()) return std::vector<std::string>{"", "", ""};
    const compd::TopRow& r = rows[i];
    std::string mark =
        std::string(r.new_to_top ? " *" : "") + (anomalous.count(r.account) ? " !" : "");
    return std::vector<std::string>{r.account + mark, std::to_string(r.messages), Change(r)};
  };
  size_t lines = std::max(top.this_hour.rows.size(), top.last_hour.rows.size());
  for (size_t i = 0; i < lines; ++i) {
    std::vector<std::string> row = cells(top.this_hour.rows, i);
    row.push_back("");
    row.push_back("");
    for (auto& c : cells(top.last_hour.rows, i)) row.push_back(std::move(c));
    while (!row.empty() && row.back().empty()) row.pop_back();
    table.AddRow(std::move(row));
  }
  // The column titles go above the table so they do not widen its first column.
  std::string body = table.Render();
  std::string left = ColumnTitle("THIS HOUR", top.this_hour, now, true);
  size_t second = body.substr(0, body.find('\n')).rfind("ACCOUNT");
  std::cout << left << std::string(second > left.size() + 2 ? second - left.size() : 2, ' ')
            << ColumnTitle("LAST HOUR", top.last_hour, now, false) << "\n"
            << body;
  if (lines == 0) std::cout << "no authenticated mail in either hour\n";
  std::cout << "* new to the top " << o.n
            << "   ! anomaly in the last 24 h   change: against the hour before\n";
  return kExitOk;
}

struct AnomaliesOptions {
  std::string since = "24h";
};

int RunAnomalies(const AnomaliesOptions& o, Context& ctx) {
  int64_t since = 0;
  if (!ParseSince(o.since, &since)) {
    return Fail(compd::Status::Invalid("--since: '" + o.since +
                                       "' is not a duration such as 90m, 24h or 7d"));
  }
  std::unique_ptr<compd::RedisClient> redis;
  compd::Status s = OpenRedis(ctx, &redis);
  if (!s.ok()) return Fail(s);
  std::vector<compd::Event> events;
  s = compd::ReadRecentEvents(redis.get(), ctx.config().GetString("prefix"), "anomaly",
                              (Now() - since) * 1000, 100000, &events, 1000000);
  if (!s.ok()) return Fail(s);
  if (ctx.globals.json) {
    nlohmann::json j = {{"since", o.since},
                        {"anomalies", nlohmann::json::parse(compd::EventsJson(events))}};
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  if (events.empty()) {
    std::cerr << "no anomalies in the last " << o.since << "\n";
    return kExitOk;
  }
  compd::TextTable table;
  table.AddRow({"TIME", "ACCOUNT", "RULE", "PERIOD", "VALUE", "THRESHOLD", "USUAL", "HOST"});
  for (const auto& e : events) {
    table.AddRow({e.time.substr(0, 19) + "Z", e.account, e.rule, e.period, e.value, e.threshold,
                  e.baseline, e.host});
  }
  std::cout << table.Render();
  return kExitOk;
}

// Reads one line from stdin; with a terminal, without echo.
bool ReadSecretLine(const std::string& prompt, std::string* out) {
  bool tty = isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  bool ok = static_cast<bool>(std::getline(std::cin, *out));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!out->empty() && out->back() == '\r') out->pop_back();
  return ok;
}

int RunDashboardUser(const std::string& name) {
  if (name.empty() || name.find_first_of(": \t\r\n") != std::string::npos) {
    return Fail(compd::Status::Invalid("user name '" + name +
                                       "' must be non-empty, without ':' or blanks"));
  }
  std::string password, again;
  if (!ReadSecretLine("password for " + name + ": ", &password) || password.empty()) {
    return Fail(compd::Status::Invalid("no password on standard input"));
  }
  if (isatty(STDIN_FILENO)) {
    if (!ReadSecretLine("again: ", &again) || again != password) {
      return Fail(compd::Status::Invalid("the passwords differ"));
    }
  }
  std::string hash;
  compd::Status s = compd::HashPassword(password, &hash);
  if (!s.ok()) return Fail(s);
  std::cout << name << ":" << hash << "\n";
  return kExitOk;
}

}  // namespace

RunFn SetupTop(CLI::App* cmd) {
  auto o = std::make_shared<TopOptions>();
  cmd->add_option("--n", o->n, "Accounts per column")->check(CLI::Range(1, 1000));
  return [o](Context& ctx) { return RunTop(*o, ctx); };
}

RunFn SetupAnomalies(CLI::App* cmd) {
  auto o = std::make_shared<AnomaliesOptions>();
  cmd->add_option("--since", o->since, "How far back: 90m, 24h, 7d [default: 24h]");
  return [o](Context& ctx) { return RunAnomalies(*o, ctx); };
}

RunFn SetupDashboardUser(CLI::App* cmd) {
  auto name = std::make_shared<std::string>();
  cmd->add_option("name", *name, "User name")->required();
  return [name](Context&) { return RunDashboardUser(*name); };
}

}  // namespace mapctl
