#include "smartfunnel/simulate.hpp"

#include "smartfunnel/detail/random.hpp"
#include "smartfunnel/error.hpp"

#include <cmath>

namespace smartfunnel {

event_columns simulated_events::columns() const {
  event_columns c;
  c.opportunity = opportunity;
  c.stage = stage;
  c.stage_names = stage_names;
  c.time = time;
  c.amount = amount;
  c.owner = owner;
  c.owner_names = owner_names;
  c.close_date = close_date;
  c.created = created;
  return c;
}

namespace {
void check_rows(const std::vector<double>& p, std::size_t n, const char* what) {
  const std::size_t w = n + 2;
  if (p.size() != n * w)
    throw invalid_options(std::string(what) + " must have n_open x (n_open + 2) = " + std::to_string(n * w) +
                          " entries, got " + std::to_string(p.size()));
  for (std::size_t s = 0; s < n; ++s) {
    double total = 0.0;
    for (std::size_t j = 0; j < w; ++j) {
      if (!(p[s * w + j] >= 0.0))
        throw invalid_options(std::string(what) + ": negative or NaN entry in row " + std::to_string(s));
      total += p[s * w + j];
    }
    if (std::abs(total - 1.0) > 1e-9)
      throw invalid_options(std::string(what) + ": row " + std::to_string(s) + " sums to " +
                            std::to_string(total) + ", expected 1");
    if (p[s * w + s] != 0.0)
      throw invalid_options(std::string(what) + ": row " + std::to_string(s) +
                            " moves to itself; a stay ends by leaving the stage");
  }
}

std::size_t draw(detail::splitmix64& rng, const double* row, std::size_t w) {
  double u = rng.uniform(), acc = 0.0;
  for (std::size_t j = 0; j < w; ++j) {
    acc += row[j];
    if (u < acc) return j;
  }
  for (std::size_t j = w; j-- > 0;)
    if (row[j] > 0.0) return j;
  return w - 1;
}
} // namespace

simulated_events simulate(const funnel& f, const simulation_spec& spec) {
  const std::size_t n = f.n_open(), w = n + 2;
  check_rows(spec.transition, n, "transition");
  for (const auto& t : spec.owner_transition) check_rows(t, n, "owner_transition");
  if (!spec.owner_transition.empty() && spec.owner_transition.size() != spec.owners.size())
    throw invalid_options("owner_transition must have one matrix per owner");
  if (spec.sojourn_mean_days.size() != n * w)
    throw invalid_options("sojourn_mean_days must have the shape of transition");
  if (spec.owners.empty()) throw invalid_options("at least one owner is required");
  if (spec.as_of <= spec.start) throw invalid_options("as_of must be after start");
  if (spec.entry_stage >= n) throw invalid_options("entry_stage must be an open stage");
  if (!(spec.sojourn_shape > 0.0)) throw invalid_options("sojourn_shape must be > 0");

  simulated_events out;
  out.stage_names.assign(f.names().begin(), f.names().end());
  out.owner_names = spec.owners;
  const auto won = static_cast<std::int32_t>(f.n_open());
  const auto lost = static_cast<std::int32_t>(f.n_open() + f.n_won());
  const double span = static_cast<double>(spec.as_of - spec.start);
  for (std::size_t i = 0; i < spec.n_opportunities; ++i) {
    detail::splitmix64 rng(detail::mix(spec.seed, i));
    auto owner = static_cast<std::int32_t>(rng.next() % spec.owners.size());
    const auto created = spec.start + static_cast<time_point>(rng.uniform() * span);
    double amount = std::round(spec.amount_median * std::exp(spec.amount_sigma * detail::normal(rng)));
    time_point close = created + 90 * 86400;
    time_point t = created;
    std::size_t s = spec.entry_stage;
    auto emit = [&](std::int32_t code) {
      out.opportunity.push_back(static_cast<std::int64_t>(i) + 1);
      out.stage.push_back(code);
      out.time.push_back(t);
      out.amount.push_back(amount);
      out.owner.push_back(owner);
      out.close_date.push_back(close);
      out.created.push_back(created);
    };
    emit(static_cast<std::int32_t>(s));
    for (int visits = 0; visits < 200; ++visits) {
      const auto& P = spec.owner_transition.empty() ? spec.transition
                                                    : spec.owner_transition[static_cast<std::size_t>(owner)];
      const std::size_t dest = draw(rng, &P[s * w], w);
      const double mean = spec.sojourn_mean_days[s * w + dest];
      const double days = detail::gamma(rng, spec.sojourn_shape) * mean / spec.sojourn_shape;
      t += static_cast<time_point>(std::llround(days * 86400.0));
      if (t > spec.as_of) break; // censored: the deal is still in stage s at as_of
      if (rng.uniform() < spec.amount_change_probability)
        amount = std::round(amount * std::exp(0.2 * detail::normal(rng)));
      if (spec.owners.size() > 1 && rng.uniform() < spec.reassign_probability)
        owner = static_cast<std::int32_t>(
            (static_cast<std::size_t>(owner) + 1 + rng.next() % (spec.owners.size() - 1)) %
            spec.owners.size());
      if (rng.uniform() < spec.close_push_probability) close += 30 * 86400;
      if (dest == n) {
        emit(won);
        break;
      }
      if (dest == n + 1) {
        emit(lost);
        break;
      }
      s = dest;
      emit(static_cast<std::int32_t>(s));
    }
  }
  return out;
}

} // namespace smartfunnel
