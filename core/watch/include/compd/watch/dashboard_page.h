// Dashboard page: DashboardData as one self-contained HTML page for a wall monitor: dark
// background, big type, the two top-sender columns side by side, anomalies, hits and
// flagged accounts below, with each top sender's last 48 hours and the platform's drawn as
// inline SVG (dashboard_charts.h). No scripts and no external assets (the page reloads itself
// with a meta refresh), so it works behind any proxy and under a strict CSP.
//
// Pure functions; safe from any thread.
#ifndef COMPD_WATCH_DASHBOARD_PAGE_H_
#define COMPD_WATCH_DASHBOARD_PAGE_H_

#include <string>
#include <string_view>

#include "compd/watch/dashboard.h"

namespace compd {

std::string RenderDashboardPage(const DashboardData& data, int refresh_seconds);

// &, <, >, " and ' as entities; control characters dropped.
std::string HtmlEscape(std::string_view text);

}  // namespace compd

#endif  // COMPD_WATCH_DASHBOARD_PAGE_H_
