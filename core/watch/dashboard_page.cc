#include "compd/watch/dashboard_page.h"

#include <map>
#include <set>
#include <sstream>

#include "compd/base/text_output.h"
#include "compd/watch/dashboard_charts.h"

namespace compd {

namespace {

constexpr const char* kStyle = R"css(
:root { color-scheme: dark; }
* { box-sizing: border-box; }
body { margin: 0; background: #0d1117; color: #e6edf3;
  font: clamp(15px, 1.2vw, 44px)/1.35 "DejaVu Sans", Verdana, "Liberation Sans", sans-serif;
  font-variant-numeric: tabular-nums; }
header { display: flex; flex-wrap: wrap; gap: .4em 2em; align-items: baseline;
  padding: .5em 1.2em; background: #161b22; border-bottom: 2px solid #30363d; }
header h1 { font-size: 1.6em; margin: 0; color: #58a6ff; letter-spacing: .04em; }
header .clock { font-size: 1.6em; font-weight: bold; }
header .meta { color: #8b949e; }
.error { margin: .6em 1.2em; padding: .5em 1em; background: #5a1d1d; border: 2px solid #da3633;
  font-size: 1.2em; }
.cols { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1.5em; padding: .8em 1.2em; }
h2 { font-size: 1.25em; margin: .2em 0 .4em; color: #8b949e; text-transform: uppercase;
  letter-spacing: .06em; font-weight: normal; }
h2 b { color: #e6edf3; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 1.1em; }
th { color: #8b949e; font-weight: normal; font-size: .7em; text-transform: uppercase; }
td, th { padding: .2em .45em; text-align: right; white-space: nowrap; }
th.rank, td.rank { width: 1.7em; color: #8b949e; padding-left: 0; }
th.num, td.num { width: 3.7em; }
th.spark, td.spark { width: 8.5em; padding: .1em .4em; }
svg.spark { display: block; width: 100%; height: 1.5em; }
svg.spark .band { fill: #2d333b; }
svg.spark .bar { fill: #58a6ff; }
svg.spark .bar.now { fill: #a5d6ff; }
svg.spark .bar.over { fill: #ff4d4d; }
svg.spark .mid { stroke: #6e7681; stroke-width: 1; vector-effect: non-scaling-stroke; }
#platform { padding: .4em 1.2em 0; }
#platform h2 .key { text-transform: none; letter-spacing: 0; }
#platform .kthis { color: #58a6ff; font-weight: bold; } #platform .klast { color: #8b949e; }
svg.platform { display: block; width: 100%; height: auto; }
svg.platform .thisweek { fill: none; stroke: #58a6ff; stroke-width: 3.5; stroke-linejoin: round; }
svg.platform .nowdot { fill: #a5d6ff; }
svg.platform .lastweek { fill: #30363d; stroke: #6e7681; stroke-width: 1; }
svg.platform .grid, svg.platform .mid { stroke: #30363d; stroke-width: 1; }
svg.platform .base { stroke: #6e7681; stroke-width: 1.5; }
svg.platform .axis { fill: #8b949e; font-size: 17px; }
tr.locked td.acct { color: #ff7b72; font-weight: bold; }
tr.flagged td.acct { color: #f0b72f; }
th.nets, td.nets { width: 3em; }
th.chg, td.chg { width: 4.6em; }
th.flag, td.flag { width: 3.7em; text-align: left; padding-left: 0; padding-right: .4em; }
td.acct, th.acct { text-align: left; overflow: hidden; text-overflow: ellipsis; }
tbody tr:nth-child(odd) { background: #161b22; }
tr.new td.acct { color: #ffd866; }
tr.anomaly, tr.anomaly:nth-child(odd) { background: #6e1b1b; }
.badge { display: block; width: 6.2em; text-align: center; font-size: .48em; line-height: 1.5;
  padding: 0 .3em; margin: .15em 0; border-radius: .3em; background: #9e6a03; color: #fff; font-weight: bold; }
.badge.red { background: #da3633; }
.badge.locked { background: #da3633; } .badge.flagged { background: #9e6a03; }
.up { color: #ff9e64; } .down { color: #7d8590; } .same { color: #7d8590; }
.empty { color: #7d8590; font-style: italic; padding: .4em .45em; }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(19em, 1fr)); gap: 1.5em; padding: 0 1.2em 1em; }
.react { font-size: .8em; font-weight: bold; padding: 0 .4em; border-radius: .25em; margin-right: .5em; background: #30363d; }
.react.lock, .react.tempfail { background: #da3633; } .react.flag { background: #9e6a03; }
.badge.signal { background: #8957e5; }
.panels ul { list-style: none; margin: 0; padding: 0; }
.panels li { padding: .25em .45em; overflow-wrap: anywhere; }
.panels li:nth-child(odd) { background: #161b22; }
.panels .t { color: #8b949e; margin-right: .6em; }
.panels .a { color: #ffd866; }
.panels .bad { color: #ff7b72; }
.state { font-size: .8em; font-weight: bold; padding: 0 .4em; border-radius: .25em;
  margin-right: .5em; }
.state.locked { background: #da3633; } .state.flagged { background: #9e6a03; }
.state.other { background: #30363d; }
footer { color: #7d8590; padding: .3em 1.2em .8em; font-size: .85em; }
)css";

std::string Thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

// "18:44:48" for an event of today, "11-25 18:44" for older ones.
std::string EventTime(const std::string& iso, int64_t now) {
  if (iso.size() < 19) return iso;
  std::string today = DayLabel(now);
  if (iso.compare(0, 10, today) == 0) return iso.substr(11, 8);
  return iso.substr(5, 5) + " " + iso.substr(11, 5);
}

// The header's clock; a page rendered before the first read finished has no time yet.
std::string Clock(int64_t generated) {
  if (generated <= 0) return "never";
  return FormatUnixTime(generated).substr(11, 5) + " UTC";
}

std::string Ago(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + " s ago";
  if (seconds < 7200) return std::to_string(seconds / 60) + " min ago";
  if (seconds < 172800) return std::to_string(seconds / 3600) + " h ago";
  return std::to_string(seconds / 86400) + " days ago";
}

void Column(std::ostringstream& out, const char* id, const char* title, const TopColumn& col,
            const DashboardData& d, const std::set<std::string>& anomalous,
            const std::map<std::string, std::string>& states, bool current) {
  const int64_t now = d.generated;
  std::string range =
      HourLabel(col.hour_start).substr(11) + ":00–" +
      (current ? std::string("now") : HourLabel(col.hour_start + 3600).substr(11) + ":00");
  if (current) range += " (" + std::to_string((now - col.hour_start) / 60) + " min)";
  out << "<section class=\"col\" id=\"" << id << "\"><h2><b>" << title << "</b> · " << range
      << " UTC</h2>\n<table><thead><tr><th class=\"rank\">#</th><th class=\"acct\">account</th><th "
         "class=\"flag\"></th>"
      << "<th class=\"spark\">48 h</th><th class=\"num\">msgs</th><th class=\"num\">rcpts</th><th "
         "class=\"nets\">nets</th>"
      << "<th class=\"chg\">change</th></tr></thead><tbody>\n";
  int rank = 0;
  for (const TopRow& r : col.rows) {
    ++rank;
    bool anomaly = anomalous.count(r.account) > 0;
    auto st = states.find(r.account);
    const std::string state = st != states.end() ? st->second : "";
    std::string cls;
    for (const char* c : {r.new_to_top ? "new" : "", anomaly ? "anomaly" : "", state.c_str()}) {
      if (*c) cls += (cls.empty() ? "" : " ") + std::string(c);
    }
    int64_t change = r.messages - r.previous;
    std::string chg_cls = change > 0 ? "up" : (change < 0 ? "down" : "same");
    std::string chg = r.previous == 0 ? "new"
                      : change > 0    ? "+" + Thousands(change)
                      : change < 0    ? "−" + Thousands(-change)
                                      : "=";
    out << "<tr" << (cls.empty() ? "" : " class=\"" + cls + "\"") << " data-account=\""
        << HtmlEscape(r.account) << "\"><td class=\"rank\">" << rank
        << "</td><td class=\"acct\" title=\"" << HtmlEscape(r.account) << "\">"
        << HtmlEscape(r.account) << "</td><td class=\"flag\">";
    if (r.new_to_top) out << "<span class=\"badge\">NEW</span>";
    if (anomaly) out << "<span class=\"badge red\">ANOMALY</span>";
    if (!state.empty()) {
      std::string upper = state;
      for (char& c : upper) c = static_cast<char>(c - ('a' <= c && c <= 'z' ? 32 : 0));
      out << "<span class=\"badge " << state << "\">" << upper << "</span>";
    }
    out << "</td><td class=\"spark\">";
    auto trend = d.trends.find(r.account);
    if (trend != d.trends.end() && !trend->second.hours.empty()) {
      // The column of the hour before shows the same 48 hours, ending where it ends.
      AccountTrend shown = trend->second;
      if (!current) {
        shown.hours.pop_back();
        shown.hours.insert(shown.hours.begin(), 0);
      }
      out << SparklineSvg(shown, d.platform.first_hour - (current ? 0 : 3600), d.min_history_days);
    }
    out << "</td><td class=\"num\">" << Thousands(r.messages) << "</td><td class=\"num\">"
        << Thousands(r.recipients) << "</td><td class=\"nets\">" << Thousands(r.networks)
        << "</td><td class=\"chg " << chg_cls << "\">" << chg << "</td></tr>\n";
  }
  out << "</tbody></table>";
  if (col.rows.empty()) out << "<div class=\"empty\">no authenticated mail</div>";
  out << "</section>\n";
}

// A panel: `heading`, then `items` as a list, each written by `item`; `empty` when there
// are none, `note` (if any) when there are some.
template <typename T, typename WriteItem>
void Panel(std::ostringstream& out, const char* id, const char* heading,
           const std::vector<T>& items, const char* empty, WriteItem item,
           const char* note = nullptr) {
  out << "<section id=\"" << id << "\"><h2>" << heading << "</h2><ul>\n";
  for (const T& x : items) item(x);
  out << "</ul>";
  if (items.empty()) {
    out << "<div class=\"empty\">" << empty << "</div>";
  } else if (note != nullptr) {
    out << "<div class=\"empty\">" << note << "</div>";
  }
  out << "</section>\n";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
    }
  }
  return out;
}

std::string RenderDashboardPage(const DashboardData& d, int refresh_seconds) {
  std::ostringstream out;
  std::set<std::string> anomalous = d.AnomalousAccounts();
  out << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      << "<meta http-equiv=\"refresh\" content=\"" << refresh_seconds << "\">"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      << "<title>compd · top senders · " << HtmlEscape(d.host) << "</title><style>" << kStyle
      << "</style></head>\n<body>\n<header><h1>compd</h1><span class=\"clock\">"
      << Clock(d.generated) << "</span><span class=\"meta\">" << HtmlEscape(d.host) << "</span>";
  if (d.map) {
    out << "<span class=\"meta\" id=\"map\">map v" << d.map->version << " · "
        << Thousands(static_cast<int64_t>(d.map->exact)) << " exact · "
        << Thousands(static_cast<int64_t>(d.map->patterns)) << " patterns · from "
        << HtmlEscape(d.map->source) << " · loaded " << Ago(d.generated - d.map->loaded)
        << "</span>";
  }
  out << "</header>\n";
  if (!d.error.empty()) out << "<div class=\"error\">" << HtmlEscape(d.error) << "</div>\n";
  if (!d.platform.hours.empty()) {
    out << "<section id=\"platform\"><h2><b>All accounts</b> · messages per hour, 48 h "
        << "<span class=\"key\"><span class=\"kthis\">━ now</span> "
        << (d.platform.week_ago_known ? "<span class=\"klast\">▆ a week earlier</span>"
                                      : "<span class=\"klast\">(no week-old counts yet)</span>")
        << "</span></h2>" << PlatformChartSvg(d.platform) << "</section>\n";
  }
  std::map<std::string, std::string> states;
  for (const std::string& a : d.SignalledAccounts()) states[a] = "signal";
  for (const DashboardAccount& a : d.accounts) {
    if (a.state == "locked" || a.state == "flagged") states[a.account] = a.state;
  }
  out << "<main class=\"cols\">\n";
  Column(out, "this-hour", "This hour", d.top.this_hour, d, anomalous, states, true);
  Column(out, "last-hour", "Last hour", d.top.last_hour, d, anomalous, states, false);
  out << "</main>\n<div class=\"panels\">\n";

  Panel(out, "signals", "<b>Signals</b> · 24 h", d.signals, "none", [&](const Event& e) {
    std::string signals = e.rule;
    for (size_t i = signals.find(','); i != std::string::npos; i = signals.find(',', i + 2)) {
      signals.replace(i, 1, ", ");
    }
    // The evidence behind the reaction, for whoever walks up to the wall and points.
    out << "<li title=\"" << HtmlEscape(e.evidence) << "\"><span class=\"t\">"
        << EventTime(e.time, d.generated) << "</span><span class=\"react " << HtmlEscape(e.action)
        << "\">" << HtmlEscape(e.action) << "</span><span class=\"a\">" << HtmlEscape(e.account)
        << "</span> <span class=\"bad\">" << HtmlEscape(signals) << "</span>";
    if (!e.detail.empty()) out << " <span class=\"t\">" << HtmlEscape(e.detail) << "</span>";
    out << "</li>\n";
  });

  // Review happens in mapctl (`candidates accept|reject`): the page stays read-only.
  Panel(
      out, "candidates", "<b>Test-address candidates</b>", d.candidates, "none waiting",
      [&](const DashboardCandidate& c) {
        std::string accounts;
        for (const std::string& a : c.accounts) accounts += (accounts.empty() ? "" : ", ") + a;
        out << "<li title=\"" << HtmlEscape(c.evidence) << "\"><span class=\"t\">"
            << EventTime(c.time, d.generated) << "</span><span class=\"bad\">"
            << HtmlEscape(c.recipient) << "</span> <span class=\"t\">from</span> <span class=\"a\">"
            << HtmlEscape(accounts) << "</span></li>\n";
      },
      "review: mapctl candidates accept|reject ADDRESS");

  Panel(out, "anomalies", "<b>Anomalies</b> · 24 h", d.anomalies, "none", [&](const Event& e) {
    out << "<li title=\"" << HtmlEscape(e.detail) << "\"><span class=\"t\">"
        << EventTime(e.time, d.generated) << "</span><span class=\"a\">" << HtmlEscape(e.account)
        << "</span> <span class=\"bad\">" << HtmlEscape(e.rule) << " " << HtmlEscape(e.value)
        << "</span> &gt; " << HtmlEscape(e.threshold) << " (usual " << HtmlEscape(e.baseline)
        << ")</li>\n";
  });

  Panel(out, "hits", "<b>Tripwire hits</b>", d.hits, "none in 7 days", [&](const Event& e) {
    out << "<li><span class=\"t\">" << EventTime(e.time, d.generated) << "</span><span class=\"a\">"
        << HtmlEscape(e.account) << "</span> → <span class=\"bad\">" << HtmlEscape(e.recipient)
        << "</span> <span class=\"t\">" << HtmlEscape(e.where) << ", " << HtmlEscape(e.action)
        << "</span></li>\n";
  });

  Panel(out, "accounts", "<b>Flagged &amp; locked</b>", d.accounts, "none",
        [&](const DashboardAccount& r) {
          std::string state = r.state.empty() ? "hit" : r.state;
          std::string cls = (state == "locked" || state == "flagged") ? state : "other";
          out << "<li><span class=\"state " << cls << "\">" << HtmlEscape(state) << "</span>"
              << "<span class=\"a\">" << HtmlEscape(r.account) << "</span> <span class=\"t\">"
              << Thousands(r.hits) << (r.hits == 1 ? " hit" : " hits") << " · "
              << Ago(d.generated - r.last_hit) << "</span></li>\n";
        });
  out << "</div>\n";

  out << "<footer>compd " << HtmlEscape(d.version) << " · generated "
      << (d.generated > 0 ? FormatUnixTime(d.generated) : std::string("never"))
      << " · refreshes every " << refresh_seconds
      << " s · counts are all nodes, UTC hours · change: against the hour before · 48 h: "
         "messages per hour, red above the account's usual busy day (grey band)</footer>\n"
      << "</body></html>\n";
  return out.str();
}

}  // namespace compd
