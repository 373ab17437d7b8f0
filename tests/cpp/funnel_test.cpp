// Tests of smartfunnel::funnel: invariants, error messages and the code layout.
#include <smartfunnel/error.hpp>
#include <smartfunnel/funnel.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sf = smartfunnel;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {

// Returns the what() of the invalid_funnel thrown by constructing the funnel, or "" if none.
template <class Make>
std::string funnel_error(Make make) {
  try {
    (void)make();
  } catch (const sf::invalid_funnel& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST(funnel, requires_an_open_stage) {
  const auto msg = funnel_error([] { return sf::funnel({}, {"Won"}, {"Lost"}, "smb"); });
  EXPECT_THAT(msg, AllOf(HasSubstr("'smb'"), HasSubstr("open stage")));
}

TEST(funnel, requires_won_and_lost_names) {
  EXPECT_THAT(funnel_error([] { return sf::funnel({"A"}, {}, {"Lost"}, "f1"); }),
              AllOf(HasSubstr("'f1'"), HasSubstr("won")));
  EXPECT_THAT(funnel_error([] { return sf::funnel({"A"}, {"Won"}, {}, "f2"); }),
              AllOf(HasSubstr("'f2'"), HasSubstr("lost")));
}

TEST(funnel, invalid_funnel_is_an_invalid_argument) {
  EXPECT_THROW((void)sf::funnel({}, {"Won"}, {"Lost"}), std::invalid_argument);
}

TEST(funnel, rejects_empty_names_with_their_role_and_position) {
  // Positions count over all names: open stages first, then won, then lost.
  EXPECT_THAT(funnel_error([] {
                return sf::funnel({"Lead", ""}, {"Won"}, {"Lost"});
              }),
              AllOf(HasSubstr("open stage"), HasSubstr("position 1"), HasSubstr("empty")));
  EXPECT_THAT(funnel_error([] { return sf::funnel({"Lead"}, {""}, {"Lost"}); }),
              AllOf(HasSubstr("won name"), HasSubstr("position 1"), HasSubstr("empty")));
  EXPECT_THAT(funnel_error([] {
                return sf::funnel({"Lead"}, {"Won"}, {"Lost", ""});
              }),
              AllOf(HasSubstr("lost name"), HasSubstr("position 3"), HasSubstr("empty")));
}

TEST(funnel, rejects_duplicates_within_and_across_open_and_terminal_names) {
  EXPECT_THAT(funnel_error([] {
                return sf::funnel({"Lead", "Demo", "Lead"}, {"Won"}, {"Lost"});
              }),
              HasSubstr("'Lead'"));
  // The same name as an open stage and a terminal name.
  EXPECT_THAT(funnel_error([] {
                return sf::funnel({"Lead", "Closed"}, {"Won"}, {"Closed"}, "ent");
              }),
              AllOf(HasSubstr("'Closed'"), HasSubstr("'ent'")));
  // Won and lost sharing a name.
  EXPECT_THAT(funnel_error([] {
                return sf::funnel({"Lead"}, {"Done"}, {"Lost", "Done"});
              }),
              HasSubstr("'Done'"));
  // Names are case-sensitive: "lead" and "Lead" are different stages.
  EXPECT_NO_THROW((void)sf::funnel({"Lead", "lead"}, {"Won"}, {"Lost"}));
}

TEST(funnel, exit_criteria_need_one_entry_per_open_stage) {
  const auto msg = funnel_error([] {
    return sf::funnel({"A", "B", "C"}, {"Won"}, {"Lost"}, "crit", {"budget", "demo"});
  });
  EXPECT_THAT(msg,
              AllOf(HasSubstr("exit_criteria"), HasSubstr("(3)"), HasSubstr("got 2"), HasSubstr("'crit'")));
  EXPECT_FALSE(funnel_error([] { return sf::funnel({"A"}, {"Won"}, {"Lost"}, "crit", {"x", "y"}); }).empty());

  const sf::funnel f({"A", "B"}, {"Won"}, {"Lost"}, "crit", {"budget confirmed", "demo done"});
  EXPECT_EQ(f.exit_criterion(0), "budget confirmed");
  EXPECT_EQ(f.exit_criterion(1), "demo done");
  const sf::funnel g({"A", "B"}, {"Won"}, {"Lost"});
  EXPECT_EQ(g.exit_criterion(0), "");
  EXPECT_EQ(g.exit_criterion(1), "");
  EXPECT_THROW((void)g.exit_criterion(2), std::out_of_range); // Won is not an open stage
}

TEST(funnel, at_most_4096_names) {
  std::vector<std::string> open;
  for (int i = 0; i < 4094; ++i) open.push_back("s" + std::to_string(i));
  EXPECT_NO_THROW((void)sf::funnel(open, {"Won"}, {"Lost"})); // 4094 + 2 = 4096
  open.push_back("one too many");
  EXPECT_THAT(funnel_error([&] { return sf::funnel(open, {"Won"}, {"Lost"}); }), HasSubstr("4097"));
}

TEST(funnel, codes_are_dense_open_then_won_then_lost) {
  const sf::funnel f({"Lead", "Qualified", "Proposal"}, {"Won", "Won - Renewal"},
                     {"Lost", "Disqualified", "No Decision"}, "enterprise");
  EXPECT_EQ(f.name(), "enterprise");
  EXPECT_EQ(f.n_open(), 3u);
  EXPECT_EQ(f.n_won(), 2u);
  EXPECT_EQ(f.n_lost(), 3u);
  EXPECT_EQ(f.n_codes(), 8u);
  const std::vector<std::string> all{"Lead",          "Qualified", "Proposal",     "Won",
                                     "Won - Renewal", "Lost",      "Disqualified", "No Decision"};
  EXPECT_EQ(std::vector<std::string>(f.names().begin(), f.names().end()), all);
  EXPECT_EQ(std::vector<std::string>(f.open_stages().begin(), f.open_stages().end()),
            (std::vector<std::string>{"Lead", "Qualified", "Proposal"}));
  EXPECT_EQ(std::vector<std::string>(f.won_names().begin(), f.won_names().end()),
            (std::vector<std::string>{"Won", "Won - Renewal"}));
  EXPECT_EQ(std::vector<std::string>(f.lost_names().begin(), f.lost_names().end()),
            (std::vector<std::string>{"Lost", "Disqualified", "No Decision"}));

  for (std::size_t c = 0; c < all.size(); ++c) {
    const auto code = static_cast<sf::stage_code>(c);
    EXPECT_EQ(f.find(all[c]), code);
    EXPECT_EQ(f.code_of(all[c]), code);
    EXPECT_EQ(f.name_of(code), all[c]);
    EXPECT_EQ(f.is_open(code), c < 3) << c;
    EXPECT_EQ(f.is_won(code), c == 3 || c == 4) << c;
    EXPECT_EQ(f.is_lost(code), c >= 5) << c;
    EXPECT_EQ(f.is_terminal(code), c >= 3) << c;
  }
  // Code 8 is past the end: nothing.
  EXPECT_FALSE(f.is_open(8) || f.is_won(8) || f.is_lost(8) || f.is_terminal(8));
  EXPECT_THROW((void)f.name_of(8), std::out_of_range);
}

TEST(funnel, outcome_column_aggregates_every_won_and_every_lost_name) {
  const sf::funnel f({"Lead", "Qualified", "Proposal"}, {"Won", "Won - Renewal"},
                     {"Lost", "Disqualified", "No Decision"});
  // Open stages map to themselves; every won name to column n_open = 3; every lost name to 4.
  const std::vector<std::size_t> expected{0, 1, 2, 3, 3, 4, 4, 4};
  for (std::size_t c = 0; c < expected.size(); ++c)
    EXPECT_EQ(f.outcome_column(static_cast<sf::stage_code>(c)), expected[c])
        << f.name_of(static_cast<sf::stage_code>(c));
}

TEST(funnel, unknown_names_are_reported_with_the_funnel_name) {
  const sf::funnel f({"Lead"}, {"Won"}, {"Lost"}, "smb");
  EXPECT_EQ(f.find("Demo"), std::nullopt);
  EXPECT_EQ(f.find(""), std::nullopt);
  try {
    (void)f.code_of("Demo");
    FAIL() << "expected unknown_stage";
  } catch (const sf::unknown_stage& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("'Demo'"), HasSubstr("'smb'")));
    EXPECT_EQ(e.row(), -1);
    EXPECT_EQ(e.column(), "stage");
  }
}

TEST(funnel, equality_compares_every_part) {
  const sf::funnel a({"A", "B"}, {"Won"}, {"Lost"}, "x");
  EXPECT_EQ(a, sf::funnel({"A", "B"}, {"Won"}, {"Lost"}, "x"));
  EXPECT_NE(a, sf::funnel({"B", "A"}, {"Won"}, {"Lost"}, "x")); // order matters
  EXPECT_NE(a, sf::funnel({"A", "B"}, {"Won"}, {"Lost"}, "y")); // name
  EXPECT_NE(a, sf::funnel({"A"}, {"B", "Won"}, {"Lost"}, "x")); // same names, other roles
  EXPECT_NE(a, sf::funnel({"A", "B"}, {"Won"}, {"Lost"}, "x", {"c1", "c2"}));
}
