// Thread safety: a fitted funnel_model is immutable and may be used from many threads at once, and
// an event_log may be fitted from many threads at once. Each test runs the same calls on several
// threads against one shared object and requires results identical to the sequential ones. The
// TSan build (`tsan` preset, label `threads`) runs exactly these tests to catch data races.
#include <gtest/gtest.h>

#include <smartfunnel/simulate.hpp>
#include <smartfunnel/smartfunnel.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

namespace sf = smartfunnel;

namespace {

constexpr std::size_t n_threads = 4;

const sf::funnel& threads_funnel() {
  static const sf::funnel f({"Qualify", "Propose"}, {"Won"}, {"Lost"});
  return f;
}

// A small simulated history with open deals at as_of, amounts and owners.
const sf::event_log& shared_log() {
  static const sf::event_log log = [] {
    sf::simulation_spec spec;
    spec.transition = {0, .6, 0, .4, 0, 0, .5, .5};
    spec.sojourn_mean_days = {1, 10, 1, 5, 1, 1, 20, 8};
    spec.n_opportunities = 300;
    spec.seed = 11;
    const auto ev = sf::simulate(threads_funnel(), spec);
    return sf::event_log::from_columns(threads_funnel(), ev.columns());
  }();
  return log;
}

sf::fit_options small_fit() {
  sf::fit_options o;
  o.draws = 50;
  o.groups = {"owner"};
  return o;
}

sf::forecast_options forecast_window(const sf::funnel_model& model) {
  sf::forecast_options fo;
  fo.start = model.statistics().options.as_of.value();
  fo.end = fo.start + 90 * 86'400;
  fo.scenarios = 2000;
  fo.threads = 2; // threads inside each call too
  fo.seed = 5;
  fo.parameter_draws = 4;
  return fo;
}

// Runs `work(i)` on n_threads threads at once, started together.
template <class Work>
void run_concurrently(Work&& work) {
  std::vector<std::jthread> pool;
  pool.reserve(n_threads);
  for (std::size_t i = 0; i < n_threads; ++i) pool.emplace_back([&work, i] { work(i); });
}

void expect_same_forecast(const sf::forecast_result& a, const sf::forecast_result& b) {
  EXPECT_EQ(a.deals.opportunity, b.deals.opportunity);
  EXPECT_EQ(a.deals.p_win_period, b.deals.p_win_period);
  EXPECT_EQ(a.deals.p_win_ever, b.deals.p_win_ever);
  EXPECT_EQ(a.exact.pmf, b.exact.pmf);
  EXPECT_EQ(a.exact.mean, b.exact.mean);
  EXPECT_EQ(a.scenario_cents, b.scenario_cents);
  EXPECT_EQ(a.realised, b.realised);
}

} // namespace

TEST(threads, concurrent_forecasts_on_one_model_equal_the_sequential_ones) {
  const auto& log = shared_log();
  const auto model = sf::fit(log, small_fit());
  const auto fo = forecast_window(model);
  const auto sequential = sf::forecast(model, log, fo);
  ASSERT_FALSE(sequential.deals.opportunity.empty());
  ASSERT_EQ(sequential.scenario_cents.size(), fo.scenarios);
  // The exact distribution's mean is the realised revenue plus sum amount * P(won in the period)
  // (arrivals included: their own mean), computed here from the per-deal columns.
  double pipeline = 0.0;
  for (std::size_t i = 0; i < sequential.deals.amount.size(); ++i)
    pipeline += sequential.deals.amount[i] * sequential.deals.p_win_period[i];
  EXPECT_NEAR(sequential.exact_pipeline.mean, pipeline, 1e-6 * (1.0 + pipeline));

  std::vector<sf::forecast_result> results(n_threads);
  run_concurrently([&](std::size_t i) { results[i] = sf::forecast(model, log, fo); });
  for (const auto& r : results) expect_same_forecast(r, sequential);
}

TEST(threads, concurrent_p_win_on_one_model_equals_the_sequential_values) {
  const auto model = sf::fit(shared_log(), small_fit());
  std::vector<std::int32_t> stage;
  std::vector<double> age, horizon;
  for (std::int32_t s = 0; s < 4; ++s)
    for (int a = 0; a < 40; a += 3) {
      stage.push_back(s);
      age.push_back(a);
      horizon.push_back(a % 2 == 0 ? 30.0 : 365.0);
    }
  std::vector<double> ever(stage.size()), bounded(stage.size());
  model.p_win(stage, age, ever);
  model.p_win(stage, age, horizon, bounded);
  // Terminal codes: Won (2) is certain, Lost (3) impossible, whatever the age or horizon.
  for (std::size_t i = 0; i < stage.size(); ++i) {
    if (stage[i] == 2) {
      EXPECT_EQ(ever[i], 1.0);
    } else if (stage[i] == 3) {
      EXPECT_EQ(bounded[i], 0.0);
    } else {
      EXPECT_LE(bounded[i], ever[i] + 1e-12);
    }
  }
  std::vector<std::vector<double>> ever_t(n_threads), bounded_t(n_threads);
  run_concurrently([&](std::size_t t) {
    ever_t[t].resize(stage.size());
    bounded_t[t].resize(stage.size());
    for (int repeat = 0; repeat < 3; ++repeat) {
      model.p_win(stage, age, ever_t[t]);
      model.p_win(stage, age, horizon, bounded_t[t]);
    }
  });
  for (std::size_t t = 0; t < n_threads; ++t) {
    EXPECT_EQ(ever_t[t], ever);
    EXPECT_EQ(bounded_t[t], bounded);
  }
}

TEST(threads, concurrent_fits_of_one_log_equal_the_sequential_fit) {
  const auto& log = shared_log();
  const auto sequential = sf::fit(log, small_fit());
  std::vector<std::optional<sf::fit_statistics>> stats(n_threads);
  std::vector<double> p0(n_threads);
  run_concurrently([&](std::size_t i) {
    const auto m = sf::fit(log, small_fit());
    stats[i] = m.statistics();
    p0[i] = m.p_win(0, 0.0);
  });
  for (std::size_t i = 0; i < n_threads; ++i) {
    ASSERT_TRUE(stats[i].has_value());
    EXPECT_TRUE(*stats[i] == sequential.statistics());
    EXPECT_EQ(p0[i], sequential.p_win(0, 0.0));
  }
}
