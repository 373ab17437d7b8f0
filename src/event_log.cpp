#include "smartfunnel/event_log.hpp"

#include "smartfunnel/detail/flat_map.hpp"
#include "smartfunnel/detail/unparsed.hpp"
#include "smartfunnel/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <span>

namespace smartfunnel {

std::uint32_t dictionary::intern(std::string_view s) {
  if (auto it = index_.find(std::string(s)); it != index_.end()) return it->second;
  auto code = static_cast<std::uint32_t>(names_.size());
  names_.emplace_back(s);
  index_.emplace(names_.back(), code);
  return code;
}

std::optional<std::uint32_t> dictionary::find(std::string_view s) const {
  if (auto it = index_.find(std::string(s)); it != index_.end()) return it->second;
  return std::nullopt;
}

namespace {

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// A double as the shortest text that reads back as it (100, 0.1, 1e+20).
std::string number_text(double x) {
  char buf[32];
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

// Collects row problems: throws the first in strict mode, records them all in lenient mode.
// Rows below `existing` are a log's own events being rebuilt by append(); the caller's rows are
// numbered from 0 after them, and existing events are reported with negative rows (-1 the last).
class row_checker {
public:
  row_checker(validation mode, data_quality_report& report, std::int64_t existing)
      : mode_(mode), report_(report), existing_(existing) {}

  /// "row 3", or "existing event 2" for a log's own event during append().
  [[nodiscard]] std::string label(std::int64_t row) const {
    return row < existing_ ? "existing event " + std::to_string(row)
                           : "row " + std::to_string(row - existing_);
  }
  /// The row as the caller numbers it (negative for existing events).
  [[nodiscard]] std::int64_t number(std::int64_t row) const { return row - existing_; }

  template <class Error = data_error>
  void fail(std::int64_t row, const std::string& column, const std::string& reason) {
    if (mode_ == validation::strict) throw Error(number(row), column, label(row) + ": " + reason);
    report_.rejected.push_back({number(row), column, reason});
  }

private:
  validation mode_;
  data_quality_report& report_;
  std::int64_t existing_;
};

// Optional columns: empty (not given) or one entry per row.
void check_length(std::size_t n, std::size_t got, const char* column, bool required = false) {
  if ((required || got != 0) && got != n)
    throw data_error(-1, column,
                     std::string("column '") + column + "' has " + std::to_string(got) + " rows, expected " +
                         std::to_string(n) + " like the opportunity column");
}

// Every column of `c` has the length of its opportunity column (stage, time and the attributes
// listed are required; an empty one is not "not given").
void check_lengths(const event_columns& c) {
  const std::size_t n = c.opportunity.size();
  check_length(n, c.stage.size(), "stage", true);
  check_length(n, c.time.size(), "time", true);
  check_length(n, c.amount.size(), "amount");
  check_length(n, c.owner.size(), "owner");
  check_length(n, c.amount_given.size(), "amount_given");
  check_length(n, c.owner_given.size(), "owner_given");
  check_length(n, c.close_date.size(), "close_date");
  check_length(n, c.created.size(), "created");
  for (const auto& a : c.attributes) check_length(n, a.code.size(), a.name.c_str(), true);
  const auto& ch = c.changes;
  const std::size_t m = ch.opportunity.size();
  check_length(m, ch.time.size(), "changes.time", true);
  check_length(m, ch.amount.size(), "changes.amount");
  check_length(m, ch.amount_given.size(), "changes.amount_given");
  check_length(m, ch.owner.size(), "changes.owner");
  check_length(m, ch.owner_given.size(), "changes.owner_given");
  check_length(m, ch.close_date.size(), "changes.close_date");
}

bool in_time_range(time_point t) noexcept { return t >= min_time && t <= max_time; }

std::string time_range_error(time_point t) {
  return "time " + std::to_string(t) + " is outside the supported range [" + std::to_string(min_time) + ", " +
         std::to_string(max_time) + "] (years 1 to 9999)";
}

// A field change from the changes table, before merging into a history.
template <class T>
struct pending_change {
  std::uint32_t opp;
  time_point time;
  std::size_t row;
  T value;
};

// Merges change-table values into a history that holds every event's given value (uncompressed),
// then keeps only changes. At equal times event values come first, so a change row wins.
template <class T>
void merge_changes(field_history<T>& h, std::size_t n_opp, std::vector<pending_change<T>>& add) {
  if (h.offset.empty()) return;
  std::stable_sort(add.begin(), add.end(), [](const pending_change<T>& a, const pending_change<T>& b) {
    return a.opp != b.opp ? a.opp < b.opp : a.time < b.time;
  });
  field_history<T> out;
  out.offset.assign(n_opp + 1, 0);
  out.time.reserve(h.time.size() + add.size());
  out.value.reserve(h.time.size() + add.size());
  std::size_t j = 0;
  for (std::size_t o = 0; o < n_opp; ++o) {
    auto i = h.offset[o];
    const auto end = h.offset[o + 1];
    const auto first = out.value.size();
    auto push = [&](time_point t, const T& v) {
      if (out.value.size() == first || out.value.back() != v) {
        out.time.push_back(t);
        out.value.push_back(v);
      }
    };
    while (i < end || (j < add.size() && add[j].opp == o)) {
      const bool from_events = j >= add.size() || add[j].opp != o || (i < end && h.time[i] <= add[j].time);
      if (from_events) {
        push(h.time[i], h.value[i]);
        ++i;
      } else {
        push(add[j].time, add[j].value);
        ++j;
      }
    }
    out.offset[o + 1] = out.value.size();
  }
  h = std::move(out);
}

// Hints the cache to fetch a line about to be written (no effect on results).
inline void prefetch_write(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 1);
#else
  (void)p;
#endif
}

// Hints the cache to fetch a line about to be read (no effect on results).
inline void prefetch_read(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0);
#else
  (void)p;
#endif
}

// Dense indices of integer opportunity ids in order of first appearance. Ids spanning a range no
// wider than twice the row count (auto-increment keys, the usual case) use a direct table of 4
// bytes per value of the range (at most 8 per row, less than the hash table) and one small
// lookup per row; other ids use an open-addressing hash table. Either way the ids are listed by
// dense index.
class int_id_index {
public:
  explicit int_id_index(std::span<const std::int64_t> ids) {
    if (ids.empty()) return;
    std::int64_t lo = ids[0], hi = ids[0];
    for (const auto id : ids) {
      lo = std::min(lo, id);
      hi = std::max(hi, id);
    }
    const auto span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    if (span < 2 * static_cast<std::uint64_t>(ids.size()) + 4096) {
      base_ = lo;
      table_.assign(span + 1, none);
      ids_.reserve(std::min<std::uint64_t>(ids.size(), span + 1));
    } else {
      hash_ = detail::flat_int_map(ids.size() / 4);
      hashed_ = true;
    }
  }
  [[nodiscard]] bool hashed() const noexcept { return hashed_; }
  /// Hints the cache to fetch the entry of `id` (call the one matching hashed(): GCC 12 drops
  /// both prefetches of a function choosing between them).
  void prefetch_hashed(std::int64_t id) const noexcept { hash_.prefetch(id); }
  void prefetch_direct(std::int64_t id) const noexcept {
    prefetch_write(table_.data() + (static_cast<std::uint64_t>(id) - static_cast<std::uint64_t>(base_)));
  }
  /// The dense index of `id`, assigning the next one when it is new.
  std::uint32_t intern(std::int64_t id) {
    if (!hashed_) {
      auto& slot = table_[static_cast<std::uint64_t>(id) - static_cast<std::uint64_t>(base_)];
      if (slot == none) {
        slot = static_cast<std::uint32_t>(ids_.size());
        ids_.push_back(id);
      }
      return slot;
    }
    if (id == last_id_ && !ids_.empty()) return last_dense_; // rows of one id often come together
    auto [dense, inserted] = hash_.try_emplace(id, static_cast<std::uint32_t>(ids_.size()));
    if (inserted) ids_.push_back(id);
    last_id_ = id;
    last_dense_ = dense;
    return dense;
  }
  [[nodiscard]] std::size_t size() const noexcept { return ids_.size(); }
  /// The ids by dense index (moved out, without spare capacity).
  std::vector<std::int64_t> take_ids() {
    ids_.shrink_to_fit();
    return std::move(ids_);
  }

private:
  static constexpr std::uint32_t none = 0xffffffffu;
  std::int64_t base_ = 0;
  std::vector<std::uint32_t> table_;
  detail::flat_int_map hash_{0};
  bool hashed_ = false;
  std::int64_t last_id_ = 0;
  std::uint32_t last_dense_ = 0;
  std::vector<std::int64_t> ids_;
};

// Sorts a short range stably by `less` (insertion sort: no allocation; an opportunity's rows are
// few), a long one with std::stable_sort.
template <class It, class Less>
void stable_sort_small(It b, It e, Less less) {
  if (e - b > 32) {
    if (!std::is_sorted(b, e, less)) std::stable_sort(b, e, less);
    return;
  }
  for (auto i = b; i != e; ++i) {
    auto x = *i;
    auto j = i;
    for (; j > b && less(x, *(j - 1)); --j) *j = *(j - 1);
    *j = x;
  }
}

} // namespace

event_log event_log::from_columns(const smartfunnel::funnel& f, const event_columns& c,
                                  const ingest_options& options) {
  return ingest(f, c, options, 0, 0);
}

event_log event_log::ingest(const smartfunnel::funnel& f, const event_columns& c,
                            const ingest_options& options, std::int64_t existing,
                            std::int64_t existing_changes) {
  const std::size_t n = c.opportunity.size();
  check_lengths(c);

  event_log log(f);
  log.report_.rows_read = n;
  row_checker check(options.mode, log.report_, existing);
  const bool names = !c.opportunity_names.empty();
  log.string_ids_ = names;

  // Map the input's stage dictionary onto funnel codes once.
  std::vector<std::int32_t> stage_map(c.stage_names.size(), -1);
  for (std::size_t i = 0; i < c.stage_names.size(); ++i)
    if (auto code = f.find(c.stage_names[i])) stage_map[i] = *code;

  // A field is given at a row unless its column is empty or its mask says "not given here".
  auto amount_given = [&](std::size_t r) {
    return !c.amount.empty() && (c.amount_given.empty() || c.amount_given[r] != 0);
  };
  auto owner_given = [&](std::size_t r) {
    return !c.owner.empty() && (c.owner_given.empty() || c.owner_given[r] != 0);
  };

  auto id_text = [&](std::size_t row) -> std::string {
    if (!names) return std::to_string(c.opportunity[row]);
    auto code = c.opportunity[row];
    if (code < 0 || static_cast<std::size_t>(code) >= c.opportunity_names.size()) return "<missing>";
    return c.opportunity_names[static_cast<std::size_t>(code)];
  };

  // Pass 1: per-row checks and interning of opportunities (dense ids in order of appearance).
  std::vector<std::uint32_t> opp(n);
  std::vector<std::uint8_t> keep(n, 1);
  int_id_index int_index(names ? std::span<const std::int64_t>{} : c.opportunity);
  std::vector<std::int64_t> name_index(names ? c.opportunity_names.size() : 0, -1);
  // A name listed more than once is one opportunity: every code maps to its name's first code.
  std::vector<std::size_t> name_first(name_index.size());
  if (names) {
    std::unordered_map<std::string_view, std::size_t> first;
    first.reserve(name_first.size());
    for (std::size_t i = 0; i < name_first.size(); ++i)
      name_first[i] = first.try_emplace(c.opportunity_names[i], i).first->second;
  }
  std::uint32_t n_opp = 0;
  constexpr std::size_t prefetch_distance = 16;
  detail::unparsed_cursor unparsed(c.unparsed, n);
  for (std::size_t r = 0; r < n; ++r) {
    const auto row = static_cast<std::int64_t>(r);
    bool ok = true;
    auto bad = [&](const std::string& column, const std::string& why, bool stage_error = false) {
      if (ok) {
        if (stage_error)
          check.fail<unknown_stage>(row, column, why);
        else
          check.fail(row, column, why);
      }
      ok = false;
    };
    if (!unparsed.empty())
      if (const auto* u = unparsed.at(r)) bad(u->column, u->reason);
    const auto oc = c.opportunity[r];
    if (names && (oc < 0 || static_cast<std::size_t>(oc) >= c.opportunity_names.size()))
      bad("opportunity", "opportunity id is missing");
    const auto sc = c.stage[r];
    if (ok && (sc < 0 || static_cast<std::size_t>(sc) >= stage_map.size()))
      bad("stage", "stage is missing (opportunity " + quote(id_text(r)) + ")");
    else if (ok && stage_map[static_cast<std::size_t>(sc)] < 0)
      bad("stage",
          "stage " + quote(c.stage_names[static_cast<std::size_t>(sc)]) + " is not in funnel " +
              quote(f.name()) + " (opportunity " + quote(id_text(r)) + ")",
          true);
    if (ok && c.time[r] == missing_time)
      bad("time", "time is missing (opportunity " + quote(id_text(r)) + ")");
    else if (ok && !in_time_range(c.time[r]))
      bad("time", time_range_error(c.time[r]) + " (opportunity " + quote(id_text(r)) + ")");
    if (ok && !c.close_date.empty() && c.close_date[r] != missing_time && !in_time_range(c.close_date[r]))
      bad("close_date",
          "close date: " + time_range_error(c.close_date[r]) + " (opportunity " + quote(id_text(r)) + ")");
    if (ok && !c.created.empty() && c.created[r] != missing_time && !in_time_range(c.created[r]))
      bad("created",
          "created time: " + time_range_error(c.created[r]) + " (opportunity " + quote(id_text(r)) + ")");
    if (ok && amount_given(r) && !(std::isfinite(c.amount[r]) && c.amount[r] >= 0.0))
      bad("amount", (std::isnan(c.amount[r])
                         ? std::string("amount is missing (NaN)")
                         : "amount must be a finite number >= 0, got " + std::to_string(c.amount[r])) +
                        " (opportunity " + quote(id_text(r)) + ")");
    if (ok && owner_given(r) &&
        (c.owner[r] < 0 || static_cast<std::size_t>(c.owner[r]) >= c.owner_names.size()))
      bad("owner", "owner is missing (opportunity " + quote(id_text(r)) + ")");
    for (const auto& a : c.attributes)
      if (ok && a.code[r] != missing_code &&
          (a.code[r] < 0 || static_cast<std::size_t>(a.code[r]) >= a.names.size()))
        bad(a.name.c_str(), "attribute code " + std::to_string(a.code[r]) + " is out of range");
    if (!ok) {
      keep[r] = 0;
      continue;
    }
    if (names) {
      auto& slot = name_index[name_first[static_cast<std::size_t>(oc)]];
      if (slot < 0) slot = n_opp++;
      opp[r] = static_cast<std::uint32_t>(slot);
    }
  }
  if (!names) {
    // Integer ids are interned in a loop of their own: short, so many prefetched lookups are in
    // flight at once.
    auto intern_rows = [&](auto prefetch) {
      for (std::size_t r = 0; r < n; ++r) {
        if (r + prefetch_distance < n) prefetch(c.opportunity[r + prefetch_distance]);
        if (keep[r]) opp[r] = int_index.intern(c.opportunity[r]);
      }
    };
    if (int_index.hashed())
      intern_rows([&](std::int64_t id) { int_index.prefetch_hashed(id); });
    else
      intern_rows([&](std::int64_t id) { int_index.prefetch_direct(id); });
    n_opp = static_cast<std::uint32_t>(int_index.size());
  }

  // Opportunity ids by dense index.
  if (names) {
    log.str_ids_.resize(n_opp);
    for (std::size_t i = 0; i < name_index.size(); ++i)
      if (name_index[i] >= 0) log.str_ids_[static_cast<std::size_t>(name_index[i])] = c.opportunity_names[i];
  } else {
    log.int_ids_ = int_index.take_ids();
  }

  // Static per-opportunity values: created time and attributes, constant per opportunity.
  log.created_.assign(n_opp, missing_time);
  std::vector<std::int64_t> created_row(c.created.empty() ? 0 : n_opp, -1);
  log.attributes_.resize(c.attributes.size());
  std::vector<std::vector<std::int64_t>> attr_row(c.attributes.size());
  // Input codes -> codes into the attribute's dictionary (a name listed twice is one value).
  std::vector<std::vector<std::int32_t>> attr_map(c.attributes.size());
  for (std::size_t a = 0; a < c.attributes.size(); ++a) {
    log.attributes_[a].name = c.attributes[a].name;
    for (const auto& v : c.attributes[a].names)
      attr_map[a].push_back(static_cast<std::int32_t>(log.attributes_[a].values.intern(v)));
    log.attributes_[a].code.assign(n_opp, missing_code);
    attr_row[a].assign(n_opp, -1);
  }
  const bool any_static = !c.created.empty() || !c.attributes.empty();
  for (std::size_t r = 0; any_static && r < n; ++r) {
    if (!keep[r]) continue;
    const auto row = static_cast<std::int64_t>(r);
    const auto o = opp[r];
    if (!c.created.empty() && c.created[r] != missing_time) {
      if (created_row[o] < 0) {
        log.created_[o] = c.created[r];
        created_row[o] = row;
      } else if (log.created_[o] != c.created[r]) {
        check.fail(row, "created",
                   "created time " + std::to_string(c.created[r]) + " of opportunity " + quote(id_text(r)) +
                       " conflicts with " + std::to_string(log.created_[o]) + " given at " +
                       check.label(created_row[o]));
        keep[r] = 0;
        continue;
      }
    }
    for (std::size_t a = 0; a < c.attributes.size(); ++a) {
      if (c.attributes[a].code[r] == missing_code) continue;
      const auto code = attr_map[a][static_cast<std::size_t>(c.attributes[a].code[r])];
      auto& slot = log.attributes_[a].code[o];
      if (attr_row[a][o] < 0) {
        slot = code;
        attr_row[a][o] = row;
      } else if (slot != code) {
        check.fail(row, c.attributes[a].name,
                   "attribute " + quote(c.attributes[a].name) + " of opportunity " + quote(id_text(r)) +
                       " is " + quote(log.attributes_[a].values[static_cast<std::uint32_t>(code)]) +
                       " but was " + quote(log.attributes_[a].values[static_cast<std::uint32_t>(slot)]) +
                       " at " + check.label(attr_row[a][o]) + "; attributes are constant per opportunity");
        keep[r] = 0;
        break;
      }
    }
  }

  // Pass 2: order rows by (opportunity, time, input row): a counting sort by opportunity that
  // scatters compact records (time, row, stage); pass 3 then sorts each opportunity's records by
  // time (stably, usually few and often sorted already) just before reading them. Later passes read
  // the records sequentially instead of gathering the caller's columns in random order. The
  // random accesses (counts, scatter) are prefetched a few rows ahead.
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw data_error(-1, "opportunity", "at most 4294967295 rows per call, got " + std::to_string(n));
  struct record {
    time_point time;
    std::uint32_t row;
    stage_code code;
  };
  std::vector<std::pair<std::int64_t, std::uint32_t>> sorted_ids; // for the changes table
  // Counts go to start[o + 2], so that after the prefix sum start[o + 1] is where opportunity o
  // begins: the scatter advances it as its cursor, leaving it where o ends (and o + 1 begins).
  std::vector<std::uint32_t> start(static_cast<std::size_t>(n_opp) + 2, 0);
  for (std::size_t r = 0; r < n; ++r) {
    if (r + prefetch_distance < n) prefetch_write(start.data() + opp[r + prefetch_distance] + 2);
    if (keep[r]) ++start[opp[r] + 2];
  }
  std::partial_sum(start.begin(), start.end(), start.begin());
  const std::size_t n_kept = start.back();
  // Every record is written by the scatter below: no zero-filling first.
  const std::unique_ptr<record[]> order(new record[n_kept]);
  for (std::size_t r = 0; r < n; ++r) {
    if (r + 2 * prefetch_distance < n) prefetch_write(start.data() + opp[r + 2 * prefetch_distance] + 1);
    if (const auto ahead = r + prefetch_distance; ahead < n && keep[ahead])
      prefetch_write(order.get() + start[opp[ahead] + 1]);
    if (keep[r])
      order[start[opp[r] + 1]++] = {c.time[r], static_cast<std::uint32_t>(r),
                                    static_cast<stage_code>(stage_map[static_cast<std::size_t>(c.stage[r])])};
  }
  start.pop_back(); // start[o], start[o + 1]: opportunity o's records
  const auto by_time = [](const record& x, const record& y) { return x.time < y.time; };

  // Pass 3: per opportunity, collapse duplicates, apply the after-terminal rule, build columns and
  // field histories (changes only).
  log.offset_.assign(static_cast<std::size_t>(n_opp) + 1, 0);
  log.time_.reserve(n_kept);
  log.stage_.reserve(n_kept);
  const bool has_amount = !c.amount.empty(), has_owner = !c.owner.empty(), has_close = !c.close_date.empty();
  std::vector<std::uint32_t> owner_map;
  if (has_owner) {
    owner_map.resize(c.owner_names.size());
    for (std::size_t i = 0; i < c.owner_names.size(); ++i)
      owner_map[i] = log.owner_names_.intern(c.owner_names[i]);
    log.owner_.offset.assign(static_cast<std::size_t>(n_opp) + 1, 0);
  }
  if (has_amount || !c.changes.amount.empty())
    log.amount_.offset.assign(static_cast<std::size_t>(n_opp) + 1, 0);
  if (has_close || !c.changes.close_date.empty())
    log.close_.offset.assign(static_cast<std::size_t>(n_opp) + 1, 0);
  if (!has_owner && !c.changes.owner.empty())
    log.owner_.offset.assign(static_cast<std::size_t>(n_opp) + 1, 0);

  // Rows with the same opportunity, stage and time are one stage entry: the fields they give
  // must agree. The first field in which row x differs from row y ("amount", "owner",
  // "close_date"), with the two values as text; empty when they agree.
  struct field_conflict {
    const char* column = nullptr;
    std::string x, y;
  };
  auto conflict_of = [&](std::size_t x, std::size_t y) -> field_conflict {
    if (amount_given(x) != amount_given(y) || (amount_given(x) && c.amount[x] != c.amount[y]))
      return {"amount", amount_given(x) ? number_text(c.amount[x]) : "none",
              amount_given(y) ? number_text(c.amount[y]) : "none"};
    auto owner_text = [&](std::size_t r) {
      return owner_given(r) ? quote(c.owner_names[static_cast<std::size_t>(c.owner[r])])
                            : std::string("none");
    };
    if (owner_given(x) != owner_given(y) ||
        (owner_given(x) && c.owner_names[static_cast<std::size_t>(c.owner[x])] !=
                               c.owner_names[static_cast<std::size_t>(c.owner[y])]))
      return {"owner", owner_text(x), owner_text(y)};
    auto close_text = [&](std::size_t r) {
      return c.close_date[r] == missing_time ? std::string("none") : std::to_string(c.close_date[r]);
    };
    if (has_close && c.close_date[x] != c.close_date[y]) return {"close_date", close_text(x), close_text(y)};
    return {};
  };

  // With a changes table, record every given value here and compress after merging the changes
  // (an event repeating a value that a change between them altered is itself a change).
  const bool keep_all = !c.changes.empty();
  // Rows of one opportunity at one time (contiguous after the sort, in input order): per stage,
  // the first record (where the stage entry goes) and the last (whose row it keeps). Scratch
  // space per stage code, reset after each group; groups of one record skip it.
  const std::size_t n_codes = f.n_codes();
  std::vector<std::int64_t> first_of(n_codes, -1), last_of(n_codes, -1);
  std::vector<std::uint32_t> group_winner; // per record of the group: the row it yields to
  std::vector<std::uint8_t> group_first;   // per record of the group: the first of its stage
  std::size_t group_begin = 0, group_end = 0;
  const bool gather = has_amount || has_owner || has_close;
  for (std::uint32_t o = 0; o < n_opp; ++o) {
    std::int64_t terminal_row = -1;
    stage_code terminal = 0;
    stable_sort_small(&order[start[o]], &order[start[o + 1]], by_time);
    group_begin = group_end = start[o];
    for (auto k = start[o]; k < start[o + 1]; ++k) {
      // The fields are read at each record's input row, in random order: fetch them a few
      // records ahead (the next opportunity's records are not sorted yet, but they are its rows).
      if (gather && k + prefetch_distance < n_kept) {
        const auto ahead = order[k + prefetch_distance].row;
        if (has_amount) prefetch_read(c.amount.data() + ahead);
        if (has_owner) prefetch_read(c.owner.data() + ahead);
        if (has_close) prefetch_read(c.close_date.data() + ahead);
      }
      const auto [t, r32, code] = order[k];
      std::size_t r = r32;
      if (log.created_[o] != missing_time && t < log.created_[o]) {
        check.fail(static_cast<std::int64_t>(r), "time",
                   "event time " + std::to_string(c.time[r]) + " of opportunity " + quote(id_text(r)) +
                       " is before its created time " + std::to_string(log.created_[o]));
        continue;
      }
      if (k >= group_end) {
        group_begin = k;
        group_end = k + 1;
        while (group_end < start[o + 1] && order[group_end].time == t) ++group_end;
        if (group_end - group_begin > 1) {
          group_winner.resize(group_end - group_begin);
          group_first.resize(group_end - group_begin);
          for (auto j = group_begin; j < group_end; ++j) {
            const auto sc = static_cast<std::size_t>(order[j].code);
            if (first_of[sc] < 0) first_of[sc] = static_cast<std::int64_t>(j);
            last_of[sc] = static_cast<std::int64_t>(j);
          }
          for (auto j = group_begin; j < group_end; ++j) {
            const auto sc = static_cast<std::size_t>(order[j].code);
            group_winner[j - group_begin] = order[static_cast<std::size_t>(last_of[sc])].row;
            group_first[j - group_begin] = first_of[sc] == static_cast<std::int64_t>(j);
          }
          for (auto j = group_begin; j < group_end; ++j) {
            const auto sc = static_cast<std::size_t>(order[j].code);
            first_of[sc] = last_of[sc] = -1;
          }
        }
      }
      if (group_end - group_begin > 1) {
        const std::size_t winner = group_winner[k - group_begin];
        const bool first = group_first[k - group_begin] != 0;
        if (r != winner) {
          // An earlier row of this stage entry: identical to the kept (last) row, or a conflict.
          const auto diff = conflict_of(r, winner);
          if (diff.column == nullptr) {
            ++log.report_.duplicates_collapsed;
            ++log.report_.rows_kept;
          } else {
            const auto row = static_cast<std::int64_t>(r), later = static_cast<std::int64_t>(winner);
            const std::string what = "opportunity " + quote(id_text(r)) + " has stage " +
                                     quote(f.name_of(code)) + " at time " + std::to_string(t) + " in " +
                                     check.label(row) + " and " + check.label(later) + " with different " +
                                     diff.column + " (" + diff.x + " and " + diff.y + ")";
            if (options.mode == validation::strict)
              check.fail(row, diff.column,
                         what + ": one stage entry has one value (validation=lenient keeps the later row)");
            else
              check.fail(row, diff.column, what + "; the later row is kept");
          }
        }
        if (!first) continue;
        r = winner; // the stage entry, with the last row's fields, at the place of the first
      }
      const auto row = static_cast<std::int64_t>(r);
      if (terminal_row >= 0 && code != terminal) {
        if (options.on_after_terminal == after_terminal::error) {
          check.fail(row, "stage",
                     "opportunity " + quote(id_text(r)) + " has stage " + quote(f.name_of(code)) +
                         " after its terminal stage " + quote(f.name_of(terminal)) + " at " +
                         check.label(terminal_row) +
                         " (pass after_terminal=reopen to accept reopened deals)");
          continue;
        }
        ++log.report_.reopened;
        terminal_row = -1;
      }
      if (f.is_terminal(code) && terminal_row < 0) {
        terminal_row = row;
        terminal = code;
      }
      ++log.report_.rows_kept;
      log.time_.push_back(t);
      log.stage_.push_back(code);
      if (amount_given(r) && (keep_all || log.amount_.value.size() == log.amount_.offset[o] ||
                              log.amount_.value.back() != c.amount[r])) {
        log.amount_.time.push_back(t);
        log.amount_.value.push_back(c.amount[r]);
      }
      if (owner_given(r)) {
        const auto w = owner_map[static_cast<std::size_t>(c.owner[r])];
        if (keep_all || log.owner_.value.size() == log.owner_.offset[o] || log.owner_.value.back() != w) {
          log.owner_.time.push_back(t);
          log.owner_.value.push_back(w);
        }
      }
      if (has_close && c.close_date[r] != missing_time &&
          (keep_all || log.close_.value.size() == log.close_.offset[o] ||
           log.close_.value.back() != c.close_date[r])) {
        log.close_.time.push_back(t);
        log.close_.value.push_back(c.close_date[r]);
      }
    }
    log.offset_[o + 1] = log.time_.size();
    if (!log.amount_.offset.empty()) log.amount_.offset[o + 1] = log.amount_.value.size();
    if (!log.owner_.offset.empty()) log.owner_.offset[o + 1] = log.owner_.value.size();
    if (!log.close_.offset.empty()) log.close_.offset[o + 1] = log.close_.value.size();
  }

  if (keep_all) {
    // Dense index of an opportunity id of the changes table (-1: not in the log).
    std::unordered_map<std::string_view, std::uint32_t> by_name;
    if (names)
      for (std::uint32_t o = 0; o < n_opp; ++o) by_name.emplace(log.str_ids_[o], o);
    const auto& ch = c.changes;
    auto dense_of = [&](std::int64_t id) -> std::int64_t {
      if (!names) {
        auto it = std::lower_bound(sorted_ids.begin(), sorted_ids.end(), std::pair{id, std::uint32_t{0}});
        return (it != sorted_ids.end() && it->first == id) ? static_cast<std::int64_t>(it->second) : -1;
      }
      if (id < 0 || static_cast<std::size_t>(id) >= ch.opportunity_names.size()) return -1;
      auto it = by_name.find(ch.opportunity_names[static_cast<std::size_t>(id)]);
      return it == by_name.end() ? -1 : static_cast<std::int64_t>(it->second);
    };
    if (!names) {
      sorted_ids.reserve(n_opp);
      for (std::uint32_t o = 0; o < n_opp; ++o) sorted_ids.emplace_back(log.int_ids_[o], o);
      std::sort(sorted_ids.begin(), sorted_ids.end());
    }
    std::vector<pending_change<double>> amounts;
    std::vector<pending_change<std::uint32_t>> owners;
    std::vector<pending_change<time_point>> closes;
    for (std::size_t r = 0; r < ch.opportunity.size(); ++r) {
      // Rows below existing_changes are a log's own history being rebuilt by append().
      const auto row = static_cast<std::int64_t>(r) - existing_changes;
      auto fail = [&](const std::string& column, const std::string& reason) {
        const std::string where =
            row < 0 ? "existing change " + std::to_string(r) : "changes row " + std::to_string(row);
        if (options.mode == validation::strict)
          throw data_error(row, "changes." + column, where + ": " + reason);
        log.report_.rejected.push_back({row, "changes." + column, reason});
      };
      const auto o = dense_of(ch.opportunity[r]);
      const std::string who = names ? (ch.opportunity[r] >= 0 && static_cast<std::size_t>(ch.opportunity[r]) <
                                                                     ch.opportunity_names.size()
                                           ? ch.opportunity_names[static_cast<std::size_t>(ch.opportunity[r])]
                                           : std::string("<missing>"))
                                    : std::to_string(ch.opportunity[r]);
      if (o < 0) {
        fail("opportunity", "opportunity " + quote(who) + " has no stage events in the log");
        continue;
      }
      if (ch.time[r] == missing_time) {
        fail("time", "time is missing (opportunity " + quote(who) + ")");
        continue;
      }
      if (!in_time_range(ch.time[r])) {
        fail("time", time_range_error(ch.time[r]) + " (opportunity " + quote(who) + ")");
        continue;
      }
      if (!ch.close_date.empty() && ch.close_date[r] != missing_time && !in_time_range(ch.close_date[r])) {
        fail("close_date",
             "close date: " + time_range_error(ch.close_date[r]) + " (opportunity " + quote(who) + ")");
        continue;
      }
      const bool a_given = !ch.amount.empty() && (ch.amount_given.empty() || ch.amount_given[r] != 0);
      const bool w_given = !ch.owner.empty() && (ch.owner_given.empty() || ch.owner_given[r] != 0);
      if (a_given && !(std::isfinite(ch.amount[r]) && ch.amount[r] >= 0.0)) {
        fail("amount", "amount must be a finite number >= 0, got " + std::to_string(ch.amount[r]) +
                           " (opportunity " + quote(who) + ")");
        continue;
      }
      if (w_given && (ch.owner[r] < 0 || static_cast<std::size_t>(ch.owner[r]) >= ch.owner_names.size())) {
        fail("owner", "owner code " + std::to_string(ch.owner[r]) + " is out of range (opportunity " +
                          quote(who) + ")");
        continue;
      }
      const auto opp_i = static_cast<std::uint32_t>(o);
      if (a_given) amounts.push_back({opp_i, ch.time[r], r, ch.amount[r]});
      if (w_given)
        owners.push_back({opp_i, ch.time[r], r,
                          log.owner_names_.intern(ch.owner_names[static_cast<std::size_t>(ch.owner[r])])});
      if (!ch.close_date.empty() && ch.close_date[r] != missing_time)
        closes.push_back({opp_i, ch.time[r], r, ch.close_date[r]});
    }
    merge_changes(log.amount_, n_opp, amounts);
    merge_changes(log.owner_, n_opp, owners);
    merge_changes(log.close_, n_opp, closes);
  }

  // Every interned opportunity keeps at least one event: rows are only rejected in pass 3 when an
  // earlier row of the same opportunity was kept, or when created/time conflict (then the
  // opportunity may be empty). Empty opportunities keep their id and have no stays.
  for (std::uint32_t o = 0; o < n_opp; ++o)
    if (log.created_[o] == missing_time && log.offset_[o + 1] > log.offset_[o])
      log.created_[o] = log.time_[log.offset_[o]];
  if (!log.time_.empty()) {
    auto [lo, hi] = std::minmax_element(log.time_.begin(), log.time_.end());
    log.first_time_ = *lo;
    log.last_time_ = *hi;
  }
  std::sort(log.report_.rejected.begin(), log.report_.rejected.end(),
            [](const rejected_row& a, const rejected_row& b) { return a.row < b.row; });
  return log;
}

event_log event_log::append(const event_columns& more, const ingest_options& options) const {
  // Rebuild from this log's events (with field values in force at each event) followed by the new
  // rows; ingestion sorts and validates the union, so the result equals a log built in one go.
  const std::size_t n0 = n_events(), n1 = more.opportunity.size(), n = n0 + n1;
  check_lengths(more); // before any row of `more` is read
  std::vector<std::string> opp_names;
  std::vector<std::int64_t> opp(n);
  std::vector<std::int32_t> stage(n);
  std::vector<time_point> time(n), close(n, missing_time), created(n, missing_time);
  std::vector<double> amount;
  std::vector<std::int32_t> owner;
  std::vector<std::string> stage_names(funnel_.names().begin(), funnel_.names().end());
  const bool any_amount = has_amounts() || !more.amount.empty() || !more.changes.amount.empty();
  const bool any_owner = has_owners() || !more.owner.empty() || !more.changes.owner.empty();
  const bool any_close = !close_.empty() || !more.close_date.empty() || !more.changes.close_date.empty();
  std::vector<std::uint8_t> amount_given, owner_given;
  if (any_amount) {
    amount.assign(n, std::numeric_limits<double>::quiet_NaN());
    amount_given.assign(n, 0);
  }
  if (any_owner) {
    owner.assign(n, missing_code);
    owner_given.assign(n, 0);
  }
  dictionary opp_dict, owner_dict, stage_dict;
  for (const auto& s : stage_names) stage_dict.intern(s);
  for (std::size_t o = 0; o < n_opportunities(); ++o) {
    const auto oc = string_ids_ ? static_cast<std::int64_t>(opp_dict.intern(str_ids_[o])) : int_ids_[o];
    for (auto k = offset_[o]; k < offset_[o + 1]; ++k) {
      opp[k] = oc;
      stage[k] = stage_[k];
      time[k] = time_[k];
      // created defaults to the first event; pass it on only where it differs from the first
      // event (so it was given explicitly), or an appended earlier event would be rejected as
      // "before its created time" where building from all rows at once accepts it.
      created[k] = created_[o] != time_[offset_[o]] ? created_[o] : missing_time;
      if (auto a = amount_.at(o, time_[k])) {
        amount[k] = *a;
        amount_given[k] = 1;
      }
      if (auto w = owner_.at(o, time_[k])) {
        owner[k] = static_cast<std::int32_t>(owner_dict.intern(owner_names_[*w]));
        owner_given[k] = 1;
      }
      if (auto cd = close_.at(o, time_[k])) close[k] = *cd;
    }
  }
  const bool more_names = !more.opportunity_names.empty();
  if (n0 > 0 && more_names != string_ids_)
    throw data_error(-1, "opportunity",
                     std::string("appended opportunity ids must be ") +
                         (string_ids_ ? "strings" : "integers") + " like the log's");
  for (std::size_t r = 0; r < n1; ++r) {
    const auto k = n0 + r;
    const auto oc = more.opportunity[r];
    if (more_names)
      opp[k] = (oc < 0 || static_cast<std::size_t>(oc) >= more.opportunity_names.size())
                   ? missing_code
                   : static_cast<std::int64_t>(
                         opp_dict.intern(more.opportunity_names[static_cast<std::size_t>(oc)]));
    else
      opp[k] = oc;
    const auto sc = more.stage[r];
    stage[k] =
        (sc < 0 || static_cast<std::size_t>(sc) >= more.stage_names.size())
            ? missing_code
            : static_cast<std::int32_t>(stage_dict.intern(more.stage_names[static_cast<std::size_t>(sc)]));
    time[k] = more.time[r];
    if (!more.amount.empty()) {
      amount[k] = more.amount[r];
      amount_given[k] = more.amount_given.empty() ? 1 : more.amount_given[r];
    }
    if (!more.owner.empty()) owner_given[k] = more.owner_given.empty() ? 1 : more.owner_given[r];
    if (!more.owner.empty())
      owner[k] = (more.owner[r] < 0 || static_cast<std::size_t>(more.owner[r]) >= more.owner_names.size())
                     ? missing_code
                     : static_cast<std::int32_t>(
                           owner_dict.intern(more.owner_names[static_cast<std::size_t>(more.owner[r])]));
    if (!more.close_date.empty()) close[k] = more.close_date[r];
    if (!more.created.empty()) created[k] = more.created[r];
  }
  // Existing opportunities keep their created time; new rows of them must agree or leave it empty.
  for (std::size_t r = 0; r < n1; ++r)
    created[n0 + r] = more.created.empty() ? missing_time : more.created[r];
  std::vector<std::string> owner_all(owner_dict.names().begin(), owner_dict.names().end());
  stage_names.assign(stage_dict.names().begin(), stage_dict.names().end());
  if (string_ids_ || more_names) opp_names.assign(opp_dict.names().begin(), opp_dict.names().end());
  event_columns all;
  all.opportunity = opp;
  all.opportunity_names = opp_names;
  all.stage = stage;
  all.stage_names = stage_names;
  all.time = time;
  if (any_amount) {
    all.amount = amount;
    all.amount_given = amount_given;
  }
  if (any_owner) {
    all.owner = owner;
    all.owner_given = owner_given;
    all.owner_names = owner_all;
  }
  if (any_close) all.close_date = close;
  all.created = created;
  // Attributes: the log's, then those only the appended rows have; existing per-opportunity
  // values (missing for an attribute the log did not have) followed by the appended rows' values.
  std::vector<std::string> attr_order;
  for (const auto& a : attributes_) attr_order.push_back(a.name);
  for (const auto& m : more.attributes)
    if (std::find(attr_order.begin(), attr_order.end(), m.name) == attr_order.end())
      attr_order.push_back(m.name);
  std::vector<std::vector<std::int32_t>> attr_codes;
  std::vector<std::vector<std::string>> attr_names;
  for (const auto& name : attr_order) {
    std::vector<std::int32_t> codes(n, missing_code);
    dictionary d;
    if (auto ai = find_attribute(name)) {
      const auto& a = attributes_[*ai];
      for (const auto& v : a.values.names()) d.intern(v);
      for (std::size_t o = 0; o < n_opportunities(); ++o)
        for (auto k = offset_[o]; k < offset_[o + 1]; ++k) codes[k] = a.code[o];
    }
    std::vector<std::size_t> out_of_range;
    for (const auto& m : more.attributes)
      if (m.name == name) {
        for (const auto& v : m.names) d.intern(v); // every name in list order, as from_columns does
        for (std::size_t r = 0; r < n1; ++r) {
          const auto code = m.code[r];
          if (code == missing_code) continue;
          if (code < 0 || static_cast<std::size_t>(code) >= m.names.size()) {
            codes[n0 + r] = code;
            out_of_range.push_back(n0 + r);
          } else {
            codes[n0 + r] = static_cast<std::int32_t>(*d.find(m.names[static_cast<std::size_t>(code)]));
          }
        }
      }
    // Keep invalid codes out of range of the merged dictionary so that ingestion rejects the row.
    for (auto k : out_of_range)
      if (codes[k] >= 0 && static_cast<std::size_t>(codes[k]) < d.size()) codes[k] = -2;
    attr_codes.push_back(std::move(codes));
    attr_names.emplace_back(d.names().begin(), d.names().end());
  }
  for (std::size_t a = 0; a < attr_order.size(); ++a)
    all.attributes.push_back({attr_order[a], attr_codes[a], attr_names[a]});
  // The log's field histories travel as change rows (so values between events survive), then the
  // appended change rows.
  const auto& mc = more.changes;
  const std::size_t h0 = amount_.time.size() + owner_.time.size() + close_.time.size();
  const std::size_t hn = h0 + mc.opportunity.size();
  std::vector<std::int64_t> ch_opp(hn);
  std::vector<time_point> ch_time(hn), ch_close(hn, missing_time);
  std::vector<double> ch_amount(hn, 0.0);
  std::vector<std::uint8_t> ch_amount_given(hn, 0), ch_owner_given(hn, 0);
  std::vector<std::int32_t> ch_owner(hn, missing_code);
  {
    std::size_t k = 0;
    for (std::size_t o = 0; o < n_opportunities(); ++o) {
      const auto oc = string_ids_ ? static_cast<std::int64_t>(*opp_dict.find(str_ids_[o])) : int_ids_[o];
      for (auto i = amount_.offset.empty() ? 0 : amount_.offset[o];
           !amount_.offset.empty() && i < amount_.offset[o + 1]; ++i, ++k) {
        ch_opp[k] = oc;
        ch_time[k] = amount_.time[i];
        ch_amount[k] = amount_.value[i];
        ch_amount_given[k] = 1;
      }
      for (auto i = owner_.offset.empty() ? 0 : owner_.offset[o];
           !owner_.offset.empty() && i < owner_.offset[o + 1]; ++i, ++k) {
        ch_opp[k] = oc;
        ch_time[k] = owner_.time[i];
        ch_owner[k] = static_cast<std::int32_t>(owner_dict.intern(owner_names_[owner_.value[i]]));
        ch_owner_given[k] = 1;
      }
      for (auto i = close_.offset.empty() ? 0 : close_.offset[o];
           !close_.offset.empty() && i < close_.offset[o + 1]; ++i, ++k) {
        ch_opp[k] = oc;
        ch_time[k] = close_.time[i];
        ch_close[k] = close_.value[i];
      }
    }
    for (std::size_t r = 0; r < mc.opportunity.size(); ++r, ++k) {
      const auto oc = mc.opportunity[r];
      if (!mc.opportunity_names.empty())
        ch_opp[k] = (oc < 0 || static_cast<std::size_t>(oc) >= mc.opportunity_names.size())
                        ? missing_code
                        : static_cast<std::int64_t>(
                              opp_dict.intern(mc.opportunity_names[static_cast<std::size_t>(oc)]));
      else
        ch_opp[k] = oc;
      ch_time[k] = mc.time[r];
      if (!mc.amount.empty()) {
        ch_amount[k] = mc.amount[r];
        ch_amount_given[k] = mc.amount_given.empty() ? 1 : mc.amount_given[r];
      }
      if (!mc.owner.empty() && (mc.owner_given.empty() || mc.owner_given[r] != 0)) {
        ch_owner_given[k] = 1;
        ch_owner[k] = (mc.owner[r] < 0 || static_cast<std::size_t>(mc.owner[r]) >= mc.owner_names.size())
                          ? -2
                          : static_cast<std::int32_t>(
                                owner_dict.intern(mc.owner_names[static_cast<std::size_t>(mc.owner[r])]));
      }
      if (!mc.close_date.empty()) ch_close[k] = mc.close_date[r];
    }
  }
  owner_all.assign(owner_dict.names().begin(), owner_dict.names().end());
  if (string_ids_ || more_names) opp_names.assign(opp_dict.names().begin(), opp_dict.names().end());
  all.opportunity_names = opp_names;
  if (any_owner) all.owner_names = owner_all;
  if (hn > 0) {
    all.changes.opportunity = ch_opp;
    all.changes.opportunity_names = opp_names;
    all.changes.time = ch_time;
    if (any_amount) {
      all.changes.amount = ch_amount;
      all.changes.amount_given = ch_amount_given;
    }
    if (any_owner) {
      all.changes.owner = ch_owner;
      all.changes.owner_names = owner_all;
      all.changes.owner_given = ch_owner_given;
    }
    if (any_close) all.changes.close_date = ch_close;
  }
  // The rows of `more` that the caller could not parse, numbered after the log's events.
  detail::unparsed_cursor(more.unparsed, n1); // checks their rows before any is shifted
  std::vector<rejected_row> unparsed(more.unparsed.begin(), more.unparsed.end());
  for (auto& u : unparsed) u.row += static_cast<std::int64_t>(n0);
  all.unparsed = unparsed;
  auto out = ingest(funnel_, all, options, static_cast<std::int64_t>(n0), static_cast<std::int64_t>(h0));
  out.report_.duplicates_collapsed += report_.duplicates_collapsed;
  out.report_.rows_read = report_.rows_read + n1;
  out.report_.rows_kept += report_.rows_kept - n0;
  return out;
}

std::string event_log::id_label(std::size_t opp) const {
  return string_ids_ ? str_ids_.at(opp) : std::to_string(int_ids_.at(opp));
}

std::size_t event_log::index_of(std::int64_t id) const {
  if (!string_ids_)
    for (std::size_t i = 0; i < int_ids_.size(); ++i)
      if (int_ids_[i] == id) return i;
  throw unknown_opportunity("opportunity " + std::to_string(id) + " is not in the log");
}

std::size_t event_log::index_of(std::string_view id) const {
  if (string_ids_)
    for (std::size_t i = 0; i < str_ids_.size(); ++i)
      if (str_ids_[i] == id) return i;
  throw unknown_opportunity("opportunity '" + std::string(id) + "' is not in the log");
}

std::optional<std::size_t> event_log::find_attribute(std::string_view name) const {
  for (std::size_t i = 0; i < attributes_.size(); ++i)
    if (attributes_[i].name == name) return i;
  return std::nullopt;
}

namespace {
template <class V>
std::size_t bytes(const V& v) {
  return v.capacity() * sizeof(typename V::value_type);
}
} // namespace

std::size_t event_log::event_bytes() const noexcept { return bytes(time_) + bytes(stage_); }

std::size_t event_log::opportunity_bytes() const noexcept {
  std::size_t b = bytes(int_ids_) + bytes(offset_) + bytes(created_);
  b += bytes(amount_.offset) + bytes(amount_.time) + bytes(amount_.value);
  b += bytes(owner_.offset) + bytes(owner_.time) + bytes(owner_.value);
  b += bytes(close_.offset) + bytes(close_.time) + bytes(close_.value);
  for (const auto& s : str_ids_) b += sizeof(std::string) + (s.size() > 15 ? s.capacity() : 0);
  for (const auto& a : attributes_) b += bytes(a.code);
  return b;
}

bool operator==(const event_log& a, const event_log& b) {
  return a.funnel_ == b.funnel_ && a.string_ids_ == b.string_ids_ && a.int_ids_ == b.int_ids_ &&
         a.str_ids_ == b.str_ids_ && a.offset_ == b.offset_ && a.time_ == b.time_ && a.stage_ == b.stage_ &&
         a.created_ == b.created_ && a.amount_ == b.amount_ && a.owner_ == b.owner_ && a.close_ == b.close_ &&
         a.owner_names_ == b.owner_names_ && a.attributes_ == b.attributes_;
}

event_log_builder& event_log_builder::add(std::string_view opportunity, std::string_view stage,
                                          time_point time, std::optional<double> amount,
                                          std::optional<std::string_view> owner,
                                          std::optional<time_point> close_date) {
  opp_code_.push_back(opp_.intern(opportunity));
  stage_code_.push_back(static_cast<std::int32_t>(stage_.intern(stage)));
  time_.push_back(time);
  amount_.push_back(amount.value_or(0.0));
  amount_given_.push_back(amount.has_value() ? 1 : 0);
  owner_code_.push_back(owner ? static_cast<std::int32_t>(owner_.intern(*owner)) : missing_code);
  owner_given_.push_back(owner.has_value() ? 1 : 0);
  close_.push_back(close_date.value_or(missing_time));
  any_amount_ |= amount.has_value();
  any_owner_ |= owner.has_value();
  any_close_ |= close_date.has_value();
  return *this;
}

event_log event_log_builder::build(const ingest_options& options) const {
  std::vector<std::string> opp(opp_.names().begin(), opp_.names().end());
  std::vector<std::string> stages(stage_.names().begin(), stage_.names().end());
  std::vector<std::string> owners(owner_.names().begin(), owner_.names().end());
  if (opp.empty()) opp.emplace_back(); // keeps the "string ids" representation for an empty log
  event_columns c;
  c.opportunity = opp_code_;
  c.opportunity_names = opp;
  c.stage = stage_code_;
  c.stage_names = stages;
  c.time = time_;
  if (any_amount_) {
    c.amount = amount_;
    c.amount_given = amount_given_;
  }
  if (any_owner_) {
    c.owner = owner_code_;
    c.owner_given = owner_given_;
    c.owner_names = owners;
  }
  if (any_close_) c.close_date = close_;
  return event_log::from_columns(funnel_, c, options);
}

} // namespace smartfunnel
