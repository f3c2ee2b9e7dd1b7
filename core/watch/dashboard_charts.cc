#include "compd/watch/dashboard_charts.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <sstream>

namespace compd {

namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;

// SVG numbers with one decimal at most: short markup, no locale.
std::string Num(double v) {
  long tenths = std::lround(v * 10);
  std::string s = std::to_string(tenths / 10);
  if (tenths % 10 != 0) s += "." + std::to_string(std::labs(tenths % 10));
  if (tenths < 0 && tenths > -10) s = "-" + s;
  return s;
}

std::string Weekday(int64_t t) {
  static const char* kNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  return kNames[tm.tm_wday % 7];
}

// A round step for an axis reaching `top`: 1, 2 or 5 times a power of ten.
double NiceCeil(double top) {
  if (top <= 1) return 1;
  double p = std::pow(10, std::floor(std::log10(top)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= top) return m * p;
  }
  return 10 * p;
}

}  // namespace

std::string SparklineSvg(const AccountTrend& trend, int64_t first_hour, int min_history_days) {
  constexpr double kWidth = 240, kHeight = 40, kStep = kWidth / kTrendHours;
  const size_t n = trend.hours.size();
  const bool band = trend.history_days >= min_history_days && trend.usual_day > 0;
  // Scaled to the bars, not to the band: the shape of the 48 hours stays readable, and a
  // band that reaches the top means every hour was within a usual day.
  double top = 1;
  int64_t now_count = n ? trend.hours.back() : 0;
  for (int64_t v : trend.hours) top = std::max(top, static_cast<double>(v));
  std::ostringstream out;
  out << "<svg class=\"spark\" viewBox=\"0 0 " << Num(kWidth) << " " << Num(kHeight)
      << "\" preserveAspectRatio=\"none\" role=\"img\"><title>" << now_count
      << " this hour; usual busy day "
      << (band ? Num(trend.usual_day) : std::string("unknown (new account)"))
      << "; last 48 hours</title>";
  if (band) {
    double h = std::max(0.6, std::min(trend.usual_day / top, 1.0) * kHeight);
    out << "<rect class=\"band\" x=\"0\" y=\"" << Num(kHeight - h) << "\" width=\"" << Num(kWidth)
        << "\" height=\"" << Num(h) << "\"/>";
  }
  for (size_t i = 0; i < n; ++i) {
    if ((first_hour + static_cast<int64_t>(i) * kHour) % kDay == 0) {
      out << "<line class=\"mid\" x1=\"" << Num(i * kStep) << "\" y1=\"0\" x2=\"" << Num(i * kStep)
          << "\" y2=\"" << Num(kHeight) << "\"/>";
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t v = trend.hours[i];
    if (v <= 0) continue;
    double h = std::max(1.5, v / top * kHeight);
    std::string cls = "bar";
    if (band && v > trend.usual_day) cls += " over";
    if (i + 1 == n) cls += " now";
    out << "<rect class=\"" << cls << "\" x=\"" << Num(i * kStep + 0.5) << "\" y=\""
        << Num(kHeight - h) << "\" width=\"" << Num(kStep - 1) << "\" height=\"" << Num(h)
        << "\"/>";
  }
  out << "</svg>";
  return out.str();
}

std::string PlatformChartSvg(const PlatformTrend& p) {
  constexpr double kWidth = 1500, kHeight = 140, kLeft = 58, kRight = 8, kTop = 8, kBottom = 26;
  const size_t n = p.hours.size();
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  double top = 0;
  for (int64_t v : p.hours) top = std::max(top, static_cast<double>(v));
  if (p.week_ago_known) {
    for (int64_t v : p.week_ago) top = std::max(top, static_cast<double>(v));
  }
  top = NiceCeil(top * 1.05);
  const double step = n > 1 ? plot_w / (n - 1) : plot_w;
  auto x = [&](size_t i) { return kLeft + i * step; };
  auto y = [&](int64_t v) { return kTop + plot_h - v / top * plot_h; };
  std::ostringstream out;
  out << "<svg class=\"platform\" viewBox=\"0 0 " << Num(kWidth) << " " << Num(kHeight)
      << "\" role=\"img\"><title>authenticated messages per hour, last 48 hours"
      << (p.week_ago_known ? ", against the same hours a week earlier" : "") << "</title>";
  // Grid: the axis top and its half, labelled.
  for (double f : {0.5, 1.0}) {
    double gy = kTop + plot_h - f * plot_h;
    out << "<line class=\"grid\" x1=\"" << Num(kLeft) << "\" y1=\"" << Num(gy) << "\" x2=\""
        << Num(kWidth - kRight) << "\" y2=\"" << Num(gy) << "\"/><text class=\"axis\" x=\""
        << Num(kLeft - 6) << "\" y=\"" << Num(gy + 5) << "\" text-anchor=\"end\">"
        << static_cast<int64_t>(top * f) << "</text>";
  }
  out << "<line class=\"base\" x1=\"" << Num(kLeft) << "\" y1=\"" << Num(kTop + plot_h)
      << "\" x2=\"" << Num(kWidth - kRight) << "\" y2=\"" << Num(kTop + plot_h) << "\"/>";
  for (size_t i = 0; i < n; ++i) {
    int64_t t = p.first_hour + static_cast<int64_t>(i) * kHour;
    if (t % kDay != 0) continue;
    out << "<line class=\"mid\" x1=\"" << Num(x(i)) << "\" y1=\"" << Num(kTop) << "\" x2=\""
        << Num(x(i)) << "\" y2=\"" << Num(kTop + plot_h) << "\"/><text class=\"axis\" x=\""
        << Num(x(i)) << "\" y=\"" << Num(kHeight - 6) << "\" text-anchor=\"middle\">" << Weekday(t)
        << " 00:00</text>";
  }
  if (p.week_ago_known && n > 0) {
    out << "<polygon class=\"lastweek\" points=\"" << Num(x(0)) << "," << Num(y(0));
    for (size_t i = 0; i < n; ++i) out << " " << Num(x(i)) << "," << Num(y(p.week_ago[i]));
    out << " " << Num(x(n - 1)) << "," << Num(y(0)) << "\"/>";
  }
  if (n > 0) {
    // The hour in progress is partial: the line stops at the last full hour and a dot
    // shows where the current hour stands so far.
    out << "<polyline class=\"thisweek\" points=\"";
    for (size_t i = 0; i + 1 < n || (n == 1 && i == 0); ++i) {
      out << (i ? " " : "") << Num(x(i)) << "," << Num(y(p.hours[i]));
    }
    out << "\"/><circle class=\"nowdot\" cx=\"" << Num(x(n - 1)) << "\" cy=\""
        << Num(y(p.hours[n - 1])) << "\" r=\"5\"/>";
  }
  out << "</svg>";
  return out.str();
}

}  // namespace compd
