// Fuzz target: event_log and activity_log ingestion from raw columns, strict and lenient, and a fit
// of what loads.
//
// The input bytes are decoded into event_columns (the decoding is total: every byte string is some
// set of columns): a flags byte picks the optional columns and the id kind, then each row takes a
// fixed number of bytes for its opportunity, stage code, time, amount, owner, close date and created
// time, with selectors that reach the edge values (missing codes and times, out-of-range codes,
// NaN, infinities, negative amounts, times near +-2^63, huge ids). Ingestion must succeed or throw
// data_error (unknown_stage included); a log that loads is fitted, and the fit must succeed or throw
// a documented smartfunnel exception. Activities on the same ids and times are ingested against the
// log too (unknown ids, out-of-range kinds and owners must be data_errors or rejected rows).
#include <smartfunnel/smartfunnel.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace {

namespace sf = smartfunnel;

// Reads the fuzz bytes front to back; past the end, every read gives zeros.
struct reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;
  std::uint8_t byte() { return at < size ? data[at++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }
  [[nodiscard]] bool done() const { return at >= size; }
};

constexpr sf::time_point base = 1'704'067'200; // 2024-01-01

sf::time_point time_of(reader& in) {
  const std::uint8_t sel = in.byte();
  const std::uint16_t v = in.u16();
  switch (sel % 16) {
  case 0:
    return sf::missing_time;
  case 1:
    return std::numeric_limits<sf::time_point>::max() - v;
  case 2:
    return sf::missing_time + 1 + v;
  case 3:
    return -static_cast<sf::time_point>(v) * 86'400; // before 1970
  case 4:
    return static_cast<sf::time_point>(v) * 86'400 * 1000; // far future
  default:
    return base + static_cast<sf::time_point>(v) * 3600; // hours after 2024-01-01
  }
}

double amount_of(reader& in) {
  const std::uint8_t sel = in.byte();
  const std::uint16_t v = in.u16();
  switch (sel % 12) {
  case 0:
    return std::numeric_limits<double>::quiet_NaN();
  case 1:
    return std::numeric_limits<double>::infinity();
  case 2:
    return -std::numeric_limits<double>::infinity();
  case 3:
    return -static_cast<double>(v);
  case 4:
    return std::numeric_limits<double>::max();
  case 5:
    return std::numeric_limits<double>::denorm_min();
  default:
    return static_cast<double>(v) * 10.0;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader in{data, size};
  const std::uint8_t flags = in.byte();
  const bool string_ids = flags & 1, with_amount = flags & 2, with_owner = flags & 4, with_close = flags & 8,
             with_created = flags & 16, with_attribute = flags & 32;
  sf::ingest_options options;
  options.mode = (flags & 64) ? sf::validation::lenient : sf::validation::strict;
  options.on_after_terminal = (flags & 128) ? sf::after_terminal::reopen : sf::after_terminal::error;

  static const sf::funnel funnel({"A", "B", "C"}, {"Won"}, {"Lost"});
  // Names the funnel knows, one it does not, an empty one, and bytes that are not UTF-8.
  static const std::vector<std::string> stage_names{"A", "B", "C", "Won", "Lost", "Bogus", "", "\xff\xfe"};
  static const std::vector<std::string> opp_names{"o1", "o2", "o1", "\xc3\x28", "", "o3"};
  static const std::vector<std::string> owner_names{"ann", "bob", "\x80"};
  static const std::vector<std::string> segment_names{"smb", "ent"};

  std::vector<std::int64_t> opp;
  std::vector<std::int32_t> stage, owner, segment;
  std::vector<sf::time_point> time, close, created;
  std::vector<double> amount;
  std::vector<std::uint8_t> amount_given;
  while (!in.done() && opp.size() < 256) {
    const std::uint8_t o = in.byte();
    if (string_ids)
      opp.push_back(static_cast<std::int64_t>(o % 8) - 1); // -1 (missing) .. 6 (out of range)
    else if (o >= 250)
      opp.push_back(o == 250 ? std::numeric_limits<std::int64_t>::max()
                             : std::numeric_limits<std::int64_t>::min() + (o - 251));
    else
      opp.push_back(o % 16);
    stage.push_back(static_cast<std::int32_t>(in.byte() % 10) - 1); // -1 .. 8
    time.push_back(time_of(in));
    if (with_amount) {
      amount.push_back(amount_of(in));
      amount_given.push_back(in.byte() & 1);
    }
    if (with_owner) owner.push_back(static_cast<std::int32_t>(in.byte() % 5) - 1);
    if (with_close) close.push_back(time_of(in));
    if (with_created) created.push_back(time_of(in));
    if (with_attribute) segment.push_back(static_cast<std::int32_t>(in.byte() % 4) - 1);
  }

  sf::event_columns cols;
  cols.opportunity = opp;
  if (string_ids) cols.opportunity_names = opp_names;
  cols.stage = stage;
  cols.stage_names = stage_names;
  cols.time = time;
  cols.amount = amount;
  cols.amount_given = amount_given;
  cols.owner = owner;
  if (with_owner) cols.owner_names = owner_names;
  cols.close_date = close;
  cols.created = created;
  if (with_attribute) cols.attributes.push_back({"segment", segment, segment_names});

  try {
    const auto log = sf::event_log::from_columns(funnel, cols, options);
    // Activities on the same ids and times (kinds from the stage bytes, some out of range).
    static const std::vector<std::string> kind_names{"call", "email", "\xff"};
    sf::activity_columns acts;
    acts.opportunity = opp;
    if (string_ids) acts.opportunity_names = opp_names;
    acts.time = time;
    acts.kind = stage;
    acts.kind_names = kind_names;
    if (with_owner) {
      acts.owner = owner;
      acts.owner_names = owner_names;
    }
    acts.buyer = amount_given;
    try {
      (void)sf::activity_log::from_columns(log, acts, options);
    } catch (const sf::data_error&) {
    }
    if (log.n_events() == 0) return 0;
    sf::fit_options fo;
    fo.draws = 0;
    const auto model = sf::fit(log, fo);
    (void)model;
  } catch (const sf::data_error&) {
  } catch (const sf::invalid_options&) {
  } catch (const sf::singular_chain&) {
  }
  return 0;
}
