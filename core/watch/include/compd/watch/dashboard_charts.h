// Dashboard charts: the wall page's pictures as inline SVG, drawn by the page itself (no
// script, no library, no external asset), so they render under the page's strict CSP and
// on any browser a wall display runs.
//
//   Sparkline: one top sender's messages per hour over the last 48 hours as bars (scaled
//   to the highest), over a grey band as high as its usual busy day. A bar above the band
//   is an hour with more mail than a usual busy whole day (the hour_volume anomaly rule)
//   and is drawn red, so "one mail a day for a year, 600 this hour" is a full-height red
//   bar over a hairline band, an ordinary sender's bars stand inside a band that fills
//   the box, and "never sends at night" is a gap at the same place on both days.
//   PlatformChart: authenticated messages per hour over the last 48 hours (a line) against
//   the same hours a week earlier (a grey area).
//
// Pure functions; safe from any thread.
#ifndef COMPD_WATCH_DASHBOARD_CHARTS_H_
#define COMPD_WATCH_DASHBOARD_CHARTS_H_

#include <cstdint>
#include <string>

#include "compd/watch/trends.h"

namespace compd {

// `first_hour`: unix seconds of trend.hours[0]; `min_history_days`: below it an account
// has no usual day yet and no band is drawn.
std::string SparklineSvg(const AccountTrend& trend, int64_t first_hour, int min_history_days);
std::string PlatformChartSvg(const PlatformTrend& platform);

}  // namespace compd

#endif  // COMPD_WATCH_DASHBOARD_CHARTS_H_
