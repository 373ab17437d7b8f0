// Archives of event_log, and the invariants a loaded log must satisfy.
#include "archive.hpp"

#include "smartfunnel/serialization/event_log.hpp"

#include <cmath>

namespace smartfunnel::detail {

event_log serialization_access::placeholder_event_log() { return event_log(placeholder_funnel()); }

namespace {

[[noreturn]] void invalid(const std::string& what) { throw_corrupt("corrupt archive: event_log " + what); }

// CSR offsets over `items` entries for n opportunities: n + 1 entries from 0, non-decreasing,
// ending at items.
void check_offsets(const std::vector<std::uint64_t>& offset, std::size_t n, std::size_t items,
                   const char* name) {
  if (offset.size() != n + 1)
    invalid(std::string(name) + ": " + std::to_string(offset.size()) + " offsets for " + std::to_string(n) +
            " opportunities");
  if (offset.front() != 0) invalid(std::string(name) + ": offsets do not start at 0");
  for (std::size_t o = 0; o < n; ++o)
    if (offset[o + 1] < offset[o])
      invalid(std::string(name) + ": offsets decrease at opportunity " + std::to_string(o));
  if (offset.back() != items)
    invalid(std::string(name) + ": offsets end at " + std::to_string(offset.back()) + ", not at " +
            std::to_string(items));
}

template <class T, class Check>
void check_history(const field_history<T>& h, std::size_t n, const char* name, Check&& check_value) {
  if (h.time.size() != h.value.size())
    invalid(std::string(name) + " history: " + std::to_string(h.time.size()) + " times but " +
            std::to_string(h.value.size()) + " values");
  if (h.offset.empty()) {
    if (!h.time.empty()) invalid(std::string(name) + " history: values without offsets");
    return;
  }
  check_offsets(h.offset, n, h.time.size(), name);
  for (std::size_t o = 0; o < n; ++o)
    for (auto i = h.offset[o]; i + 1 < h.offset[o + 1]; ++i)
      if (h.time[i + 1] < h.time[i]) invalid(std::string(name) + " history: times not sorted");
  for (const auto& v : h.value) check_value(v);
}

} // namespace

void serialization_access::validate(const event_log& log) {
  const auto& f = log.funnel_;
  const std::size_t n_opp = log.created_.size(), n_events = log.time_.size();
  if (log.string_ids_ ? (log.str_ids_.size() != n_opp || !log.int_ids_.empty())
                      : (log.int_ids_.size() != n_opp || !log.str_ids_.empty()))
    invalid("ids: " + std::to_string(log.string_ids_ ? log.str_ids_.size() : log.int_ids_.size()) +
            " ids for " + std::to_string(n_opp) + " opportunities");
  if (log.stage_.size() != n_events)
    invalid(std::to_string(n_events) + " times but " + std::to_string(log.stage_.size()) + " stages");
  check_offsets(log.offset_, n_opp, n_events, "events");
  for (const auto s : log.stage_)
    if (s >= f.n_codes())
      invalid("stage code " + std::to_string(s) + " is not in the funnel (" + std::to_string(f.n_codes()) +
              " codes)");
  time_point lo = 0, hi = 0; // an empty log has 0 for both
  bool seen = false;
  for (std::size_t o = 0; o < n_opp; ++o) {
    const auto b = log.offset_[o], e = log.offset_[o + 1];
    if (b == e) continue;
    for (auto k = b; k < e; ++k) {
      if (log.time_[k] == missing_time) invalid("has a missing event time");
      if (log.time_[k] < min_time || log.time_[k] > max_time)
        invalid("has an event time outside the supported range: " + std::to_string(log.time_[k]));
      if (k > b && log.time_[k] < log.time_[k - 1])
        invalid("events of opportunity " + std::to_string(o) + " are not sorted by time");
    }
    if (log.created_[o] == missing_time || log.created_[o] > log.time_[b])
      invalid("opportunity " + std::to_string(o) + " is created after its first event");
    // Events are sorted within an opportunity: its first is its earliest, its last its latest.
    lo = seen ? std::min(lo, log.time_[b]) : log.time_[b];
    hi = seen ? std::max(hi, log.time_[e - 1]) : log.time_[e - 1];
    seen = true;
  }
  if (log.first_time_ != lo || log.last_time_ != hi)
    invalid("first/last time " + std::to_string(log.first_time_) + "/" + std::to_string(log.last_time_) +
            " do not match its events (" + std::to_string(lo) + "/" + std::to_string(hi) + ")");
  check_history(log.amount_, n_opp, "amount", [](double a) {
    if (!(std::isfinite(a) && a >= 0.0)) invalid("amount history: an amount is negative or not finite");
  });
  const std::size_t n_owners = log.owner_names_.size();
  check_history(log.owner_, n_opp, "owner", [n_owners](std::uint32_t w) {
    if (w >= n_owners) invalid("owner history: owner code " + std::to_string(w) + " is out of range");
  });
  check_history(log.close_, n_opp, "close_date", [](time_point t) {
    if (t < min_time || t > max_time)
      invalid("close_date history: a close date is outside the supported range: " + std::to_string(t));
  });
  for (const auto& a : log.attributes_) {
    if (a.code.size() != n_opp)
      invalid("attribute '" + a.name + "': " + std::to_string(a.code.size()) + " codes for " +
              std::to_string(n_opp) + " opportunities");
    for (const auto c : a.code)
      if (c != missing_code && (c < 0 || static_cast<std::size_t>(c) >= a.values.size()))
        invalid("attribute '" + a.name + "': code " + std::to_string(c) + " is out of range");
  }
}

} // namespace smartfunnel::detail

SMARTFUNNEL_INSTANTIATE_SERIALIZATION(smartfunnel::event_log);
