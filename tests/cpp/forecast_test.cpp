// The revenue forecast: exact distribution, Monte Carlo determinism, realised and pipeline parts.
#include "test_support.hpp"

#include <smartfunnel/forecast.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

namespace {
constexpr double eps = 1e-12;
}

TEST(exact_distribution, two_deals_by_hand) {
  // 100 with p 1/2 and 300 with p 1/4: totals 0 (3/8), 100 (3/8), 300 (1/8), 400 (1/8).
  const std::vector<double> amount{100, 300}, p{0.5, 0.25};
  const auto d = sf::exact_distribution(amount, p, 1000.0);
  EXPECT_NEAR(d.mean, 1000.0 + 125.0, 1e-9);
  EXPECT_NEAR(d.variance, 100.0 * 100 * 0.25 + 300.0 * 300 * 0.25 * 0.75, 1e-6);
  double mean = 0.0, total = 0.0;
  for (std::size_t i = 0; i < d.pmf.size(); ++i) {
    mean += (d.origin + static_cast<double>(i) * d.step) * d.pmf[i];
    total += d.pmf[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_NEAR(mean, 1125.0, 1e-6); // the lattice keeps the mean
  EXPECT_NEAR(d.probability_at_least(1050), 5.0 / 8, 1e-9);
  EXPECT_NEAR(d.probability_at_least(1299), 2.0 / 8, 1e-9);
  EXPECT_NEAR(d.probability_at_least(1399), 1.0 / 8, 1e-9);
  EXPECT_NEAR(d.w1_bound, d.step / 2 * 0.75, eps);
}

TEST(exact_distribution, certain_deals_and_compound_poisson) {
  // A deal with p = 1 is a fixed shift; a Poisson(2) number of 50s adds mean 100.
  const std::vector<double> amount{70}, p{1.0};
  sf::compound_poisson cp{2.0, {50.0}, {1.0}};
  const auto d = sf::exact_distribution(amount, p, 0.0, 4096, 8.0, &cp);
  EXPECT_NEAR(d.mean, 170.0, 1e-9);
  // P(total >= 70 + 50 k - 25) = P(N >= k): P(N >= 1) = 1 - e^-2, P(N >= 2) = 1 - 3 e^-2.
  EXPECT_NEAR(d.probability_at_least(95), 1 - std::exp(-2.0), 1e-9);
  EXPECT_NEAR(d.probability_at_least(145), 1 - 3 * std::exp(-2.0), 1e-9);
}

TEST(monte_carlo, identical_for_threads_and_partitions) {
  const std::size_t n = 1000, scenarios = 777;
  std::vector<std::int64_t> cents(n);
  std::vector<double> p(n);
  std::vector<std::uint64_t> key(n);
  for (std::size_t i = 0; i < n; ++i) {
    cents[i] = static_cast<std::int64_t>(1000 + 37 * i);
    p[i] = static_cast<double>(i % 97) / 97.0;
    key[i] = sf::opportunity_key("deal-" + std::to_string(i));
  }
  const auto one = sf::monte_carlo_cents(cents, p, key, scenarios, 9, 1);
  EXPECT_EQ(one, sf::monte_carlo_cents(cents, p, key, scenarios, 9, 3));
  const std::size_t cut = 413;
  auto a = sf::monte_carlo_cents(std::span(cents).first(cut), std::span(p).first(cut),
                                 std::span(key).first(cut), scenarios, 9, 1);
  const auto b = sf::monte_carlo_cents(std::span(cents).subspan(cut), std::span(p).subspan(cut),
                                       std::span(key).subspan(cut), scenarios, 9, 2);
  for (std::size_t s = 0; s < scenarios; ++s) a[s] += b[s];
  EXPECT_EQ(one, a);
  // The mean is close to sum cents * p (many scenarios would make it exact).
  double expected = 0.0, mean = 0.0;
  for (std::size_t i = 0; i < n; ++i) expected += static_cast<double>(cents[i]) * p[i];
  for (auto t : one) mean += static_cast<double>(t) / static_cast<double>(scenarios);
  EXPECT_NEAR(mean / expected, 1.0, 0.01);
}

TEST(forecast, realised_pipeline_and_errors) {
  // One stage A: Won at 1 day or Lost at 2 days, half each (two closed deals), then two open
  // deals at as_of = day 10, each 0 days old (entered at day 10): P(won within 5 days) = 1/2.
  const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  table t;
  t.add(1, "A", day(0), 100, "ann").add(1, "Won", day(1), 100, "ann");
  t.add(2, "A", day(0), 100, "ann").add(2, "Lost", day(2), 100, "ann");
  t.add(3, "A", day(10), 200, "ann");
  t.add(4, "A", day(10), 400, "ann");
  const auto log = t.log(f);
  sf::fit_options o;
  o.as_of = day(10);
  o.prior = 0.0;
  o.draws = 0;
  o.min_at_risk = 1;
  const auto model = sf::fit(log, o);
  sf::forecast_options fo;
  fo.start = day(0);
  fo.end = day(15);
  fo.include_arrivals = false;
  fo.scenarios = 1000;
  const auto fc = sf::forecast(model, log, fo);
  EXPECT_NEAR(fc.realised, 100.0, eps); // deal 1, won at day 1 inside [day 0, day 15)
  ASSERT_EQ(fc.deals.opportunity.size(), 2u);
  EXPECT_NEAR(fc.deals.p_win_period[0], 0.5, eps);
  EXPECT_NEAR(fc.deals.p_win_ever[1], 0.5, eps);
  EXPECT_NEAR(fc.expected(), 100.0 + 0.5 * 200 + 0.5 * 400, 1e-9);
  for (auto c : fc.scenario_cents) EXPECT_EQ((c - 10000) % 20000, 0); // realised + 200k + 400m
  // A forecast as of a time before the model's is refused.
  fo.as_of = day(5);
  EXPECT_THROW((void)sf::forecast(model, log, fo), sf::invalid_options);
  fo.as_of.reset();
  fo.end = fo.start;
  EXPECT_THROW((void)sf::forecast(model, log, fo), sf::invalid_options);
  // Cancelling through the progress callback.
  fo.end = day(15);
  fo.progress = [](double fraction) { return fraction < 0.3; };
  EXPECT_THROW((void)sf::forecast(model, log, fo), sf::cancelled);
}

TEST(exact_distribution, mixture_of_two_point_masses) {
  // Two parts, 100 for sure and 300 for sure: the mixture is 1/2 at each, mean 200, variance 10^4.
  const std::vector<double> a{100}, b{300}, p{1.0};
  const auto m = sf::mixture({sf::exact_distribution(a, p), sf::exact_distribution(b, p)}, 64);
  EXPECT_NEAR(m.mean, 200.0, 1e-9);
  EXPECT_NEAR(m.variance, 10000.0, 1e-6);
  EXPECT_NEAR(m.probability_at_least(101), 0.5, 1e-9);
  EXPECT_NEAR(m.probability_at_least(99), 1.0, 1e-9);
  EXPECT_NEAR(m.quantile(0.25), 100.0, m.step);
  EXPECT_NEAR(m.quantile(0.75), 300.0, m.step);
}

TEST(exact_distribution, parts_on_a_given_step_by_hand) {
  // 100 with p 1/2 in one part, 300 with p 1/4 and 50 for sure in another, on step 100: totals
  // 50 + {0 (3/8), 100 (3/8), 300 (1/8), 400 (1/8)}.
  const std::vector<double> a1{100}, p1{0.5}, a2{300, 50}, p2{0.25, 1.0};
  const auto d1 = sf::exact_distribution_with_step(a1, p1, 100.0);
  const auto d2 = sf::exact_distribution_with_step(a2, p2, 100.0, 0.0);
  EXPECT_NEAR(d2.origin, 50.0, eps); // the certain deal is the fixed part
  const auto d = sf::convolve(d1, d2);
  EXPECT_NEAR(d.origin, 50.0, eps);
  EXPECT_NEAR(d.step, 100.0, eps);
  const std::vector<double> want{3.0 / 8, 3.0 / 8, 0.0, 1.0 / 8, 1.0 / 8};
  ASSERT_EQ(d.pmf.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(d.pmf[i], want[i], eps) << i;
  EXPECT_NEAR(d.mean, 50.0 + 50.0 + 75.0, eps);
  EXPECT_NEAR(d.variance, 100.0 * 100 * 0.25 + 300.0 * 300 * 0.25 * 0.75, 1e-9);
  EXPECT_NEAR(d.w1_bound, 100.0 / 2 * 0.75, eps);
  // Steps must agree (a point mass fits any step).
  const auto other = sf::exact_distribution_with_step(a1, p1, 70.0);
  EXPECT_THROW((void)sf::convolve(d1, other), std::invalid_argument);
  const auto point = sf::exact_distribution_with_step({}, {}, 70.0, 20.0);
  ASSERT_EQ(point.pmf.size(), 1u);
  EXPECT_NEAR(sf::convolve(d1, point).origin, 20.0, eps);
  EXPECT_THROW((void)sf::exact_distribution_with_step(a1, p1, 0.0), std::invalid_argument);
}

TEST(exact_distribution, parts_combine_to_the_whole_on_its_lattice) {
  // 3,000 deals split into uneven parts (one empty, one with only a certain deal), plus arrivals:
  // the parts on the whole's step, convolved, equal exact_distribution of the whole.
  const std::size_t n = 3000;
  std::vector<double> amount(n), p(n);
  for (std::size_t i = 0; i < n; ++i) {
    amount[i] = 1000.0 + static_cast<double>((i * 7919) % 50'000);
    p[i] = static_cast<double>((i * 31) % 101) / 100.0; // 0 .. 1, some certain and some zero
  }
  const sf::compound_poisson cp{12.5, {2000.0, 15000.0, 40000.0}, {0.5, 0.3, 0.2}};
  const std::size_t cells = 1024;
  const auto whole = sf::exact_distribution(amount, p, 500.0, cells, 8.0, &cp);
  const auto span_a = std::span<const double>(amount), span_p = std::span<const double>(p);
  const std::vector<std::pair<std::size_t, std::size_t>> parts{
      {0, 2700}, {2700, 2700}, {2700, 2999}, {2999, n}};
  auto total = sf::exact_distribution_with_step({}, {}, whole.step, 500.0, cells, 8.0, &cp);
  for (const auto& [b, e] : parts)
    total = sf::convolve(total,
                         sf::exact_distribution_with_step(span_a.subspan(b, e - b), span_p.subspan(b, e - b),
                                                          whole.step, 0.0, cells, 8.0),
                         cells);
  EXPECT_NEAR(total.mean, whole.mean, 1e-9 * whole.mean);
  EXPECT_NEAR(total.variance, whole.variance, 1e-9 * whole.variance);
  EXPECT_NEAR(total.w1_bound, whole.w1_bound, 1e-9 * whole.w1_bound);
  const double shift = (total.origin - whole.origin) / whole.step;
  EXPECT_NEAR(shift, std::round(shift), 1e-6); // the same lattice
  const auto k = static_cast<std::int64_t>(std::round(shift));
  double worst = 0.0, mass = 0.0;
  for (std::size_t i = 0; i < whole.pmf.size(); ++i) {
    const auto j = static_cast<std::int64_t>(i) - k;
    const double other = j >= 0 && j < static_cast<std::int64_t>(total.pmf.size())
                             ? total.pmf[static_cast<std::size_t>(j)]
                             : 0.0;
    worst = std::max(worst, std::abs(whole.pmf[i] - other));
    mass += whole.pmf[i];
  }
  EXPECT_NEAR(mass, 1.0, 1e-9);
  EXPECT_LT(worst, 1e-12);
  EXPECT_NEAR(total.quantile(0.1), whole.quantile(0.1), 1e-6 * whole.mean);
  EXPECT_NEAR(total.quantile(0.9), whole.quantile(0.9), 1e-6 * whole.mean);
}

TEST(forecast, arrivals_monte_carlo_independent_of_row_order) {
  // Deals created in the lookback with different amounts: the amount a Monte Carlo arrival draws
  // must not depend on the order of the rows (nor, then, on how the deals are partitioned).
  const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  auto make = [&](bool reversed) {
    table t;
    std::vector<std::int64_t> ids;
    for (std::int64_t o = 1; o <= 12; ++o) ids.push_back(o);
    if (reversed) std::reverse(ids.begin(), ids.end());
    for (auto o : ids) {
      const double amt = 1000.0 * static_cast<double>(o);
      t.add(o, "A", day(o), amt, "ann");
      if (o % 3 == 0) t.add(o, o % 2 == 0 ? "Won" : "Lost", day(o + 5), amt, "ann");
    }
    return t.log(f);
  };
  const auto a = make(false), b = make(true);
  sf::fit_options o;
  o.as_of = day(20);
  o.draws = 0;
  const auto model = sf::fit(a, o);
  ASSERT_TRUE(model.statistics() == sf::fit(b, o).statistics());
  sf::forecast_options fo;
  fo.start = day(20);
  fo.end = day(80);
  fo.scenarios = 2000;
  fo.seed = 3;
  const auto fa = sf::forecast(model, a, fo), fb = sf::forecast(model, b, fo);
  ASSERT_FALSE(fa.arrival_cents.empty());
  EXPECT_GT(*std::max_element(fa.arrival_cents.begin(), fa.arrival_cents.end()), 0);
  EXPECT_EQ(fa.arrival_cents, fb.arrival_cents);
  EXPECT_EQ(fa.scenario_cents, fb.scenario_cents);
}

TEST(exact_distribution, mixture_points_do_not_depend_on_trimmed_tails) {
  // The same two parts, once with an explicit empty cell below the first one (as a part computed
  // in pieces keeps a negligible tail cell another computation trims): the mixture's points are
  // its mean plus whole steps, so both mixtures have the same points and the same masses.
  sf::revenue_distribution a;
  a.origin = 1000.0;
  a.step = 10.0;
  a.pmf = {0.25, 0.5, 0.25};
  a.mean = 1010.0;
  a.variance = 50.0;
  sf::revenue_distribution b = a;
  b.origin = 1040.0;
  b.mean = 1050.0;
  sf::revenue_distribution a_wide = a;
  a_wide.origin = 990.0;
  a_wide.pmf = {0.0, 0.25, 0.5, 0.25};
  const auto m = sf::mixture({a, b}, 64), w = sf::mixture({a_wide, b}, 64);
  EXPECT_NEAR(m.mean, 1030.0, 1e-9);
  EXPECT_NEAR(m.variance, 50.0 + 400.0, 1e-9); // within + between (20^2)
  const double k = (m.origin - m.mean) / m.step;
  EXPECT_NEAR(k, std::round(k), 1e-9); // a point at the mean
  EXPECT_LE(m.origin, 1000.0);
  EXPECT_GT(m.origin, 1000.0 - m.step);
  const double shift = (m.origin - w.origin) / m.step;
  ASSERT_NEAR(shift, std::round(shift), 1e-9);
  const auto s = static_cast<std::int64_t>(std::round(shift));
  ASSERT_GE(s, 0);
  for (std::size_t i = 0; i < w.pmf.size(); ++i) {
    const auto j = static_cast<std::int64_t>(i) - s;
    const double other =
        j >= 0 && j < static_cast<std::int64_t>(m.pmf.size()) ? m.pmf[static_cast<std::size_t>(j)] : 0.0;
    EXPECT_NEAR(w.pmf[i], other, 1e-12) << i;
  }
  EXPECT_NEAR(std::accumulate(m.pmf.begin(), m.pmf.end(), 0.0), 1.0, 1e-12);
  // The lattice keeps the mean.
  double mean = 0.0;
  for (std::size_t i = 0; i < m.pmf.size(); ++i)
    mean += (m.origin + static_cast<double>(i) * m.step) * m.pmf[i];
  EXPECT_NEAR(mean, 1030.0, 1e-9);
}

namespace {
// The rows of the opportunities that `keep` selects.
sf::simulated_events subset(const sf::simulated_events& ev, bool (*keep)(std::int64_t)) {
  sf::simulated_events out;
  out.stage_names = ev.stage_names;
  out.owner_names = ev.owner_names;
  for (std::size_t r = 0; r < ev.opportunity.size(); ++r) {
    if (!keep(ev.opportunity[r])) continue;
    out.opportunity.push_back(ev.opportunity[r]);
    out.stage.push_back(ev.stage[r]);
    out.time.push_back(ev.time[r]);
    out.amount.push_back(ev.amount[r]);
    out.owner.push_back(ev.owner[r]);
    out.close_date.push_back(ev.close_date[r]);
    out.created.push_back(ev.created[r]);
  }
  return out;
}
} // namespace

TEST(forecast, parameter_draws_add_up_over_partitions) {
  // What a distributed forecast with parameter uncertainty relies on: the posterior draws are
  // keyed by (seed, draw, group, stage), so each deal has the same per-draw probabilities in any
  // part of the log; per draw, the parts' distributions on the draw's lattice of the whole (from
  // the summed variances) convolve, with the draw's arrivals, into the whole's draw, and the
  // mixture of those is the whole's exact distribution; the Monte Carlo adds up by scenario.
  const sf::funnel f({"Qualify", "Propose"}, {"Won"}, {"Lost"});
  sf::simulation_spec spec;
  spec.transition = {0, .6, 0, .4, 0, 0, .5, .5};
  spec.sojourn_mean_days = {1, 30, 1, 20, 1, 1, 40, 30};
  spec.n_opportunities = 600;
  spec.seed = 21;
  const auto ev = sf::simulate(f, spec);
  const auto whole_log = sf::event_log::from_columns(f, ev.columns());
  const auto even = subset(ev, [](std::int64_t o) { return o % 2 == 0; });
  const auto odd = subset(ev, [](std::int64_t o) { return o % 2 != 0; });
  const std::vector<sf::event_log> halves{sf::event_log::from_columns(f, even.columns()),
                                          sf::event_log::from_columns(f, odd.columns())};
  sf::fit_options o;
  o.groups = {"owner"};
  const auto model = sf::fit(whole_log, o);
  const std::size_t draws = 7, cells = 1024, scenarios = 500;
  const double sd = 8.0;
  sf::forecast_options fo;
  fo.start = spec.as_of - 10 * 86'400;
  fo.end = spec.as_of + 60 * 86'400;
  fo.parameter_draws = draws;
  fo.lattice_cells = cells;
  fo.scenarios = scenarios;
  fo.seed = 9;
  const auto whole = sf::forecast(model, whole_log, fo);
  const std::size_t n = whole.deals.opportunity.size();
  ASSERT_GT(n, 50u);
  ASSERT_EQ(whole.deals.p_win_period_draws.size(), n * draws);
  ASSERT_EQ(whole.arrivals.total_draws.size(), draws);
  ASSERT_GT(whole.arrivals.total.rate, 0.0);
  // The draws differ from one another and from the point estimates.
  EXPECT_NE(whole.deals.p_win_period_draws[0], whole.deals.p_win_period_draws[1]);
  EXPECT_NE(whole.arrivals.total_draws[0].rate, whole.arrivals.total_draws[1].rate);
  // Without draws, nothing per draw.
  auto no_draws = fo;
  no_draws.parameter_draws = 0;
  no_draws.scenarios = 0;
  const auto point = sf::forecast(model, whole_log, no_draws);
  EXPECT_TRUE(point.deals.p_win_period_draws.empty() && point.arrivals.total_draws.empty());

  // Each half: the same per-draw probabilities for its deals, by opportunity id.
  auto pipe = fo;
  pipe.include_arrivals = false;
  pipe.exact = false;
  std::vector<sf::forecast_result> parts;
  std::vector<std::int64_t> cents_sum(scenarios, 0);
  for (const auto& log : halves) {
    parts.push_back(sf::forecast(model, log, pipe));
    const auto& r = parts.back();
    for (std::size_t i = 0; i < r.deals.opportunity.size(); ++i) {
      const auto id = log.int_ids()[r.deals.opportunity[i]];
      const auto at = std::find_if(whole.deals.opportunity.begin(), whole.deals.opportunity.end(),
                                   [&](std::size_t w) { return whole_log.int_ids()[w] == id; });
      ASSERT_NE(at, whole.deals.opportunity.end());
      const auto w = static_cast<std::size_t>(at - whole.deals.opportunity.begin());
      for (std::size_t d = 0; d < draws; ++d)
        ASSERT_EQ(r.deals.p_win_period_draws[i * draws + d], whole.deals.p_win_period_draws[w * draws + d]);
    }
    for (std::size_t s = 0; s < scenarios; ++s) cents_sum[s] += r.scenario_cents[s];
  }
  for (std::size_t s = 0; s < scenarios; ++s) cents_sum[s] += whole.arrival_cents[s];
  EXPECT_EQ(cents_sum, whole.scenario_cents);

  // Per draw: the halves on the whole's lattice, convolved with the arrivals, then mixed.
  std::vector<sf::revenue_distribution> per_draw;
  for (std::size_t d = 0; d < draws; ++d) {
    std::vector<std::vector<double>> p(parts.size());
    double var = 0.0;
    for (std::size_t k = 0; k < parts.size(); ++k) {
      const auto& r = parts[k];
      for (std::size_t i = 0; i < r.deals.amount.size(); ++i) {
        const double q = std::clamp(r.deals.p_win_period_draws[i * draws + d], 0.0, 1.0),
                     a = r.deals.amount[i];
        p[k].push_back(q);
        if (a > 0.0 && q > 0.0 && q < 1.0) var += a * a * q * (1.0 - q);
      }
    }
    const auto& cp = whole.arrivals.total_draws[d];
    ASSERT_GT(cp.mean(), 0.0);
    var += cp.variance();
    const double step = 2.0 * sd * std::sqrt(var) / static_cast<double>(cells);
    auto total = sf::exact_distribution_with_step({}, {}, step, 0.0, cells, sd, &cp);
    for (std::size_t k = 0; k < parts.size(); ++k)
      total = sf::convolve(
          total,
          sf::exact_distribution_with_step(parts[k].deals.amount, p[k], step, parts[k].realised, cells, sd),
          cells, sd);
    per_draw.push_back(std::move(total));
  }
  const auto mixed = sf::mixture(per_draw, cells, sd);
  const auto& want = whole.exact;
  EXPECT_NEAR(mixed.mean, want.mean, 1e-12 * want.mean);
  EXPECT_NEAR(mixed.variance, want.variance, 1e-9 * want.variance);
  const double shift = (mixed.origin - want.origin) / want.step;
  ASSERT_NEAR(shift, std::round(shift), 1e-6);
  const auto s = static_cast<std::int64_t>(std::round(shift));
  double worst = 0.0;
  for (std::size_t i = 0; i < want.pmf.size(); ++i) {
    const auto j = static_cast<std::int64_t>(i) - s;
    const double other = j >= 0 && j < static_cast<std::int64_t>(mixed.pmf.size())
                             ? mixed.pmf[static_cast<std::size_t>(j)]
                             : 0.0;
    worst = std::max(worst, std::abs(want.pmf[i] - other));
  }
  EXPECT_LT(worst, 1e-12);
  // The mixture is wider than the point forecast: parameter uncertainty adds variance.
  EXPECT_GT(want.variance, point.exact.variance);
}

TEST(forecast, arrivals_valued_like_won_deals) {
  // As the Maven and sparklesquad exports: lost deals at 0, and deals whose amount at the win
  // differs from their amount at creation. as_of = day 200, lookback 100 days: (day 100, day 200].
  const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  table t;
  t.add(1, "A", day(110), 100, "ann").add(1, "Won", day(130), 300, "ann");  // created and won inside
  t.add(2, "A", day(120), 200, "ann").add(2, "Won", day(150), 500, "ann");  // created and won inside
  t.add(3, "A", day(125), 150, "ann").add(3, "Lost", day(140), 0, "ann");   // lost at 0
  t.add(4, "A", day(160), 400, "ann");                                      // open
  t.add(5, "A", day(50), 800, "ann").add(5, "Won", day(180), 1000, "ann");  // won inside, created before
  t.add(6, "A", day(20), 50, "ann").add(6, "Won", day(60), 9999, "ann");    // won before the lookback
  t.add(7, "A", day(170), 600, "ann").add(7, "Won", day(250), 7000, "ann"); // won after as_of: unseen
  t.add(8, "A", day(30), 90, "ann").add(8, "Lost", day(90), 0, "ann");
  const auto log = t.log(f);
  sf::fit_options o;
  o.as_of = day(200);
  o.draws = 0;
  o.min_at_risk = 1;
  const auto model = sf::fit(log, o);
  sf::forecast_options fo;
  fo.start = day(200);
  fo.end = day(290);
  fo.scenarios = 0;
  fo.arrivals_lookback_days = 100.0;
  fo.arrivals_min_wins = 3;
  const auto fc = sf::forecast(model, log, fo);
  ASSERT_EQ(fc.arrivals.group.size(), 1u);
  // Created in the lookback: deals 1, 2, 3, 4, 7 (the rate); won in it: 1, 2, 5 at 300, 500, 1000.
  EXPECT_NEAR(fc.arrivals.created[0], 5.0, eps);
  EXPECT_NEAR(fc.arrivals.rate_per_day[0], 5.0 / 100.0, eps);
  EXPECT_EQ(fc.arrivals.amount_source[0], "won");
  EXPECT_NEAR(fc.arrivals.amount_count[0], 3.0, eps);
  const double won_mean = (300.0 + 500.0 + 1000.0) / 3.0;
  EXPECT_NEAR(fc.arrivals.mean_amount[0], won_mean, 1e-9);
  EXPECT_NEAR(fc.arrivals.expected[0], fc.arrivals.expected_wins[0] * won_mean, 1e-9);
  EXPECT_NEAR(fc.arrivals.total.mean(), fc.arrivals.expected_wins[0] * won_mean, 1e-9);
  EXPECT_NEAR(fc.exact_arrivals.mean, fc.arrivals.expected_wins[0] * won_mean, 1e-6);
  // Fewer wins than arrivals_min_wins: the amounts at entry of the deals created in the lookback.
  fo.arrivals_min_wins = 4;
  const auto fb = sf::forecast(model, log, fo);
  EXPECT_EQ(fb.arrivals.amount_source[0], "created");
  EXPECT_NEAR(fb.arrivals.amount_count[0], 5.0, eps);
  EXPECT_NEAR(fb.arrivals.mean_amount[0], (100.0 + 200.0 + 150.0 + 400.0 + 600.0) / 5.0, 1e-9);
  EXPECT_NEAR(fb.arrivals.expected_wins[0], fc.arrivals.expected_wins[0], eps); // same rate and process
  // By owner: bob's one created deal and one win (inside the lookback) fall back on their own;
  // ann keeps her three wins.
  table u = t;
  u.add(9, "A", day(150), 70, "bob").add(9, "Won", day(190), 2000, "bob");
  const auto ulog = u.log(f);
  const auto umodel = sf::fit(ulog, o);
  fo.arrivals_min_wins = 2;
  fo.arrivals_by = "owner";
  const auto fu = sf::forecast(umodel, ulog, fo);
  ASSERT_EQ(fu.arrivals.group, (std::vector<std::string>{"ann", "bob"}));
  EXPECT_EQ(fu.arrivals.amount_source, (std::vector<std::string>{"won", "created"}));
  EXPECT_NEAR(fu.arrivals.mean_amount[0], won_mean, 1e-9);
  EXPECT_NEAR(fu.arrivals.mean_amount[1], 70.0, eps);
}

TEST(forecast, arrivals_rate_follows_a_growing_pipeline) {
  // No deal created in the first half of the 100-day lookback before as_of = day 200, then one a
  // day (days 150..199): the flat count says 50 / 100 days, while the pipeline now brings about
  // one a day. The rate is the level at as_of of the Poisson intensity r e^(g t), t in (-L, 0]
  // days from as_of, fitted by maximum likelihood, so it solves the score equations
  //   n = r (1 - e^(-g L)) / g  and  sum t_i = r * integral t e^(g t) dt over (-L, 0].
  const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  table t;
  for (std::int64_t k = 1; k <= 20; ++k) // closed before the lookback: the kernels
    t.add(k, "A", day(k), 100, "ann").add(k, k % 2 == 0 ? "Won" : "Lost", day(k + 10), 100, "ann");
  std::vector<double> x;
  for (std::int64_t d = 150; d <= 199; ++d) {
    t.add(100 + d, "A", day(d), 100, "ann");
    x.push_back(static_cast<double>(d - 200));
  }
  const auto log = t.log(f);
  sf::fit_options o;
  o.as_of = day(200);
  o.draws = 0;
  const auto model = sf::fit(log, o);
  sf::forecast_options fo;
  fo.start = day(200);
  fo.end = day(260);
  fo.scenarios = 0;
  fo.arrivals_lookback_days = 100.0;
  const auto fc = sf::forecast(model, log, fo);
  ASSERT_EQ(fc.arrivals.group.size(), 1u);
  EXPECT_EQ(fc.arrivals.rate_source[0], "trend");
  const double r = fc.arrivals.rate_per_day[0], g = fc.arrivals.rate_growth_per_day[0], L = 100.0;
  const double n = 50.0;
  ASSERT_GT(g, 0.0);
  EXPECT_NEAR(r * (1.0 - std::exp(-g * L)) / g, n, 1e-6 * n);
  const double sum_t = std::accumulate(x.begin(), x.end(), 0.0);
  const double integral_t = -1.0 / (g * g) + std::exp(-g * L) * (L / g + 1.0 / (g * g));
  EXPECT_NEAR(r * integral_t, sum_t, 1e-6 * std::abs(sum_t));
  EXPECT_GT(r, 0.9); // near the one a day of the last 50 days, far above the flat 0.5
  // Expected new wins scale with the rate (same entry stage and process).
  fo.arrivals_trend = false;
  const auto flat = sf::forecast(model, log, fo);
  EXPECT_EQ(flat.arrivals.rate_source[0], "flat");
  EXPECT_NEAR(flat.arrivals.rate_per_day[0], n / L, eps);
  EXPECT_NEAR(fc.arrivals.expected_wins[0] / flat.arrivals.expected_wins[0], r / (n / L), 1e-9);
  // Creations spread evenly over the lookback: no significant trend, the flat count.
  table u;
  for (std::int64_t k = 1; k <= 20; ++k)
    u.add(k, "A", day(k), 100, "ann").add(k, k % 2 == 0 ? "Won" : "Lost", day(k + 10), 100, "ann");
  for (std::int64_t d = 101; d <= 200; d += 2) u.add(100 + d, "A", day(d), 100, "ann");
  const auto ulog = u.log(f);
  fo.arrivals_trend = true;
  const auto even = sf::forecast(sf::fit(ulog, o), ulog, fo);
  EXPECT_EQ(even.arrivals.rate_source[0], "flat");
  EXPECT_NEAR(even.arrivals.rate_per_day[0], 50.0 / L, eps);
}
