// Activity log: validation, sorting and attribution to the stage at the activity's time.
#include "test_support.hpp"

#include <smartfunnel/activity_log.hpp>
#include <smartfunnel/error.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

namespace {
sf::funnel ab() { return sf::funnel({"A", "B"}, {"Won"}, {"Lost"}); }
sf::event_log small_log() {
  table t;
  t.add(7, "A", day(0)).add(7, "B", day(5)).add(7, "Won", day(9));
  t.add(8, "A", day(2));
  return t.log(ab());
}
} // namespace

TEST(activity_log, sorted_and_attributed_to_the_stage_in_force) {
  const auto log = small_log();
  const std::vector<std::int64_t> opp{8, 7, 7, 7};
  const std::vector<sf::time_point> when{day(3), day(6), day(1), day(-1)};
  const std::vector<std::int32_t> kind{0, 1, 0, 0};
  const std::vector<std::string> kinds{"call", "demo"};
  const std::vector<std::uint8_t> buyer{0, 1, 0, 0};
  sf::activity_columns c;
  c.opportunity = opp;
  c.time = when;
  c.kind = kind;
  c.kind_names = kinds;
  c.buyer = buyer;
  const auto acts = sf::activity_log::from_columns(log, c);
  // Log order: opportunity 7 (dense 0) then 8; by time within: 7 at -1, 1, 6; then 8 at 3.
  EXPECT_EQ(std::vector<std::uint64_t>(acts.offsets().begin(), acts.offsets().end()),
            (std::vector<std::uint64_t>{0, 3, 4}));
  EXPECT_EQ(std::vector<sf::time_point>(acts.times().begin(), acts.times().end()),
            (std::vector<sf::time_point>{day(-1), day(1), day(6), day(3)}));
  // Stages: before 7's first event (-1), A (code 0), B (code 1); 8 in A.
  EXPECT_EQ(std::vector<std::int32_t>(acts.stages().begin(), acts.stages().end()),
            (std::vector<std::int32_t>{-1, 0, 1, 0}));
  EXPECT_EQ(acts.buyer()[2], 1);
  EXPECT_EQ(acts.kind_names()[acts.kinds()[2]], "demo");
}

TEST(activity_log, unknown_opportunities_are_errors_or_rejections) {
  const auto log = small_log();
  const std::vector<std::int64_t> opp{7, 99};
  const std::vector<sf::time_point> when{day(1), day(1)};
  const std::vector<std::int32_t> kind{0, 0};
  const std::vector<std::string> kinds{"call"};
  sf::activity_columns c;
  c.opportunity = opp;
  c.time = when;
  c.kind = kind;
  c.kind_names = kinds;
  try {
    (void)sf::activity_log::from_columns(log, c);
    FAIL() << "expected data_error";
  } catch (const sf::data_error& e) {
    EXPECT_EQ(e.row(), 1);
    EXPECT_EQ(std::string(e.what()), "row 1: opportunity '99' is not in the event log");
  }
  const auto lenient =
      sf::activity_log::from_columns(log, c, {sf::validation::lenient, sf::after_terminal::error});
  EXPECT_EQ(lenient.size(), 1u);
  ASSERT_EQ(lenient.report().rejected.size(), 1u);
  EXPECT_EQ(lenient.report().rejected[0].row, 1);
  // Columns of the wrong length are refused before any row is read.
  const std::vector<sf::time_point> short_time{day(1)};
  c.time = short_time;
  EXPECT_THROW((void)sf::activity_log::from_columns(log, c), sf::data_error);
}

// Issue 13, item 11: rows whose cells the caller could not parse ('yesterday' as a time).
TEST(activity_log, unparsed_rows_are_errors_or_rejections) {
  const auto log = small_log();
  const std::vector<std::int64_t> opp{7, 7, 8};
  const std::vector<sf::time_point> when{day(1), sf::missing_time, day(3)};
  const std::vector<std::int32_t> kind{0, 0, 0};
  const std::vector<std::string> kinds{"call"};
  const std::vector<sf::rejected_row> bad{{1, "time", "time value 'yesterday' is not a time"}};
  sf::activity_columns c;
  c.opportunity = opp;
  c.time = when;
  c.kind = kind;
  c.kind_names = kinds;
  c.unparsed = bad;
  try {
    (void)sf::activity_log::from_columns(log, c);
    FAIL() << "expected data_error";
  } catch (const sf::data_error& e) {
    EXPECT_EQ(e.row(), 1);
    EXPECT_EQ(e.column(), "time");
    EXPECT_EQ(std::string(e.what()), "row 1: time value 'yesterday' is not a time");
  }
  const auto lenient =
      sf::activity_log::from_columns(log, c, {sf::validation::lenient, sf::after_terminal::error});
  // Rows 0 (7 at day 1) and 2 (8 at day 3) are kept.
  EXPECT_EQ(std::vector<sf::time_point>(lenient.times().begin(), lenient.times().end()),
            (std::vector<sf::time_point>{day(1), day(3)}));
  ASSERT_EQ(lenient.report().rejected.size(), 1u);
  EXPECT_EQ(lenient.report().rejected[0].row, 1);
  EXPECT_EQ(lenient.report().rejected[0].reason, "time value 'yesterday' is not a time");
}
