// The bad-input matrix: every class of malformed input, one row each, with the error it raises or
// the documented handling it gets (docs/guide/reliability.md has the same table). The Python side
// is tests/python/test_bad_input.py.
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <smartfunnel/detail/crc32c.hpp>
#include <smartfunnel/serialization.hpp>
#include <smartfunnel/smartfunnel.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

namespace {

const sf::funnel& matrix_funnel() {
  static const sf::funnel f({"Qualify", "Propose"}, {"Won"}, {"Lost"});
  return f;
}

enum class outcome { accepted, data_error, unknown_stage, not_applicable };

struct bad_input_case {
  const char* name;
  std::function<table()> input;
  outcome expected;
  const char* column = "";                           ///< data_error: the column it names
  std::int64_t row = -1;                             ///< data_error: the row it names
  std::function<void(const sf::event_log&)> check{}; ///< accepted: the documented handling
  sf::ingest_options options{};
};

constexpr auto i64max = std::numeric_limits<std::int64_t>::max();
constexpr auto i64min = std::numeric_limits<std::int64_t>::min();

// Years 1 to 9999: the ends of the accepted range, worked out by hand (days from 1970 to 10000-01-01
// are 2'932'897, times 86'400, minus one second; year 1 starts 719'162 days before 1970).
constexpr sf::time_point year_10000 = 2'932'897LL * 86'400;
constexpr sf::time_point year_1 = -719'162LL * 86'400;

table with_amounts(double bad) {
  table t;
  t.add(1, "Qualify", day(0), 100.0, "ann").add(1, "Propose", day(1), bad, "ann");
  return t;
}

std::vector<bad_input_case> cases() {
  return {
      {"unknown_stage", [] { return table().add(1, "Qualify", day(0)).add(1, "Demo", day(1)); },
       outcome::unknown_stage, "stage", 1},
      {"unsorted_rows_are_sorted_by_time",
       [] { return table().add(1, "Won", day(5)).add(1, "Qualify", day(0)).add(1, "Propose", day(2)); },
       outcome::accepted, "", -1,
       [](const sf::event_log& log) {
         ASSERT_EQ(log.n_events(), 3u);
         EXPECT_EQ(log.times()[0], day(0));
         EXPECT_EQ(log.times()[1], day(2));
         EXPECT_EQ(log.times()[2], day(5));
         EXPECT_EQ(log.funnel().name_of(log.stages()[2]), "Won");
       }},
      {"duplicate_rows_are_collapsed_and_counted",
       [] { return table().add(1, "Qualify", day(0)).add(1, "Qualify", day(0)).add(1, "Propose", day(1)); },
       outcome::accepted, "", -1,
       [](const sf::event_log& log) {
         EXPECT_EQ(log.n_events(), 2u);
         EXPECT_EQ(log.report().duplicates_collapsed, 1u);
       }},
      {"same_stage_entry_with_different_amounts",
       [] { return table().add(1, "Qualify", day(0), 10.0, "ann").add(1, "Qualify", day(0), 20.0, "ann"); },
       outcome::data_error, "amount", 0},
      {"unparsed_cell",
       [] {
         auto t = table().add(1, "Qualify", day(0)).add(1, "Propose", sf::missing_time);
         t.unparsed = {{1, "time", "time value 'yesterday' is not a time"}};
         return t;
       },
       outcome::data_error, "time", 1},
      {"nan_amount", [] { return with_amounts(std::nan("")); }, outcome::data_error, "amount", 1},
      {"infinite_amount", [] { return with_amounts(std::numeric_limits<double>::infinity()); },
       outcome::data_error, "amount", 1},
      {"negative_amount", [] { return with_amounts(-1.0); }, outcome::data_error, "amount", 1},
      {"times_before_1970_are_valid",
       [] { return table().add(1, "Qualify", -86'400 * 365).add(1, "Won", -86'400); }, outcome::accepted, "",
       -1,
       [](const sf::event_log& log) {
         EXPECT_EQ(log.first_time(), -86'400 * 365);
         EXPECT_EQ(log.last_time(), -86'400);
       }},
      {"first_second_of_year_1_is_valid", [] { return table().add(1, "Qualify", year_1); }, outcome::accepted,
       "", -1, [](const sf::event_log& log) { EXPECT_EQ(log.first_time(), sf::min_time); }},
      {"before_year_1", [] { return table().add(1, "Qualify", day(0)).add(2, "Qualify", year_1 - 1); },
       outcome::data_error, "time", 1},
      {"last_second_of_year_9999_is_valid", [] { return table().add(1, "Qualify", year_10000 - 1); },
       outcome::accepted, "", -1, [](const sf::event_log& log) { EXPECT_EQ(log.last_time(), sf::max_time); }},
      {"year_10000", [] { return table().add(1, "Qualify", year_10000); }, outcome::data_error, "time", 0},
      {"time_near_int64_max", [] { return table().add(1, "Qualify", day(0)).add(1, "Won", i64max); },
       outcome::data_error, "time", 1},
      {"time_near_int64_min", [] { return table().add(1, "Qualify", i64min + 1); }, outcome::data_error,
       "time", 0},
      {"close_date_out_of_range",
       [] {
         table t;
         t.add(1, "Qualify", day(0));
         t.close_date = {i64max};
         return t;
       },
       outcome::data_error, "close_date", 0},
      {"empty_log", [] { return table(); }, outcome::accepted, "", -1,
       [](const sf::event_log& log) {
         EXPECT_EQ(log.n_events(), 0u);
         EXPECT_EQ(log.n_opportunities(), 0u);
         EXPECT_EQ(log.report().rows_read, 0u);
       }},
      {"one_event_deals_are_open", [] { return table().add(1, "Qualify", day(0)).add(2, "Propose", day(3)); },
       outcome::accepted, "", -1,
       [](const sf::event_log& log) {
         EXPECT_EQ(log.n_opportunities(), 2u);
         EXPECT_EQ(log.n_events(), 2u);
       }},
      {"event_after_terminal",
       [] { return table().add(1, "Qualify", day(0)).add(1, "Lost", day(1)).add(1, "Propose", day(2)); },
       outcome::data_error, "stage", 2},
      {"event_after_terminal_with_reopen_policy",
       [] { return table().add(1, "Qualify", day(0)).add(1, "Lost", day(1)).add(1, "Propose", day(2)); },
       outcome::accepted, "", -1,
       [](const sf::event_log& log) {
         EXPECT_EQ(log.n_events(), 3u);
         EXPECT_EQ(log.report().reopened, 1u);
       },
       sf::ingest_options{sf::validation::strict, sf::after_terminal::reopen}},
      {"unknown_opportunity_in_activities", [] { return table().add(1, "Qualify", day(0)); },
       outcome::not_applicable},
      {"column_of_the_wrong_length",
       [] {
         table t;
         t.add(1, "Qualify", day(0)).add(1, "Propose", day(1));
         t.time.pop_back();
         return t;
       },
       outcome::data_error, "time", -1},
      {"non_utf8_stage_name_is_an_unknown_stage", [] { return table().add(1, "Qualify\xff", day(0)); },
       outcome::unknown_stage, "stage", 0},
      {"non_utf8_opportunity_names_are_kept_as_bytes",
       [] { return table().add("deal-\xc3\x28", "Qualify", day(0)).add("\xff", "Propose", day(1)); },
       outcome::accepted, "", -1,
       [](const sf::event_log& log) {
         ASSERT_EQ(log.n_opportunities(), 2u);
         EXPECT_EQ(log.id_label(0), "deal-\xc3\x28");
         EXPECT_EQ(log.index_of(std::string_view("\xff")), 1u);
       }},
      {"huge_integer_ids",
       [] {
         return table()
             .add(i64max, "Qualify", day(0))
             .add(i64min, "Qualify", day(1))
             .add(i64max, "Won", day(2));
       },
       outcome::accepted, "", -1,
       [](const sf::event_log& log) {
         ASSERT_EQ(log.n_opportunities(), 2u);
         EXPECT_EQ(log.index_of(i64max), 0u);
         EXPECT_EQ(log.index_of(i64min), 1u);
         EXPECT_EQ(log.id_label(1), "-9223372036854775808");
       }},
  };
}

class bad_input : public ::testing::TestWithParam<bad_input_case> {};

std::string case_name(const ::testing::TestParamInfo<bad_input_case>& param) { return param.param.name; }

} // namespace

TEST_P(bad_input, raises_its_error_or_gets_its_documented_handling) {
  const auto& c = GetParam();
  if (c.expected == outcome::not_applicable) { // activities of an opportunity the log lacks
    const auto log = c.input().log(matrix_funnel());
    const std::vector<std::int64_t> opp{424242};
    const std::vector<sf::time_point> when{day(1)};
    const std::vector<std::int32_t> kind{0};
    const std::vector<std::string> kinds{"call"};
    sf::activity_columns a;
    a.opportunity = opp;
    a.time = when;
    a.kind = kind;
    a.kind_names = kinds;
    try {
      (void)sf::activity_log::from_columns(log, a);
      FAIL() << "expected data_error";
    } catch (const sf::data_error& e) {
      EXPECT_EQ(e.row(), 0);
      EXPECT_EQ(e.column(), "opportunity");
    }
    return;
  }
  const table t = c.input();
  switch (c.expected) {
  case outcome::accepted: {
    const auto log = t.log(matrix_funnel(), c.options);
    c.check(log);
    // Whatever is accepted (and not empty) can be fitted.
    sf::fit_options o;
    o.draws = 0;
    if (log.n_events() > 0) {
      EXPECT_NO_THROW((void)sf::fit(log, o));
    }
    break;
  }
  case outcome::data_error:
  case outcome::unknown_stage:
    try {
      (void)t.log(matrix_funnel(), c.options);
      ADD_FAILURE() << "no error";
    } catch (const sf::unknown_stage& e) {
      EXPECT_EQ(c.expected, outcome::unknown_stage) << e.what();
      EXPECT_EQ(e.column(), c.column);
      EXPECT_EQ(e.row(), c.row);
    } catch (const sf::data_error& e) {
      EXPECT_EQ(c.expected, outcome::data_error) << e.what();
      EXPECT_EQ(e.column(), c.column) << e.what();
      EXPECT_EQ(e.row(), c.row) << e.what();
    }
    // Lenient mode never throws for a row's problem: it reports it instead (column lengths are not
    // a row's problem).
    if (c.row >= 0) {
      const auto log = t.log(matrix_funnel(), {sf::validation::lenient, c.options.on_after_terminal});
      ASSERT_FALSE(log.report().rejected.empty());
      EXPECT_EQ(log.report().rejected.front().row, c.row);
      EXPECT_EQ(log.report().rejected.front().column, c.column);
    }
    break;
  case outcome::not_applicable:
    break;
  }
}

INSTANTIATE_TEST_SUITE_P(matrix, bad_input, ::testing::ValuesIn(cases()), case_name);

// Archives and save targets (issue 13; details in serialization_test.cpp): one row per class.
TEST(bad_input, archives_and_save_targets) {
  auto reseal = [](std::string b) { // lengths and checksums recomputed, as a forger would
    auto put = [&b](std::size_t at, std::uint64_t v, int n) {
      for (int i = 0; i < n; ++i)
        b[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
    };
    put(28, sf::detail::crc32c(b.data() + 40, b.size() - 40), 4);
    put(36, sf::detail::crc32c(b.data(), 36), 4);
    return b;
  };
  const auto text = sf::save_to_string(matrix_funnel(), sf::archive_format::text);
  // A stage name that is not UTF-8, in a payload with valid checksums: check_utf8 names it.
  auto bad_name = text;
  bad_name.replace(bad_name.find(" 7 Propose"), 10, " 7 Pro\xffose");
  const auto loaded = sf::load_from_string<sf::funnel>(reseal(bad_name));
  EXPECT_THROW(sf::check_utf8(loaded), sf::corrupt_archive);
  // A garbage format version is corrupt; one just above the newest is newer.
  auto garbage = text;
  garbage[12] = '\xEF', garbage[13] = '\xBE';
  EXPECT_THROW((void)sf::load_any_from_string(reseal(garbage)), sf::corrupt_archive);
  garbage[12] = '\x02', garbage[13] = '\x00';
  EXPECT_THROW((void)sf::load_any_from_string(reseal(garbage)), sf::newer_archive_format);
  // Save targets: a device node, a read-only file (refused even as root).
  EXPECT_THROW(sf::save(matrix_funnel(), "/dev/null"), sf::save_target_error);
  const auto ro = std::filesystem::temp_directory_path() / ("sf-bad-input-ro-" + std::to_string(::getpid()));
  sf::save(matrix_funnel(), ro);
  std::filesystem::permissions(ro, std::filesystem::perms::owner_read);
  EXPECT_THROW(sf::save(matrix_funnel(), ro), sf::save_target_error);
  std::filesystem::remove(ro);
}

// Options out of range (issue 13, items 8 and 12): each is refused by validate() with
// invalid_options naming the option and the accepted range, before any work or allocation.
TEST(bad_input, options_out_of_range_name_the_option_and_its_range) {
  struct forecast_case {
    const char* option;
    std::function<void(sf::forecast_options&)> set;
    const char* range;
  };
  const std::vector<forecast_case> forecast_cases{
      {"lattice_cells", [](auto& o) { o.lattice_cells = std::size_t{1} << 26; }, "[16, 65536]"},
      {"lattice_cells", [](auto& o) { o.lattice_cells = std::numeric_limits<std::size_t>::max(); },
       "[16, 65536]"},
      {"lattice_cells", [](auto& o) { o.lattice_cells = 8; }, "[16, 65536]"},
      {"lattice_sd", [](auto& o) { o.lattice_sd = std::nan(""); }, "(0, 64]"},
      {"lattice_sd", [](auto& o) { o.lattice_sd = 1e300; }, "(0, 64]"},
      {"scenarios", [](auto& o) { o.scenarios = std::numeric_limits<std::size_t>::max(); }, "[0, 10000000]"},
      {"threads", [](auto& o) { o.threads = 0; }, "[1, 256]"},
      {"threads", [](auto& o) { o.threads = std::numeric_limits<std::size_t>::max(); }, "[1, 256]"},
      {"parameter_draws", [](auto& o) { o.parameter_draws = 100'000; }, "[0, 10000]"},
      {"arrivals_lookback_days", [](auto& o) { o.arrivals_lookback_days = 1e12; },
       "at most 3652425 (10,000 years)"},
      {"arrivals_lookback_days", [](auto& o) { o.arrivals_lookback_days = 0.0; }, "> 0"},
      {"arrivals_lookback_days", [](auto& o) { o.arrivals_lookback_days = std::nan(""); }, "> 0"},
      {"stale_after_days", [](auto& o) { o.stale_after_days = std::nan(""); }, ">= 0"},
      {"grid_days", [](auto& o) { o.grid_days = 0.0; }, "at most 366"},
  };
  for (const auto& c : forecast_cases) {
    sf::forecast_options o;
    o.start = day(0);
    o.end = day(90);
    ASSERT_NO_THROW(o.validate());
    c.set(o);
    try {
      o.validate();
      ADD_FAILURE() << c.option << ": no error";
    } catch (const sf::invalid_options& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(c.option, 0), 0u) << what; // the message starts with the option
      EXPECT_NE(what.find(c.range), std::string::npos) << what;
    }
  }
  struct fit_case {
    const char* option;
    std::function<void(sf::fit_options&)> set;
    const char* range;
  };
  const std::vector<fit_case> fit_cases{
      {"draws", [](auto& o) { o.draws = std::numeric_limits<std::size_t>::max(); }, "[0, 100000]"},
      {"unresolved_threshold", [](auto& o) { o.unresolved_threshold = std::nan(""); }, "[0, 1]"},
      {"unresolved_threshold", [](auto& o) { o.unresolved_threshold = -0.5; }, "[0, 1]"},
      {"unresolved_threshold", [](auto& o) { o.unresolved_threshold = 1.5; }, "[0, 1]"},
  };
  for (const auto& c : fit_cases) {
    sf::fit_options o;
    ASSERT_NO_THROW(o.validate());
    c.set(o);
    try {
      o.validate();
      ADD_FAILURE() << c.option << ": no error";
    } catch (const sf::invalid_options& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(c.option, 0), 0u) << what;
      EXPECT_NE(what.find(c.range), std::string::npos) << what;
    }
  }
}
