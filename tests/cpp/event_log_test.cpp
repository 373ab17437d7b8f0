// Tests of smartfunnel::event_log: ingestion, validation (strict and lenient), ordering,
// duplicates, the after-terminal rule, field histories, append and the row-by-row builder.
// Every expectation is worked out from the input rows in the comments, never read off the code.
#include "test_support.hpp"

#include <smartfunnel/detail/string_interner.hpp>
#include <smartfunnel/error.hpp>
#include <smartfunnel/event_log.hpp>
#include <smartfunnel/funnel_model.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {

// Codes: Lead 0, Qualified 1, Proposal 2, Won 3, Lost 4, Disqualified 5.
sf::funnel enterprise() {
  return sf::funnel({"Lead", "Qualified", "Proposal"}, {"Won"}, {"Lost", "Disqualified"}, "enterprise");
}

template <class T>
std::vector<T> vec(std::span<const T> s) {
  return {s.begin(), s.end()};
}

// The events of dense opportunity `o` as (time, stage code) pairs.
std::vector<std::pair<sf::time_point, int>> events_of(const sf::event_log& log, std::size_t o) {
  std::vector<std::pair<sf::time_point, int>> out;
  for (auto k = log.offsets()[o]; k < log.offsets()[o + 1]; ++k)
    out.emplace_back(log.times()[k], static_cast<int>(log.stages()[k]));
  return out;
}

using ev = std::vector<std::pair<sf::time_point, int>>;

// Runs `make` and returns the data_error it throws (row, column, what), failing if none.
struct caught {
  std::int64_t row = -2;
  std::string column, what;
  bool unknown_stage = false;
};
template <class Make>
caught catch_data_error(Make make) {
  caught c;
  try {
    (void)make();
    ADD_FAILURE() << "expected a data_error";
  } catch (const sf::unknown_stage& e) {
    c = {e.row(), e.column(), e.what(), true};
  } catch (const sf::data_error& e) {
    c = {e.row(), e.column(), e.what(), false};
  }
  return c;
}

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

} // namespace

// ---------------------------------------------------------------------------------------------
// Ingestion

TEST(event_log, ingests_integer_ids_in_order_of_first_appearance) {
  table t;
  t.add(42, "Lead", day(0))         // r0
      .add(7, "Lead", day(1))       // r1
      .add(42, "Qualified", day(3)) // r2
      .add(7, "Lost", day(4))       // r3
      .add(42, "Won", day(9));      // r4
  const auto log = t.log(enterprise());
  // Dense ids: 42 appears first (0), then 7 (1).
  EXPECT_FALSE(log.string_ids());
  ASSERT_EQ(log.n_opportunities(), 2u);
  EXPECT_EQ(vec(log.int_ids()), (std::vector<std::int64_t>{42, 7}));
  EXPECT_EQ(log.n_events(), 5u);
  EXPECT_EQ(vec(log.offsets()), (std::vector<std::uint64_t>{0, 3, 5}));
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(3), 1}, {day(9), 3}}));
  EXPECT_EQ(events_of(log, 1), (ev{{day(1), 0}, {day(4), 4}}));
  // created defaults to the first stage event.
  EXPECT_EQ(vec(log.created()), (std::vector<sf::time_point>{day(0), day(1)}));
  EXPECT_EQ(log.first_time(), day(0));
  EXPECT_EQ(log.last_time(), day(9));
  EXPECT_EQ(log.index_of(std::int64_t{42}), 0u);
  EXPECT_EQ(log.index_of(std::int64_t{7}), 1u);
  EXPECT_EQ(log.id_label(1), "7");
  EXPECT_THROW((void)log.index_of(std::int64_t{8}), sf::unknown_opportunity);
  EXPECT_THROW((void)log.index_of(std::string_view("42")), sf::unknown_opportunity);
  EXPECT_FALSE(log.has_amounts());
  EXPECT_FALSE(log.has_owners());
  const auto& r = log.report();
  EXPECT_EQ(r.rows_read, 5u);
  EXPECT_EQ(r.rows_kept, 5u);
  EXPECT_EQ(r.duplicates_collapsed, 0u);
  EXPECT_EQ(r.reopened, 0u);
  EXPECT_TRUE(r.rejected.empty());
}

TEST(event_log, ingests_string_ids_through_opportunity_name_codes) {
  // opportunity_names holds an unused name ("globex"); codes refer into it out of order.
  // Input stage names are in another order than the funnel and hold an unused unknown name.
  const std::vector<std::string> opp_names{"acme", "globex", "initech"};
  const std::vector<std::string> stage_names{"Won", "Bogus", "Lead"};
  const std::vector<std::int64_t> opp{2, 0, 2};
  const std::vector<std::int32_t> stage{2, 2, 0};
  const std::vector<sf::time_point> time{day(0), day(1), day(6)};
  sf::event_columns c;
  c.opportunity = opp;
  c.opportunity_names = opp_names;
  c.stage = stage;
  c.stage_names = stage_names;
  c.time = time;
  const auto log = sf::event_log::from_columns(enterprise(), c);
  EXPECT_TRUE(log.string_ids());
  // initech appears first, then acme; globex never appears.
  EXPECT_EQ(vec(log.string_id_values()), (std::vector<std::string>{"initech", "acme"}));
  EXPECT_EQ(log.index_of("acme"), 1u);
  EXPECT_EQ(log.index_of("initech"), 0u);
  EXPECT_EQ(log.id_label(0), "initech");
  EXPECT_THROW((void)log.index_of("globex"), sf::unknown_opportunity);
  EXPECT_THROW((void)log.index_of(std::int64_t{0}), sf::unknown_opportunity);
  // Stage names are mapped by name: "Lead" (input code 2) is funnel code 0, "Won" is 3.
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(6), 3}}));
  EXPECT_EQ(events_of(log, 1), (ev{{day(1), 0}}));
}

TEST(event_log, sorts_by_opportunity_then_time_then_input_order) {
  table t;
  t.add(1, "Proposal", day(5))     // r0
      .add(2, "Lead", day(2))      // r1
      .add(1, "Lead", day(0))      // r2
      .add(1, "Qualified", day(5)) // r3: same time as r0, later in the input
      .add(2, "Qualified", day(3)) // r4
      .add(1, "Won", day(7));      // r5
  const auto log = t.log(enterprise());
  EXPECT_EQ(vec(log.int_ids()), (std::vector<std::int64_t>{1, 2}));
  // Opportunity 1: r2 (day 0), then r0 and r3 at day 5 in input order, then r5.
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(5), 2}, {day(5), 1}, {day(7), 3}}));
  EXPECT_EQ(events_of(log, 1), (ev{{day(2), 0}, {day(3), 1}}));
  EXPECT_EQ(log.created()[0], day(0)); // the earliest event, not the first row
}

// Shuffled rows of many opportunities, ids given three ways: compact (a dense range, even at the
// bottom of the int64 range), sparse (spread over the whole int64 range, extremes included) and
// compact again with one far-away id. Ingestion must give the same log up to the ids: opportunities
// in order of first appearance, each one's rows ordered by time then input row. The expectation is
// built here from the rows with std::map and std::stable_sort.
TEST(event_log, groups_shuffled_rows_the_same_whatever_the_spread_of_integer_ids) {
  std::mt19937_64 rng(7);
  struct row {
    std::size_t opp;
    int stage;
    sf::time_point time;
  };
  std::vector<row> rows;
  const std::size_t n_opp = 3000;
  for (std::size_t o = 0; o < n_opp; ++o) {
    // Mostly a few rows; every 500th opportunity has 100 (past the short-range sort).
    const std::size_t k = o % 500 == 0 ? 100 : 1 + rng() % 6;
    for (std::size_t j = 0; j < k; ++j)
      // Open stages only (no terminal rule); times collide often (ties keep input order), and a
      // tie of equal stages is a duplicate unless the stages differ, so the stage follows j.
      rows.push_back(
          {o, static_cast<int>(j % 3), sf::time_point{86400} * static_cast<sf::time_point>(rng() % 8)});
  }
  std::shuffle(rows.begin(), rows.end(), rng);
  // Drop rows repeating (opportunity, stage, time): they would be collapsed as duplicates.
  {
    std::set<std::tuple<std::size_t, int, sf::time_point>> seen;
    std::erase_if(rows, [&](const row& r) { return !seen.insert({r.opp, r.stage, r.time}).second; });
  }
  constexpr auto lo = std::numeric_limits<std::int64_t>::min();
  constexpr auto hi = std::numeric_limits<std::int64_t>::max();
  const std::vector<std::function<std::int64_t(std::size_t)>> id_kinds = {
      [](std::size_t o) { return static_cast<std::int64_t>(o) + 1000; },
      [lo](std::size_t o) { return lo + static_cast<std::int64_t>(o); },
      [lo, hi](std::size_t o) {
        return o == 0 ? lo : o == 1 ? hi : static_cast<std::int64_t>(o * 0x9E3779B97F4A7C15ull);
      },
      [hi](std::size_t o) { return o == 5 ? hi : static_cast<std::int64_t>(o); },
  };
  // Expected: opportunities by first appearance, rows by (time, input row).
  std::vector<std::size_t> first_order;
  std::map<std::size_t, std::vector<std::size_t>> rows_of;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (!rows_of.contains(rows[r].opp)) first_order.push_back(rows[r].opp);
    rows_of[rows[r].opp].push_back(r);
  }
  for (auto& [o, rs] : rows_of)
    std::stable_sort(rs.begin(), rs.end(),
                     [&](std::size_t a, std::size_t b) { return rows[a].time < rows[b].time; });
  for (const auto& id_of : id_kinds) {
    table t;
    for (const auto& r : rows)
      t.add(id_of(r.opp), enterprise().names()[static_cast<std::size_t>(r.stage)], r.time);
    const auto log = t.log(enterprise());
    ASSERT_EQ(log.n_opportunities(), first_order.size());
    ASSERT_EQ(log.n_events(), rows.size());
    for (std::size_t d = 0; d < first_order.size(); ++d) {
      const auto o = first_order[d];
      ASSERT_EQ(log.int_ids()[d], id_of(o)) << "dense " << d;
      ev expected;
      for (auto r : rows_of[o]) expected.emplace_back(rows[r].time, rows[r].stage);
      ASSERT_EQ(events_of(log, d), expected) << "opportunity " << id_of(o);
    }
  }
}

TEST(event_log, keeps_consecutive_events_in_the_same_stage) {
  // They are distinct events (e.g. a field change recorded with the stage); only the fit merges
  // them into one stay (see funnel_model_test).
  table t;
  t.add(1, "Lead", day(0)).add(1, "Lead", day(2)).add(1, "Qualified", day(5));
  const auto log = t.log(enterprise());
  EXPECT_EQ(log.n_events(), 3u);
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(2), 0}, {day(5), 1}}));
  EXPECT_EQ(log.report().duplicates_collapsed, 0u);
}

TEST(event_log, collapses_identical_rows_and_counts_them) {
  table t;
  t.add(1, "Lead", day(0), 100, "ann")          // r0
      .add(1, "Lead", day(0), 100, "ann")       // r1: identical to r0
      .add(1, "Qualified", day(2), 100, "ann")  // r2
      .add(1, "Lead", day(0), 100, "ann")       // r3: identical to r0 again
      .add(1, "Qualified", day(5), 200, "ann"); // r4
  const auto log = t.log(enterprise());
  // Events: Lead d0 (r0, r1, r3 as one), Qualified d2 (r2), Qualified d5 (r4).
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(2), 1}, {day(5), 1}}));
  const auto& r = log.report();
  EXPECT_EQ(r.rows_read, 5u);
  EXPECT_EQ(r.duplicates_collapsed, 2u);
  EXPECT_EQ(r.rows_kept, 5u); // duplicates included
  EXPECT_TRUE(r.rejected.empty());
  // Amount history: 100 from day 0, 200 from day 5.
  EXPECT_EQ(log.amounts().value, (std::vector<double>{100, 200}));
  EXPECT_EQ(log.amounts().time, (std::vector<sf::time_point>{day(0), day(5)}));
}

// Issue 13, item 4: rows with the same opportunity, stage and time but different amounts were
// kept as two events, reported nowhere.
TEST(event_log, strict_same_stage_entry_with_different_amounts_names_both_rows) {
  table t;
  t.add(1, "Lead", day(0), 100, "ann")          // r0
      .add(1, "Qualified", day(2), 100, "ann")  // r1
      .add(1, "Qualified", day(2), 200, "ann"); // r2: the same stage entry as r1, amount 200
  const auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_EQ(e.row, 1);
  EXPECT_EQ(e.column, "amount");
  EXPECT_THAT(e.what, AllOf(HasSubstr("row 1:"), HasSubstr("'Qualified'"), HasSubstr("row 1 and row 2"),
                            HasSubstr("(100 and 200)"), HasSubstr("lenient")));
}

TEST(event_log, lenient_same_stage_entry_keeps_the_later_row_and_rejects_the_earlier) {
  table t;
  t.add(1, "Lead", day(0), 10, "ann")         // r0
      .add(1, "Qualified", day(0), 10, "ann") // r1: same time, another stage
      .add(1, "Lead", day(0), 20, "ann")      // r2: the same stage entry as r0, amount 20
      .add(1, "Lead", day(0), 30.5, "bob")    // r3: again, amount 30.5 and owner bob (kept)
      .add(1, "Won", day(4), 30.5, "bob");    // r4
  const auto log = t.log(enterprise(), {sf::validation::lenient});
  // Lead d0 keeps its place before Qualified d0 (where r0 put it) with r3's fields.
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(0), 1}, {day(4), 3}}));
  const auto& r = log.report();
  ASSERT_EQ(r.rejected.size(), 2u);
  EXPECT_EQ(r.rejected[0].row, 0);
  EXPECT_EQ(r.rejected[0].column, "amount");
  EXPECT_THAT(r.rejected[0].reason, AllOf(HasSubstr("row 0 and row 3"), HasSubstr("(10 and 30.5)"),
                                          HasSubstr("the later row is kept")));
  EXPECT_EQ(r.rejected[1].row, 2);
  EXPECT_THAT(r.rejected[1].reason, HasSubstr("(20 and 30.5)"));
  EXPECT_EQ(r.rows_kept, 3u);
  EXPECT_EQ(r.duplicates_collapsed, 0u);
  // r1 (Qualified, 10, ann) is an event of its own at d0: the amount at d0 is 10 from the Lead
  // entry (r3: 30.5) then r1 (10), then 30.5 again at d4; the owner bob, ann, bob.
  EXPECT_EQ(log.amounts().value, (std::vector<double>{30.5, 10, 30.5}));
  EXPECT_EQ(log.amounts().time, (std::vector<sf::time_point>{day(0), day(0), day(4)}));
  EXPECT_EQ(log.owners().value.size(), 3u);
}

TEST(event_log, same_stage_entry_differing_in_the_owner_or_close_date_is_a_conflict) {
  table t;
  t.add(1, "Lead", day(0), 10, "ann").add(1, "Lead", day(0), 10, "bob");
  const auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_EQ(e.row, 0);
  EXPECT_EQ(e.column, "owner");
  EXPECT_THAT(e.what, HasSubstr("('ann' and 'bob')"));
  const auto lenient = t.log(enterprise(), {sf::validation::lenient});
  EXPECT_EQ(lenient.n_events(), 1u);
  EXPECT_EQ(lenient.owner_names()[lenient.owners().value.at(0)], "bob");

  table c;
  c.add(2, "Lead", day(0)).add(2, "Lead", day(0));
  c.close_date = {day(30), day(40)};
  const auto ce = catch_data_error([&] { return c.log(enterprise()); });
  EXPECT_EQ(ce.column, "close_date");
  EXPECT_THAT(ce.what, HasSubstr("(" + std::to_string(day(30)) + " and " + std::to_string(day(40)) + ")"));
  const auto cl = c.log(enterprise(), {sf::validation::lenient});
  EXPECT_EQ(cl.close_dates().value, (std::vector<sf::time_point>{day(40)}));
}

TEST(event_log, append_row_conflicting_with_an_existing_event_keeps_the_new_row) {
  table base;
  base.add(1, "Lead", day(0), 10, "ann").add(1, "Qualified", day(3), 10, "ann");
  table more;
  more.add(1, "Qualified", day(3), 15, "ann"); // the existing Qualified entry, amount 15
  const auto log = base.log(enterprise());
  const auto e = catch_data_error([&] { return log.append(more.columns()); });
  EXPECT_EQ(e.column, "amount");
  EXPECT_THAT(e.what, AllOf(HasSubstr("existing event 1"), HasSubstr("row 0"), HasSubstr("(10 and 15)")));
  const auto lenient = log.append(more.columns(), {sf::validation::lenient});
  EXPECT_EQ(lenient.n_events(), 2u);
  EXPECT_EQ(lenient.amounts().value, (std::vector<double>{10, 15}));
  ASSERT_EQ(lenient.report().rejected.size(), 1u);
  EXPECT_EQ(lenient.report().rejected[0].row, -1); // the log's last event
}

TEST(event_log, collapses_identical_rows_that_are_not_adjacent_after_sorting) {
  // r0 and r2 are identical (same opportunity, stage, time, no other fields); r1 sits between
  // them at the same time. Sorting by (time, input order) gives r0, r1, r2.
  table t;
  t.add(1, "Lead", day(0)).add(1, "Qualified", day(0)).add(1, "Lead", day(0));
  const auto log = t.log(enterprise());
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(0), 1}}));
  EXPECT_EQ(log.report().duplicates_collapsed, 1u);
}

// ---------------------------------------------------------------------------------------------
// After a terminal event

TEST(event_log, strict_event_after_terminal_names_row_and_opportunity) {
  table t;
  t.add(5, "Qualified", day(4)) // r0: after r2's Won in time
      .add(5, "Lead", day(0))   // r1
      .add(5, "Won", day(3))    // r2
      .add(6, "Lead", day(0));  // r3
  const auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_EQ(e.row, 0);
  EXPECT_EQ(e.column, "stage");
  EXPECT_THAT(e.what, AllOf(HasSubstr("row 0"), HasSubstr("'5'"), HasSubstr("'Qualified'"),
                            HasSubstr("'Won'"), HasSubstr("row 2")));
}

TEST(event_log, reopen_policy_accepts_and_counts_reopenings) {
  table t;
  t.add(5, "Qualified", day(4))
      .add(5, "Lead", day(0))
      .add(5, "Won", day(3))
      .add(5, "Lost", day(8))     // closes again after the reopening
      .add(5, "Proposal", day(9)) // and reopens a second time
      .add(6, "Lead", day(0));
  const auto log = t.log(enterprise(), {sf::validation::strict, sf::after_terminal::reopen});
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(3), 3}, {day(4), 1}, {day(8), 4}, {day(9), 2}}));
  EXPECT_EQ(log.report().reopened, 2u);
  EXPECT_EQ(log.report().rows_kept, 6u);
  EXPECT_TRUE(log.report().rejected.empty());
}

TEST(event_log, lenient_after_terminal_drops_only_the_late_rows) {
  table t;
  t.add(5, "Lead", day(0)).add(5, "Lost", day(2)).add(5, "Qualified", day(3)).add(5, "Proposal", day(4));
  const auto log = t.log(enterprise(), {sf::validation::lenient, sf::after_terminal::error});
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(2), 4}}));
  ASSERT_EQ(log.report().rejected.size(), 2u);
  EXPECT_EQ(log.report().rejected[0].row, 2);
  EXPECT_EQ(log.report().rejected[1].row, 3);
  EXPECT_EQ(log.report().rejected[0].column, "stage");
  EXPECT_EQ(log.report().rows_kept, 2u);
}

// ---------------------------------------------------------------------------------------------
// Row validation

TEST(event_log, unknown_stage_names_row_stage_and_funnel) {
  table t;
  t.add(1, "Lead", day(0)).add(1, "Qualified", day(1)).add(2, "Lead", day(0)).add(2, "Demo", day(2));
  const auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_TRUE(e.unknown_stage);
  EXPECT_EQ(e.row, 3);
  EXPECT_EQ(e.column, "stage");
  EXPECT_THAT(e.what, AllOf(HasSubstr("row 3"), HasSubstr("'Demo'"), HasSubstr("'enterprise'")));
}

TEST(event_log, missing_stage_and_missing_opportunity_are_rejected) {
  table t;
  t.add(1, "Lead", day(0)).add(1, "Qualified", day(1));
  t.stage[1] = sf::missing_code;
  const auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_FALSE(e.unknown_stage);
  EXPECT_EQ(e.row, 1);
  EXPECT_EQ(e.column, "stage");

  table s;
  s.add("a", "Lead", day(0)).add("b", "Lead", day(0));
  s.opp[0] = sf::missing_code;
  const auto m = catch_data_error([&] { return s.log(enterprise()); });
  EXPECT_EQ(m.row, 0);
  EXPECT_EQ(m.column, "opportunity");
  EXPECT_THAT(m.what, HasSubstr("row 0"));
}

TEST(event_log, missing_time_is_rejected) {
  table t;
  t.add(1, "Lead", day(0)).add(9, "Lead", sf::missing_time);
  const auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_EQ(e.row, 1);
  EXPECT_EQ(e.column, "time");
  EXPECT_THAT(e.what, AllOf(HasSubstr("row 1"), HasSubstr("'9'")));
}

TEST(event_log, non_finite_or_negative_amounts_are_rejected) {
  for (double bad : {NaN, -1.0, inf, -inf, -0.01}) {
    table t;
    t.add(1, "Lead", day(0), 10.0, "ann").add(1, "Qualified", day(1), bad, "ann");
    const auto e = catch_data_error([&] { return t.log(enterprise()); });
    EXPECT_EQ(e.row, 1) << bad;
    EXPECT_EQ(e.column, "amount") << bad;
    EXPECT_THAT(e.what, HasSubstr("row 1")) << bad;
  }
  // Zero is a valid amount.
  table ok;
  ok.add(1, "Lead", day(0), 0.0, "ann");
  EXPECT_NO_THROW((void)ok.log(enterprise()));
}

TEST(event_log, conflicting_static_attribute_values_are_rejected) {
  table t;
  t.add(1, "Lead", day(0)).add(2, "Lead", day(0)).add(1, "Qualified", day(2)).add(1, "Won", day(3));
  const std::vector<std::string> seg_names{"SMB", "ENT"};
  // r0 SMB, r1 ENT, r2 (missing: fine), r3 ENT: conflicts with r0's SMB for opportunity 1.
  const std::vector<std::int32_t> seg{0, 1, sf::missing_code, 1};
  auto c = t.columns();
  c.attributes.push_back({"segment", seg, seg_names});
  const auto e = catch_data_error([&] { return sf::event_log::from_columns(enterprise(), c); });
  EXPECT_EQ(e.row, 3);
  EXPECT_EQ(e.column, "segment");
  EXPECT_THAT(e.what, AllOf(HasSubstr("row 3"), HasSubstr("'ENT'"), HasSubstr("'SMB'"), HasSubstr("'1'")));

  // Without the conflict the attribute is stored per opportunity.
  const std::vector<std::int32_t> seg_ok{0, 1, sf::missing_code, sf::missing_code};
  c.attributes[0].code = seg_ok;
  const auto log = sf::event_log::from_columns(enterprise(), c);
  ASSERT_EQ(log.find_attribute("segment"), 0u);
  EXPECT_EQ(log.find_attribute("region"), std::nullopt);
  EXPECT_EQ(log.attributes()[0].code, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(log.attributes()[0].values[1], "ENT");
}

TEST(event_log, created_time_must_be_constant_and_not_after_the_first_event) {
  table t;
  t.add(1, "Lead", day(2)).add(1, "Qualified", day(5));
  t.created = {day(1), day(3)}; // conflicting created times
  auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_EQ(e.row, 1);
  EXPECT_EQ(e.column, "created");

  t.created = {day(3), sf::missing_time}; // created after the first event (day 2)
  e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_EQ(e.row, 0);
  EXPECT_EQ(e.column, "time");

  t.created = {sf::missing_time, day(1)}; // given on one row only: applies to the opportunity
  const auto log = t.log(enterprise());
  EXPECT_EQ(log.created()[0], day(1));
}

TEST(event_log, columns_of_the_wrong_length_are_rejected) {
  table t;
  t.add(1, "Lead", day(0)).add(1, "Qualified", day(1));
  t.amount = {1.0}; // 1 row, expected 2
  auto e = catch_data_error([&] { return t.log(enterprise()); });
  EXPECT_EQ(e.row, -1);
  EXPECT_EQ(e.column, "amount");

  table u;
  u.add(1, "Lead", day(0));
  u.stage.clear(); // a required column left empty
  e = catch_data_error([&] { return u.log(enterprise()); });
  EXPECT_EQ(e.row, -1);
  EXPECT_EQ(e.column, "stage");

  table v;
  v.add(1, "Lead", day(0));
  v.time.clear();
  e = catch_data_error([&] { return v.log(enterprise()); });
  EXPECT_EQ(e.column, "time");
}

TEST(event_log, lenient_mode_reports_exactly_the_bad_rows) {
  table t;
  t.add("a", "Lead", day(0), 10, "ann")             // r0  ok
      .add("a", "Demo", day(1), 10, "ann")          // r1  unknown stage
      .add("b", "Lead", sf::missing_time, 5, "ann") // r2  missing time
      .add("b", "Lead", day(2), NaN, "ann")         // r3  NaN amount
      .add("c", "Lead", day(0), -1, "ann")          // r4  negative amount
      .add("c", "Lead", day(1), inf, "ann")         // r5  infinite amount
      .add("x", "Lead", day(1), 1, "ann")           // r6  opportunity made missing below
      .add("a", "Won", day(5), 10, "ann")           // r7  ok
      .add("a", "Qualified", day(6), 10, "ann")     // r8  after Won
      .add("b", "Lead", day(3), 5, "bob")           // r9  ok
      .add("b", "Qualified", day(4), 5, "bob")      // r10 segment conflicts with r9
      .add("d", "Lead", day(1), 1, "bob");          // r11 stage made missing below
  t.opp[6] = sf::missing_code;
  t.stage[11] = sf::missing_code;
  const std::vector<std::string> seg_names{"SMB", "ENT"};
  const std::int32_t M = sf::missing_code;
  const std::vector<std::int32_t> seg{0, M, M, M, M, M, M, 0, M, 1, 0, M};
  auto c = t.columns();
  c.attributes.push_back({"segment", seg, seg_names});
  const auto log =
      sf::event_log::from_columns(enterprise(), c, {sf::validation::lenient, sf::after_terminal::error});

  std::vector<std::pair<std::int64_t, std::string>> got;
  for (const auto& r : log.report().rejected) {
    got.emplace_back(r.row, r.column);
    EXPECT_FALSE(r.reason.empty()) << r.row;
  }
  const std::vector<std::pair<std::int64_t, std::string>> expected{
      {1, "stage"},       {2, "time"},  {3, "amount"},   {4, "amount"}, {5, "amount"},
      {6, "opportunity"}, {8, "stage"}, {10, "segment"}, {11, "stage"}};
  EXPECT_EQ(got, expected);
  // Kept: a = r0, r7; b = r9. "c", "x" and "d" have no valid row and do not exist.
  EXPECT_EQ(vec(log.string_id_values()), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(5), 3}}));
  EXPECT_EQ(events_of(log, 1), (ev{{day(3), 0}}));
  EXPECT_EQ(log.attributes()[0].code, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(log.report().rows_read, 12u);
  EXPECT_EQ(log.report().rows_kept, 3u);
  // The reasons say what was found.
  EXPECT_THAT(log.report().rejected[0].reason, HasSubstr("'Demo'"));
}

TEST(event_log, repeated_names_in_a_name_column_mean_the_same_value) {
  // Name columns may repeat a name (e.g. one name per row, code = row). The same name is the same
  // opportunity, the same stage, the same owner and the same attribute value.
  const std::vector<std::string> opp_names{"acme", "globex", "acme"};
  const std::vector<std::string> stage_names{"Lead", "Qualified", "Lead"};
  const std::vector<std::string> owner_names{"ann", "ann"};
  const std::vector<std::string> seg_names{"SMB", "ENT", "SMB"};
  const std::vector<std::int64_t> opp{0, 1, 2};
  const std::vector<std::int32_t> stage{0, 2, 1};
  const std::vector<sf::time_point> time{day(0), day(1), day(2)};
  const std::vector<std::int32_t> owner{0, 1, 1};
  const std::vector<std::int32_t> seg{0, 1, 2};
  sf::event_columns c;
  c.opportunity = opp;
  c.opportunity_names = opp_names;
  c.stage = stage;
  c.stage_names = stage_names;
  c.time = time;
  c.owner = owner;
  c.owner_names = owner_names;
  c.attributes.push_back({"segment", seg, seg_names});
  const auto log = sf::event_log::from_columns(enterprise(), c); // rows 0 and 2: both SMB, no conflict
  // acme: Lead d0, Qualified d2; globex: Lead d1.
  EXPECT_EQ(vec(log.string_id_values()), (std::vector<std::string>{"acme", "globex"}));
  ASSERT_EQ(log.n_opportunities(), 2u);
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}, {day(2), 1}}));
  EXPECT_EQ(log.index_of("acme"), 0u);
  EXPECT_EQ(log.owners().value.size(), 2u); // one "ann" per opportunity: no change within acme
  const auto& a = log.attributes()[0];
  EXPECT_EQ(a.values[static_cast<std::uint32_t>(a.code[0])], "SMB");
  EXPECT_EQ(a.values[static_cast<std::uint32_t>(a.code[1])], "ENT");
  // Grouping by the attribute sees two groups, not three.
  sf::fit_options o;
  o.groups = {"segment"};
  o.draws = 0;
  const auto model = sf::fit(log, o);
  EXPECT_EQ(model.groups().size(), 3u);
  EXPECT_TRUE(model.find_group({"SMB"}).has_value());
}

// ---------------------------------------------------------------------------------------------
// Field histories

TEST(event_log, field_history_records_changes_only_and_at_returns_the_value_in_force) {
  table t;
  // Opportunity 1 (rows shuffled in time), opportunity 2.
  t.add(1, "Lead", day(0), 100, "ann")         // r0
      .add(1, "Proposal", day(9), 150, "bob")  // r1
      .add(1, "Qualified", day(5), 100, "bob") // r2
      .add(2, "Lead", day(1), 50, "ann")       // r3
      .add(1, "Won", day(20), 150, "bob");     // r4
  t.close_date = {day(90), sf::missing_time, day(90), sf::missing_time, day(120)};
  const auto log = t.log(enterprise());
  ASSERT_TRUE(log.has_amounts());
  ASSERT_TRUE(log.has_owners());
  // Sorted opportunity 1: Lead d0 (100, ann, close d90), Qualified d5 (100, bob, d90),
  // Proposal d9 (150, bob, none given), Won d20 (150, bob, d120).
  const auto& a = log.amounts();
  EXPECT_EQ(a.offset, (std::vector<std::uint64_t>{0, 2, 3}));
  EXPECT_EQ(a.time, (std::vector<sf::time_point>{day(0), day(9), day(1)}));
  EXPECT_EQ(a.value, (std::vector<double>{100, 150, 50}));
  const auto& w = log.owners();
  const auto ann = *log.owner_names().find("ann"), bob = *log.owner_names().find("bob");
  EXPECT_EQ(w.offset, (std::vector<std::uint64_t>{0, 2, 3}));
  EXPECT_EQ(w.time, (std::vector<sf::time_point>{day(0), day(5), day(1)}));
  EXPECT_EQ(w.value, (std::vector<std::uint32_t>{ann, bob, ann}));
  const auto& cd = log.close_dates();
  EXPECT_EQ(cd.offset, (std::vector<std::uint64_t>{0, 2, 2}));
  EXPECT_EQ(cd.time, (std::vector<sf::time_point>{day(0), day(20)}));
  EXPECT_EQ(cd.value, (std::vector<sf::time_point>{day(90), day(120)}));

  // at(opp, t): the last change at or before t.
  EXPECT_EQ(a.at(0, day(0) - 1), std::nullopt);
  EXPECT_EQ(a.at(0, day(0)), 100.0);
  EXPECT_EQ(a.at(0, day(9) - 1), 100.0);
  EXPECT_EQ(a.at(0, day(9)), 150.0);
  EXPECT_EQ(a.at(0, day(1000)), 150.0);
  EXPECT_EQ(a.at(1, day(0)), std::nullopt);
  EXPECT_EQ(a.at(1, day(1)), 50.0);
  EXPECT_EQ(w.at(0, day(5) - 1), ann);
  EXPECT_EQ(w.at(0, day(5)), bob);
  EXPECT_EQ(cd.at(0, day(10)), day(90)); // "none given" at day 9 does not erase the value
  EXPECT_EQ(cd.at(0, day(20)), day(120));
  EXPECT_EQ(cd.at(1, day(50)), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// append and the builder

TEST(event_log, append_equals_building_from_all_rows_at_once) {
  table base;
  base.add(1, "Lead", day(0), 100, "ann")
      .add(1, "Qualified", day(3), 100, "ann")
      .add(2, "Lead", day(1), 40, "bob");
  table more;
  more.add(2, "Qualified", day(4), 45, "bob")
      .add(1, "Won", day(8), 120, "ann")
      .add(3, "Lead", day(5), 70, "cid")
      .add(3, "Lead", day(5), 70, "cid"); // duplicate
  table all;
  for (const auto* part : {&base, &more})
    for (std::size_t r = 0; r < part->opp.size(); ++r)
      all.add(part->opp[r], part->stage_names[static_cast<std::size_t>(part->stage[r])], part->time[r],
              part->amount[r], part->owner_names[static_cast<std::size_t>(part->owner[r])]);
  const auto f = enterprise();
  const auto once = all.log(f);
  const auto appended = base.log(f).append(more.columns());
  EXPECT_TRUE(appended == once);
  EXPECT_EQ(appended.n_events(), 6u);
  EXPECT_EQ(appended.report().rows_read, 7u);
  EXPECT_EQ(appended.report().rows_kept, 7u);
  EXPECT_EQ(appended.report().duplicates_collapsed, 1u);
  // Appending to an appended log keeps the history of both.
  table last;
  last.add(3, "Lost", day(9), 70, "cid");
  all.add(3, "Lost", day(9), 70, "cid");
  EXPECT_TRUE(appended.append(last.columns()) == all.log(f));
}

TEST(event_log, append_with_string_ids) {
  table base;
  base.add("acme", "Lead", day(0)).add("globex", "Lead", day(1));
  table more;
  more.add("initech", "Lead", day(2)).add("acme", "Qualified", day(3));
  table all;
  all.add("acme", "Lead", day(0))
      .add("globex", "Lead", day(1))
      .add("initech", "Lead", day(2))
      .add("acme", "Qualified", day(3));
  const auto f = enterprise();
  const auto appended = base.log(f).append(more.columns());
  EXPECT_TRUE(appended == all.log(f));
  EXPECT_EQ(appended.index_of("initech"), 2u);
  // Mixing id kinds is an error.
  table ints;
  ints.add(1, "Lead", day(0));
  EXPECT_THROW((void)base.log(f).append(ints.columns()), sf::data_error);
}

TEST(event_log, append_accepts_a_late_event_earlier_than_an_opportunitys_first_event) {
  // The log first saw opportunity 1 in Qualified on day 3; the Lead entry of day 1 arrives later.
  // Built at once, created defaults to day 1 and both events are kept; append must agree.
  table base;
  base.add(1, "Qualified", day(3));
  table more;
  more.add(1, "Lead", day(1));
  table all;
  all.add(1, "Qualified", day(3)).add(1, "Lead", day(1));
  const auto f = enterprise();
  const auto once = all.log(f);
  ASSERT_EQ(once.created()[0], day(1));
  const auto appended = base.log(f).append(more.columns());
  EXPECT_TRUE(appended == once);
  EXPECT_EQ(appended.created()[0], day(1));
}

TEST(event_log, append_keeps_an_explicit_created_time) {
  table base;
  base.add(1, "Lead", day(3));
  base.created = {day(2)};
  table more;
  more.add(1, "Qualified", day(5));
  const auto appended = base.log(enterprise()).append(more.columns());
  EXPECT_EQ(appended.created()[0], day(2));
  // An appended event before the explicit created time is still an error.
  table early;
  early.add(1, "Lead", day(1));
  EXPECT_THROW((void)base.log(enterprise()).append(early.columns()), sf::data_error);
}

TEST(event_log, append_validates_the_new_rows) {
  table base;
  base.add(1, "Lead", day(0)).add(1, "Won", day(2));
  table more;
  more.add(2, "Lead", day(1)).add(2, "Demo", day(2));
  EXPECT_THROW((void)base.log(enterprise()).append(more.columns()), sf::unknown_stage);
  table late;
  late.add(1, "Qualified", day(5));
  EXPECT_THROW((void)base.log(enterprise()).append(late.columns()), sf::data_error);
  const auto reopened =
      base.log(enterprise()).append(late.columns(), {sf::validation::strict, sf::after_terminal::reopen});
  EXPECT_EQ(reopened.n_events(), 3u);
  EXPECT_EQ(reopened.report().reopened, 1u);
}

TEST(event_log, append_rejects_columns_of_the_wrong_length) {
  table base;
  base.add(1, "Lead", day(0));
  const auto log = base.log(enterprise());
  table more;
  more.add(2, "Lead", day(1)).add(2, "Qualified", day(2));
  more.time.pop_back(); // 2 opportunities, 1 time
  auto e = catch_data_error([&] { return log.append(more.columns()); });
  EXPECT_EQ(e.column, "time");
  EXPECT_EQ(e.row, -1);
  more.time.push_back(day(2));
  more.amount = {5.0}; // optional column of the wrong length
  e = catch_data_error([&] { return log.append(more.columns()); });
  EXPECT_EQ(e.column, "amount");
  more.amount.clear();
  auto c = more.columns();
  const std::vector<std::int32_t> seg{0};
  const std::vector<std::string> seg_names{"SMB"};
  c.attributes.push_back({"segment", seg, seg_names});
  e = catch_data_error([&] { return log.append(c); });
  EXPECT_EQ(e.column, "segment");
}

TEST(event_log, append_keeps_attributes_that_only_the_new_rows_have) {
  // Built at once, the base rows have no segment (missing) and the new rows do.
  table base;
  base.add(1, "Lead", day(0)).add(2, "Lead", day(1));
  table more;
  more.add(2, "Qualified", day(3)).add(3, "Lead", day(4));
  const std::vector<std::string> seg_names{"SMB", "ENT"};
  const std::vector<std::int32_t> seg_more{1, 0};
  auto cm = more.columns();
  cm.attributes.push_back({"segment", seg_more, seg_names});
  table all;
  all.add(1, "Lead", day(0)).add(2, "Lead", day(1)).add(2, "Qualified", day(3)).add(3, "Lead", day(4));
  const std::vector<std::int32_t> seg_all{sf::missing_code, sf::missing_code, 1, 0};
  auto ca = all.columns();
  ca.attributes.push_back({"segment", seg_all, seg_names});
  const auto once = sf::event_log::from_columns(enterprise(), ca);
  const auto appended = base.log(enterprise()).append(cm);
  ASSERT_EQ(appended.find_attribute("segment"), 0u);
  // Opportunity 1: missing; 2: ENT; 3: SMB.
  const auto& a = appended.attributes()[0];
  EXPECT_EQ(a.code[0], sf::missing_code);
  EXPECT_EQ(a.values[static_cast<std::uint32_t>(a.code[1])], "ENT");
  EXPECT_EQ(a.values[static_cast<std::uint32_t>(a.code[2])], "SMB");
  EXPECT_TRUE(appended == once);
}

TEST(event_log, append_rejects_out_of_range_attribute_codes) {
  table base;
  base.add(1, "Lead", day(0));
  const std::vector<std::string> seg_names{"SMB"};
  const std::vector<std::int32_t> seg_base{0};
  auto cb = base.columns();
  cb.attributes.push_back({"segment", seg_base, seg_names});
  const auto log = sf::event_log::from_columns(enterprise(), cb);
  table more;
  more.add(2, "Lead", day(1));
  for (std::int32_t bad : {1, 7, -5}) { // one name only: code 1 and up, and negatives but -1, are invalid
    const std::vector<std::int32_t> seg_more{bad};
    auto cm = more.columns();
    cm.attributes.push_back({"segment", seg_more, seg_names});
    const auto e = catch_data_error([&] { return log.append(cm); });
    EXPECT_EQ(e.column, "segment") << bad;
  }
}

// Rows named by append's errors and rejections are rows of the columns the caller passed: a log
// of 3 events, append(more) where more's row 1 has the unknown stage 'Demo' -> row 1, not row 4.
TEST(event_log, append_names_rows_of_the_appended_columns) {
  table base;
  base.add(1, "Lead", day(0)).add(1, "Qualified", day(1)).add(2, "Lead", day(0));
  table more;
  more.add(3, "Lead", day(2)).add(3, "Demo", day(3));
  const auto e = catch_data_error([&] { return base.log(enterprise()).append(more.columns()); });
  EXPECT_EQ(e.row, 1);
  EXPECT_THAT(e.what, HasSubstr("row 1:"));
  const auto lenient =
      base.log(enterprise()).append(more.columns(), {sf::validation::lenient, sf::after_terminal::error});
  ASSERT_EQ(lenient.report().rejected.size(), 1u);
  EXPECT_EQ(lenient.report().rejected[0].row, 1);
}

TEST(event_log, builder_equals_columns_with_string_ids) {
  sf::event_log_builder b(enterprise());
  b.add("acme", "Lead", day(0), 100.0, "ann", day(60))
      .add("globex", "Lead", day(1), 50.0, "bob", day(30))
      .add("acme", "Qualified", day(4), 120.0, "ann", day(60))
      .add("acme", "Won", day(9), 120.0, "bob", day(60));
  EXPECT_EQ(b.size(), 4u);
  const auto built = b.build();

  table t;
  t.add("acme", "Lead", day(0))
      .add("globex", "Lead", day(1))
      .add("acme", "Qualified", day(4))
      .add("acme", "Won", day(9));
  t.amount = {100.0, 50.0, 120.0, 120.0};
  t.owner_names = {"ann", "bob"};
  t.owner = {0, 1, 0, 1};
  t.close_date = {day(60), day(30), day(60), day(60)};
  EXPECT_TRUE(built == t.log(enterprise()));
  EXPECT_EQ(built.amounts().at(0, day(5)), 120.0);
  EXPECT_EQ(built.owners().at(0, day(9)), *built.owner_names().find("bob"));
  // Validation is the same: an unknown stage throws unknown_stage naming the row.
  sf::event_log_builder bad(enterprise());
  bad.add("a", "Lead", day(0)).add("a", "Nope", day(1));
  const auto e = catch_data_error([&] { return bad.build(); });
  EXPECT_TRUE(e.unknown_stage);
  EXPECT_EQ(e.row, 1);
  // An empty builder gives an empty log.
  const auto empty = sf::event_log_builder(enterprise()).build();
  EXPECT_EQ(empty.n_events(), 0u);
  EXPECT_EQ(empty.n_opportunities(), 0u);
}

// The builder takes std::nullopt for "not known at this row": the value in force goes on.
TEST(event_log, builder_accepts_rows_without_amount_or_owner) {
  sf::event_log_builder b(enterprise());
  b.add("acme", "Lead", day(0), 100.0, "ann").add("acme", "Qualified", day(4));
  const auto log = b.build();
  EXPECT_EQ(log.n_events(), 2u);
  EXPECT_EQ(log.amounts().at(0, day(4)), 100.0);
  EXPECT_EQ(log.owners().at(0, day(4)), *log.owner_names().find("ann"));
}

// An existing event made invalid by appended rows (an earlier Lost appended before it) is named as
// an existing event, with a negative row: events are numbered 0..2 here, so event 1 is row -2.
TEST(event_log, append_names_existing_events_it_invalidates) {
  table base;
  base.add(1, "Lead", day(0)).add(1, "Qualified", day(5)).add(2, "Lead", day(0));
  table more;
  more.add(1, "Lost", day(2));
  const auto e = catch_data_error([&] { return base.log(enterprise()).append(more.columns()); });
  EXPECT_EQ(e.row, -2);
  EXPECT_THAT(e.what, HasSubstr("existing event 1:"));
  EXPECT_THAT(e.what, HasSubstr("after its terminal stage 'Lost' at row 0"));
}

// A changes table merges field values between stage events. Events say amount 100 at days 0, 5
// and 9; changes say 80 at day 3 (amount only) and owner "bob" at day 7 (owner only). By hand:
// amount history 100@0, 80@3, 100@5 (the day-5 event repeats 100 after the change: a change);
// owner history ann@0, bob@7, ann@9.
TEST(event_log, changes_table_merges_between_events) {
  table t;
  t.add(1, "Lead", day(0), 100, "ann")
      .add(1, "Qualified", day(5), 100, "ann")
      .add(1, "Won", day(9), 100, "ann");
  const std::vector<std::int64_t> opp{1, 1};
  const std::vector<sf::time_point> when{day(3), day(7)};
  const std::vector<double> amount{80, 0};
  const std::vector<std::uint8_t> amount_given{1, 0};
  const std::vector<std::int32_t> owner{sf::missing_code, 0};
  const std::vector<std::uint8_t> owner_given{0, 1};
  const std::vector<std::string> owner_names{"bob"};
  auto cols = t.columns();
  cols.changes.opportunity = opp;
  cols.changes.time = when;
  cols.changes.amount = amount;
  cols.changes.amount_given = amount_given;
  cols.changes.owner = owner;
  cols.changes.owner_given = owner_given;
  cols.changes.owner_names = owner_names;
  const auto log = sf::event_log::from_columns(enterprise(), cols);
  EXPECT_EQ(log.amounts().time, (std::vector<sf::time_point>{day(0), day(3), day(5)}));
  EXPECT_EQ(log.amounts().value, (std::vector<double>{100, 80, 100}));
  EXPECT_EQ(log.amounts().at(0, day(4)), 80.0);
  ASSERT_EQ(log.owners().value.size(), 3u);
  EXPECT_EQ(log.owner_names()[log.owners().value[1]], "bob");
  EXPECT_EQ(log.owners().time, (std::vector<sf::time_point>{day(0), day(7), day(9)}));
}

// A change for an opportunity without stage events is an error naming the changes row.
TEST(event_log, changes_table_rejects_unknown_opportunities) {
  table t;
  t.add(1, "Lead", day(0), 100, "ann");
  const std::vector<std::int64_t> opp{1, 7};
  const std::vector<sf::time_point> when{day(1), day(2)};
  const std::vector<double> amount{90, 10};
  auto cols = t.columns();
  cols.changes.opportunity = opp;
  cols.changes.time = when;
  cols.changes.amount = amount;
  const auto e = catch_data_error([&] { return sf::event_log::from_columns(enterprise(), cols); });
  EXPECT_EQ(e.row, 1);
  EXPECT_THAT(e.what, HasSubstr("changes row 1: opportunity '7' has no stage events"));
  const auto lenient =
      sf::event_log::from_columns(enterprise(), cols, {sf::validation::lenient, sf::after_terminal::error});
  ASSERT_EQ(lenient.report().rejected.size(), 1u);
  EXPECT_EQ(lenient.report().rejected[0].column, "changes.opportunity");
  EXPECT_EQ(lenient.amounts().value, (std::vector<double>{100, 90}));
}

// ---------------------------------------------------------------------------------------------
// Rows the caller could not parse (issue 13, item 11)

TEST(event_log, unparsed_rows_strict_throws_for_the_first_bad_row_in_row_order) {
  table t;
  t.add(1, "Lead", day(0)).add(1, "Demo", day(1)).add(1, "Qualified", sf::missing_time);
  const std::vector<sf::rejected_row> bad{
      {2, "time", "time value 'yesterday' is not a time (expected ISO 8601 text)"}};
  auto c = t.columns();
  c.unparsed = bad;
  // Row 1 (an unknown stage) comes before row 2 (the unparsed time).
  const auto e1 = catch_data_error([&] { return sf::event_log::from_columns(enterprise(), c); });
  EXPECT_EQ(e1.row, 1);
  EXPECT_TRUE(e1.unknown_stage);
  t.stage_names[1] = "Proposal";
  c = t.columns();
  c.unparsed = bad;
  const auto e2 = catch_data_error([&] { return sf::event_log::from_columns(enterprise(), c); });
  EXPECT_EQ(e2.row, 2);
  EXPECT_EQ(e2.column, "time");
  EXPECT_EQ(e2.what, "row 2: time value 'yesterday' is not a time (expected ISO 8601 text)");
}

TEST(event_log, unparsed_rows_lenient_rejects_each_once_and_keeps_the_others) {
  table t;
  t.add(1, "Lead", day(0), 10, "ann")        // r0
      .add(1, "Qualified", day(1), 0, "ann") // r1: amount 'n/a' (given to the core as 0)
      .add(2, "Lead", day(2), 10, "bob")     // r2: time and amount unparsed
      .add(2, "Lost", day(3), 10, "bob");    // r3
  const std::vector<sf::rejected_row> bad{{2, "amount", "amount value '5,000' is not a number"},
                                          {1, "amount", "amount value 'n/a' is not a number"},
                                          {2, "time", "time value 'soon' is not a time"}};
  auto c = t.columns();
  c.unparsed = bad;
  const auto log = sf::event_log::from_columns(enterprise(), c, {sf::validation::lenient});
  const auto& r = log.report();
  ASSERT_EQ(r.rejected.size(), 2u);
  EXPECT_EQ(r.rejected[0].row, 1);
  EXPECT_EQ(r.rejected[0].reason, "amount value 'n/a' is not a number");
  EXPECT_EQ(r.rejected[1].row, 2); // its first listing
  EXPECT_EQ(r.rejected[1].column, "amount");
  EXPECT_EQ(r.rows_kept, 2u);
  EXPECT_EQ(events_of(log, 0), (ev{{day(0), 0}}));
  EXPECT_EQ(events_of(log, 1), (ev{{day(3), 4}}));
  // The unparsed amount of r1 never reached the history.
  EXPECT_EQ(log.amounts().value, (std::vector<double>{10, 10}));
}

TEST(event_log, unparsed_rows_outside_the_input_and_in_append) {
  table t;
  t.add(1, "Lead", day(0));
  const std::vector<sf::rejected_row> outside{{1, "time", "x"}};
  auto c = t.columns();
  c.unparsed = outside;
  const auto e = catch_data_error([&] { return sf::event_log::from_columns(enterprise(), c); });
  EXPECT_EQ(e.row, -1);
  EXPECT_THAT(e.what, HasSubstr("unparsed row 1"));
  // append numbers the unparsed rows like its other rows: from 0 in the appended columns.
  const auto log = t.log(enterprise());
  table more;
  more.add(1, "Qualified", day(2)).add(1, "Won", sf::missing_time);
  const std::vector<sf::rejected_row> bad{{1, "time", "time value 'later' is not a time"}};
  auto m = more.columns();
  m.unparsed = bad;
  const auto strict = catch_data_error([&] { return log.append(m); });
  EXPECT_EQ(strict.row, 1);
  EXPECT_EQ(strict.what, "row 1: time value 'later' is not a time");
  const auto lenient = log.append(m, {sf::validation::lenient});
  EXPECT_EQ(events_of(lenient, 0), (ev{{day(0), 0}, {day(2), 1}}));
  ASSERT_EQ(lenient.report().rejected.size(), 1u);
  EXPECT_EQ(lenient.report().rejected[0].row, 1);
}

// ---------------------------------------------------------------------------------------------
// Text interning (detail::string_interner, behind the Python text columns; issue 13, item 10)

TEST(string_interner, codes_in_order_of_first_appearance_like_a_map) {
  // Values of every length from 0 to 40, many sharing their first or last 8 bytes, some
  // differing only in the length (a zero byte at the end), in random order and repeated.
  std::vector<std::string> values;
  for (std::size_t len = 0; len <= 40; ++len) {
    values.emplace_back(len, 'a');
    if (len > 0) {
      std::string s(len, 'a');
      s.back() = 'b';
      values.push_back(s);
      s.front() = 'c';
      values.push_back(s);
      std::string zero(len, 'a');
      zero.back() = '\0';
      values.push_back(zero);
    }
  }
  std::mt19937 g(3);
  std::vector<std::string> rows;
  for (int i = 0; i < 20000; ++i) rows.push_back(values[g() % values.size()]);
  // One buffer with all rows back to back, as Arrow holds them (8 spare bytes at the end).
  std::string buffer;
  std::vector<std::size_t> offset{0};
  for (const auto& r : rows) {
    buffer += r;
    offset.push_back(buffer.size());
  }
  const std::size_t size = buffer.size();
  buffer.append(8, 'z');
  sf::detail::string_interner a, b;
  std::map<std::string, std::uint32_t> expected;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto want =
        expected.try_emplace(rows[i], static_cast<std::uint32_t>(expected.size())).first->second;
    ASSERT_EQ(a.intern(rows[i]), want) << "row " << i;
    // Without the spare bytes: the rows at the end of the buffer take the copying path.
    ASSERT_EQ(b.intern_in(buffer.data(), offset[i], offset[i + 1], size), want) << "row " << i;
  }
  ASSERT_EQ(a.size(), expected.size());
  for (const auto& [s, code] : expected) EXPECT_EQ(a.names()[code], s);
  EXPECT_EQ(a.names(), b.names());
}
