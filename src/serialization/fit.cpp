// Archives of fit_statistics and funnel_model, and the shape loaded statistics must have.
#include "archive.hpp"

#include "smartfunnel/serialization/fit_statistics.hpp"
#include "smartfunnel/serialization/funnel_model.hpp"

#include <cmath>
#include <limits>

namespace smartfunnel::detail {

fit_statistics serialization_access::placeholder_statistics() {
  return fit_statistics{placeholder_funnel(), {}, {}, 0, 0};
}

funnel_model serialization_access::placeholder_model() { return funnel_model(placeholder_statistics()); }

namespace {
[[noreturn]] void invalid(const std::string& what) {
  throw_corrupt("corrupt archive: fit_statistics " + what);
}
} // namespace

void validate(const fit_statistics& s) {
  if (!s.options.as_of) invalid("has no as_of time");
  try {
    s.options.validate();
  } catch (const invalid_options& e) {
    invalid(std::string("options: ") + e.what());
  }
  if (s.cells.empty()) invalid("has no cells");
  const std::size_t n_open = s.funnel.n_open(), width = s.width(), levels = s.options.groups.size();
  // Raw counts are summed over groups and rows when a model is derived: keep every sum in range.
  constexpr std::int64_t max_total = std::int64_t{1} << 62;
  std::int64_t total = 0;
  for (const auto& [key, cells] : s.cells) {
    // A fit without stays has one empty key whatever its grouping.
    if (key.size() != levels && !(key.empty() && s.cells.size() == 1))
      invalid("group key with " + std::to_string(key.size()) + " values for " + std::to_string(levels) +
              " grouping levels");
    if (cells.size() != n_open)
      invalid(std::to_string(cells.size()) + " cells in a group for " + std::to_string(n_open) +
              " open stages");
    for (const auto& c : cells) {
      const std::size_t rows = c.duration.size();
      if (c.count.size() != rows * width || c.weight.size() != rows * width ||
          c.weight_sq.size() != rows * width)
        invalid("cell tables do not have " + std::to_string(rows) + " x " + std::to_string(width) +
                " entries");
      for (std::size_t r = 0; r < rows; ++r)
        if (c.duration[r] < 0 || (r > 0 && c.duration[r] <= c.duration[r - 1]))
          invalid("durations are negative or not strictly ascending");
      for (const auto n : c.count) {
        if (n < 0 || n > max_total - total) invalid("counts are negative or too large");
        total += n;
      }
      for (std::size_t i = 0; i < c.weight.size(); ++i)
        if (!(std::isfinite(c.weight[i]) && c.weight[i] >= 0.0 && std::isfinite(c.weight_sq[i]) &&
              c.weight_sq[i] >= 0.0))
          invalid("weights are negative or not finite");
    }
  }
}

funnel_model rebuild_model(fit_statistics&& stats) {
  try {
    return funnel_model::from_statistics(std::move(stats));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw_corrupt(std::string("corrupt archive: cannot rebuild the funnel_model from its statistics: ") +
                  e.what());
  }
}

namespace {
// The root of a funnel_model archive read without deriving the model: Boost identifies non-pointer
// objects by position, so this reads the funnel_model's class version and statistics.
struct model_statistics {
  fit_statistics stats;
};
} // namespace

} // namespace smartfunnel::detail

BOOST_CLASS_VERSION(smartfunnel::detail::model_statistics, 1)
BOOST_CLASS_TRACKING(smartfunnel::detail::model_statistics, boost::serialization::track_never)

namespace boost::serialization {
template <class Archive>
void serialize(Archive& ar, smartfunnel::detail::model_statistics& m, const unsigned int version) {
  smartfunnel::detail::check_class_version("funnel_model", version, 1);
  ar >> make_nvp("statistics", m.stats);
}
} // namespace boost::serialization

namespace smartfunnel {

fit_statistics detail::load_model_statistics_payload(archive_format format, std::string_view payload) {
  model_statistics m{serialization_access::placeholder_statistics()};
  read_payload(payload, format, m, "funnel_model", "funnel_model");
  return std::move(m.stats);
}

fit_statistics load_model_statistics(const std::filesystem::path& path) {
  const auto env = detail::read_envelope(path);
  detail::expect_type(env.info, archive_type::funnel_model);
  return detail::load_model_statistics_payload(env.info.format, env.payload());
}

} // namespace smartfunnel

SMARTFUNNEL_INSTANTIATE_SERIALIZATION(smartfunnel::fit_statistics);
SMARTFUNNEL_INSTANTIATE_SERIALIZATION(smartfunnel::funnel_model);
