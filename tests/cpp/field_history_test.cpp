// field_history::at: the value in force at a time, by a scan for few changes and a binary search
// for many, on a deal with thousands of changes.
#include "test_support.hpp"

#include <smartfunnel/event_log.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

TEST(field_history, value_in_force_with_thousands_of_changes) {
  // Opportunity 0: 3 changes (the scan); opportunity 1: 5000 changes at times 10, 20, ..., with
  // two changes at each multiple of 1000 (the later one wins); opportunity 2: none.
  sf::field_history<double> h;
  h.offset = {0};
  for (int i = 0; i < 3; ++i) {
    h.time.push_back(100 * (i + 1));
    h.value.push_back(-i);
  }
  h.offset.push_back(h.time.size());
  for (int i = 1; i <= 5000; ++i) {
    h.time.push_back(10 * i);
    h.value.push_back(i);
    if (i % 100 == 0) {
      h.time.push_back(10 * i);
      h.value.push_back(-i);
    }
  }
  h.offset.push_back(h.time.size());
  h.offset.push_back(h.time.size());
  // By hand: at time t the last change is i = floor(t / 10) (none before 10), negated on ties.
  auto want = [](std::int64_t t) -> std::optional<double> {
    const std::int64_t i = t / 10;
    if (t < 10) return std::nullopt;
    if (i > 5000) return -5000.0;
    return i % 100 == 0 ? -static_cast<double>(i) : static_cast<double>(i);
  };
  for (std::int64_t t = -5; t <= 50'020; t += 5) EXPECT_EQ(h.at(1, t), want(t)) << t;
  EXPECT_EQ(h.at(0, 99), std::nullopt);
  EXPECT_EQ(h.at(0, 100), 0.0);
  EXPECT_EQ(h.at(0, 250), -1.0);
  EXPECT_EQ(h.at(0, 1'000'000), -2.0);
  EXPECT_EQ(h.at(2, 1'000'000), std::nullopt);
}

TEST(field_history, amounts_of_a_deal_synced_every_hour) {
  // One deal whose amount is rewritten at every hourly sync for 4000 hours: the log keeps each
  // change and answers the amount at any time.
  const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  table t;
  for (int i = 0; i < 4000; ++i) t.add(7, "A", day(0, i), 1000.0 + i, "ana");
  const auto log = t.log(f);
  ASSERT_EQ(log.amounts().time.size(), 4000u); // every change kept: the binary search answers
  for (int i = 0; i < 4000; i += 37) {
    EXPECT_EQ(log.amounts().at(0, day(0, i)), 1000.0 + i) << i;
    EXPECT_EQ(log.amounts().at(0, day(0, i) + 3599), 1000.0 + i) << i;
  }
  EXPECT_EQ(log.amounts().at(0, day(0) - 1), std::nullopt);
}
