#include "smartfunnel/activity_log.hpp"

#include "smartfunnel/detail/unparsed.hpp"
#include "smartfunnel/detail/visible.hpp"
#include "smartfunnel/error.hpp"

#include <algorithm>
#include <numeric>
#include <string_view>
#include <unordered_map>

namespace smartfunnel {

activity_log activity_log::from_columns(const event_log& log, const activity_columns& c,
                                        const ingest_options& options) {
  const std::size_t n = c.opportunity.size();
  auto length = [&](std::size_t got, const char* column, bool required) {
    if ((required || got != 0) && got != n)
      throw data_error(-1, column,
                       std::string("column '") + column + "' has " + std::to_string(got) +
                           " rows, expected " + std::to_string(n) + " like the opportunity column");
  };
  length(c.time.size(), "time", true);
  length(c.kind.size(), "kind", true);
  length(c.owner.size(), "owner", false);
  length(c.buyer.size(), "buyer", false);
  const bool names = !c.opportunity_names.empty();
  if (n > 0 && names != log.string_ids())
    throw data_error(-1, "opportunity",
                     std::string("activity opportunity ids must be ") +
                         (log.string_ids() ? "strings" : "integers") + " like the event log's");

  activity_log out;
  out.report_.rows_read = n;
  auto fail = [&](std::size_t r, const std::string& column, const std::string& reason) {
    if (options.mode == validation::strict)
      throw data_error(static_cast<std::int64_t>(r), column, "row " + std::to_string(r) + ": " + reason);
    out.report_.rejected.push_back({static_cast<std::int64_t>(r), column, reason});
  };
  // Dense index of the log's opportunities by id.
  std::unordered_map<std::int64_t, std::uint32_t> by_int;
  std::unordered_map<std::string_view, std::uint32_t> by_name;
  for (std::size_t o = 0; o < log.n_opportunities(); ++o) {
    if (names)
      by_name.emplace(log.string_id_values()[o], static_cast<std::uint32_t>(o));
    else
      by_int.emplace(log.int_ids()[o], static_cast<std::uint32_t>(o));
  }
  for (const auto& k : c.kind_names) out.kinds_.intern(k);
  for (const auto& w : c.owner_names) out.owner_names_.intern(w);

  std::vector<std::uint32_t> opp(n);
  std::vector<std::uint8_t> keep(n, 0);
  detail::unparsed_cursor unparsed(c.unparsed, n);
  for (std::size_t r = 0; r < n; ++r) {
    if (!unparsed.empty())
      if (const auto* u = unparsed.at(r)) {
        fail(r, u->column, u->reason);
        continue;
      }
    const auto id = c.opportunity[r];
    std::string label;
    std::int64_t dense = -1;
    if (names) {
      if (id >= 0 && static_cast<std::size_t>(id) < c.opportunity_names.size()) {
        label = c.opportunity_names[static_cast<std::size_t>(id)];
        if (auto it = by_name.find(label); it != by_name.end()) dense = it->second;
      } else {
        fail(r, "opportunity", "opportunity id is missing");
        continue;
      }
    } else {
      label = std::to_string(id);
      if (auto it = by_int.find(id); it != by_int.end()) dense = it->second;
    }
    if (dense < 0) {
      fail(r, "opportunity", "opportunity '" + label + "' is not in the event log");
      continue;
    }
    if (c.time[r] == missing_time) {
      fail(r, "time", "time is missing (opportunity '" + label + "')");
      continue;
    }
    if (c.kind[r] < 0 || static_cast<std::size_t>(c.kind[r]) >= c.kind_names.size()) {
      fail(r, "kind", "activity kind is missing (opportunity '" + label + "')");
      continue;
    }
    if (!c.owner.empty() && c.owner[r] != missing_code &&
        (c.owner[r] < 0 || static_cast<std::size_t>(c.owner[r]) >= c.owner_names.size())) {
      fail(r, "owner", "owner code " + std::to_string(c.owner[r]) + " is out of range");
      continue;
    }
    opp[r] = static_cast<std::uint32_t>(dense);
    keep[r] = 1;
  }
  // Counting sort by opportunity (the log's dense order), stable by time within one.
  const std::size_t n_opp = log.n_opportunities();
  out.offset_.assign(n_opp + 1, 0);
  for (std::size_t r = 0; r < n; ++r)
    if (keep[r]) ++out.offset_[opp[r] + 1];
  std::partial_sum(out.offset_.begin(), out.offset_.end(), out.offset_.begin());
  std::vector<std::uint64_t> order(out.offset_.back());
  {
    std::vector<std::uint64_t> fill(out.offset_.begin(), out.offset_.end() - 1);
    for (std::size_t r = 0; r < n; ++r)
      if (keep[r]) order[fill[opp[r]]++] = r;
  }
  const auto offsets = log.offsets();
  const auto times = log.times();
  const auto stages = log.stages();
  const std::size_t kept = order.size();
  out.time_.resize(kept);
  out.kind_.resize(kept);
  out.owner_.assign(kept, missing_code);
  out.buyer_.assign(kept, 0);
  out.stage_.resize(kept);
  for (std::size_t o = 0; o < n_opp; ++o) {
    auto b = order.begin() + static_cast<std::ptrdiff_t>(out.offset_[o]);
    auto e = order.begin() + static_cast<std::ptrdiff_t>(out.offset_[o + 1]);
    std::stable_sort(b, e, [&](std::uint64_t x, std::uint64_t y) { return c.time[x] < c.time[y]; });
    for (auto k = out.offset_[o]; k < out.offset_[o + 1]; ++k) {
      const auto r = order[k];
      out.time_[k] = c.time[r];
      out.kind_[k] = static_cast<std::uint32_t>(c.kind[r]);
      if (!c.owner.empty()) out.owner_[k] = c.owner[r];
      if (!c.buyer.empty()) out.buyer_[k] = c.buyer[r] != 0;
      // The stage in force at the activity: the last stage event at or before it.
      const auto end = detail::visible_end(times, offsets[o], offsets[o + 1], c.time[r]);
      out.stage_[k] = end == offsets[o] ? -1 : stages[end - 1];
    }
  }
  out.report_.rows_kept = kept;
  return out;
}

} // namespace smartfunnel
