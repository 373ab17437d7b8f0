#include "smartfunnel/absorbing_chain.hpp"

#include "smartfunnel/error.hpp"

#include <Eigen/Dense>

#include <cmath>
#include <limits>

namespace smartfunnel {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Marks every stage from which `target` states are reachable through positive transitions.
std::vector<bool> reaches(std::size_t n, const std::vector<double>& p, std::vector<bool> target) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (std::size_t s = 0; s < n; ++s) {
      if (target[s]) continue;
      for (std::size_t j = 0; j < n; ++j)
        if (target[j] && p[s * (n + 2) + j] > 0.0) {
          target[s] = changed = true;
          break;
        }
    }
  }
  return target;
}
} // namespace

chain_result solve_chain(std::size_t n, const std::vector<double>& p, const std::vector<double>& sojourn,
                         const std::vector<std::string>& names) {
  const std::size_t w = n + 2;
  chain_result out;
  out.win.assign(n, nan);
  out.visits.assign(n, nan);
  out.ticks_to_close.assign(n, nan);
  out.ticks_to_win.assign(n, nan);

  // Stages without data, and every stage that can reach one, have undefined results.
  std::vector<bool> unknown(n, false);
  for (std::size_t s = 0; s < n; ++s) unknown[s] = std::isnan(p[s * w]);
  unknown = reaches(n, p, unknown);

  // Among the known stages, each must reach Won or Lost with positive probability.
  std::vector<bool> absorbs(n, false);
  for (std::size_t s = 0; s < n; ++s)
    absorbs[s] = !unknown[s] && (p[s * w + n] > 0.0 || p[s * w + n + 1] > 0.0);
  absorbs = reaches(n, p, absorbs);
  std::string trapped;
  for (std::size_t s = 0; s < n; ++s)
    if (!unknown[s] && !absorbs[s]) trapped += (trapped.empty() ? "'" : ", '") + names[s] + "'";
  if (!trapped.empty())
    throw singular_chain("absorbing chain is singular: stage(s) " + trapped +
                         " never reach Won or Lost, so I - Q cannot be inverted");

  std::vector<std::size_t> idx; // known stages, compacted
  std::vector<std::size_t> pos(n, SIZE_MAX);
  for (std::size_t s = 0; s < n; ++s)
    if (!unknown[s]) {
      pos[s] = idx.size();
      idx.push_back(s);
    }
  const auto m = static_cast<Eigen::Index>(idx.size());
  if (m == 0) return out;
  Eigen::MatrixXd A = Eigen::MatrixXd::Identity(m, m);
  Eigen::VectorXd r_win(m), step(m);
  for (Eigen::Index a = 0; a < m; ++a) {
    const auto s = idx[static_cast<std::size_t>(a)];
    double mean_ticks = 0.0;
    for (std::size_t j = 0; j < w; ++j) {
      const double q = p[s * w + j];
      if (q > 0.0) mean_ticks += q * sojourn[s * w + j];
      if (j < n && q != 0.0) A(a, static_cast<Eigen::Index>(pos[j])) -= q;
    }
    r_win(a) = p[s * w + n];
    step(a) = mean_ticks;
  }
  Eigen::PartialPivLU<Eigen::MatrixXd> lu(A);
  const Eigen::VectorXd win = lu.solve(r_win);
  const Eigen::VectorXd visits = lu.solve(Eigen::VectorXd::Ones(m));
  const Eigen::VectorXd ticks = lu.solve(step);

  // Conditioned on winning (Doob h-transform with h = win): p~_sj = p_sj h_j / h_s.
  std::vector<std::size_t> widx;
  std::vector<Eigen::Index> wpos(n, -1);
  for (Eigen::Index a = 0; a < m; ++a)
    if (win(a) > 0.0) {
      wpos[idx[static_cast<std::size_t>(a)]] = static_cast<Eigen::Index>(widx.size());
      widx.push_back(idx[static_cast<std::size_t>(a)]);
    }
  const auto mw = static_cast<Eigen::Index>(widx.size());
  Eigen::VectorXd given_win;
  if (mw > 0) {
    Eigen::MatrixXd Aw = Eigen::MatrixXd::Identity(mw, mw);
    Eigen::VectorXd stepw(mw);
    for (Eigen::Index a = 0; a < mw; ++a) {
      const auto s = widx[static_cast<std::size_t>(a)];
      const double hs = win(static_cast<Eigen::Index>(pos[s]));
      double mean_ticks = p[s * w + n] > 0.0 ? p[s * w + n] / hs * sojourn[s * w + n] : 0.0;
      for (std::size_t j = 0; j < n; ++j) {
        const double q = p[s * w + j];
        if (q <= 0.0 || wpos[j] < 0) continue;
        const double qt = q * win(static_cast<Eigen::Index>(pos[j])) / hs;
        Aw(a, wpos[j]) -= qt;
        mean_ticks += qt * sojourn[s * w + j];
      }
      stepw(a) = mean_ticks;
    }
    given_win = Aw.partialPivLu().solve(stepw);
  }
  for (Eigen::Index a = 0; a < m; ++a) {
    const auto s = idx[static_cast<std::size_t>(a)];
    out.win[s] = std::clamp(win(a), 0.0, 1.0);
    out.visits[s] = visits(a);
    out.ticks_to_close[s] = ticks(a);
    if (wpos[s] >= 0) out.ticks_to_win[s] = given_win(wpos[s]);
  }
  return out;
}

} // namespace smartfunnel
