#pragma once
// The calibration step of forecast() (calibration.cpp): replays the past periods and widens the
// result's distributions and scenarios in place.

#include "smartfunnel/event_log.hpp"
#include "smartfunnel/forecast.hpp"
#include "smartfunnel/funnel_model.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

namespace smartfunnel::detail {

/// The quantiles every forecast is scored at, and the mean pinball loss of an outcome against them
/// (shared by the backtest's rows, the calibration's track record and the recency choice).
inline constexpr double score_levels[3] = {0.1, 0.5, 0.9};
inline double pinball_loss(double actual, const double (&q)[3]) noexcept {
  double s = 0.0;
  for (int i = 0; i < 3; ++i) {
    const double u = actual - q[i];
    s += std::max(score_levels[i] * u, (score_levels[i] - 1.0) * u);
  }
  return s / 3.0;
}

/// One replayed past period: the uncalibrated forecast's uncertain part and the baselines.
struct past_period {
  double expected = 0, variance = 0, actual = 0, realised = 0;
  double q[3] = {0, 0, 0};
  revenue_distribution exact;
  double base_mean[2] = {0, 0};
  double base_q[2][3] = {{0, 0, 0}, {0, 0, 0}};
};

/// Past periods already replayed, by (as_of, offset of the period's start, length): a backtest's
/// dates share most of theirs. Thread-safe.
class calibration_cache {
public:
  using key = std::tuple<time_point, std::int64_t, std::int64_t>;
  bool find(const key& k, past_period& out) {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(k);
    if (it == rows_.end()) return false;
    out = it->second;
    return true;
  }
  void put(const key& k, const past_period& row) {
    std::lock_guard lock(mutex_);
    rows_.emplace(k, row);
  }

private:
  std::mutex mutex_;
  std::map<key, past_period> rows_;
};

void calibrate(forecast_result& out, const funnel_model& model, const event_log& log,
               const forecast_options& options, calibration_cache* cache = nullptr);

} // namespace smartfunnel::detail
