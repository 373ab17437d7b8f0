// A tiny CRM that keeps its opportunities and stage history in SQLite, loads them into an
// event_log, fits the funnel and scores its open deals. Built and run by ctest
// (consumer.sqlite_crm) against an installed smartfunnel found with find_package.
#include <smartfunnel/smartfunnel.hpp>

#include <sqlite3.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error("sqlite: " + message);
  }
}

} // namespace

int main() {
  using namespace smartfunnel;
  sqlite3* db = nullptr;
  if (sqlite3_open("crm.sqlite", &db) != SQLITE_OK) return 2;
  exec(db, "DROP TABLE IF EXISTS stage_history; DROP TABLE IF EXISTS opportunity;"
           "CREATE TABLE opportunity (id TEXT PRIMARY KEY, owner TEXT, amount REAL);"
           "CREATE TABLE stage_history (opportunity TEXT REFERENCES opportunity(id), stage TEXT,"
           "                            entered_at INTEGER);");
  // Day 0 is 2025-01-01. o1 is won, o2 lost, o3 and o4 are still open on day 10.
  exec(db, "INSERT INTO opportunity VALUES ('o1','ann',1000),('o2','ann',500),('o3','bob',800),"
           "('o4','bob',1200);"
           "INSERT INTO stage_history VALUES"
           " ('o1','Discovery',0),('o1','Proposal',2),('o1','Won',5),"
           " ('o2','Discovery',0),('o2','Lost',1),"
           " ('o3','Discovery',0),"
           " ('o4','Proposal',1);");

  const time_point day = 86400, t0 = 1'735'689'600;
  funnel f({"Discovery", "Proposal"}, {"Won"}, {"Lost"});
  event_log_builder builder(f);
  sqlite3_stmt* rows = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT h.opportunity, h.stage, h.entered_at, o.amount, o.owner "
                     "FROM stage_history h JOIN opportunity o ON o.id = h.opportunity",
                     -1, &rows, nullptr);
  while (sqlite3_step(rows) == SQLITE_ROW) {
    const auto* id = reinterpret_cast<const char*>(sqlite3_column_text(rows, 0));
    const auto* stage = reinterpret_cast<const char*>(sqlite3_column_text(rows, 1));
    const auto* owner = reinterpret_cast<const char*>(sqlite3_column_text(rows, 4));
    builder.add(id, stage, t0 + sqlite3_column_int64(rows, 2) * day, sqlite3_column_double(rows, 3), owner);
  }
  sqlite3_finalize(rows);
  sqlite3_close(db);

  const auto log = builder.build();
  fit_options options;
  options.as_of = t0 + 10 * day;
  options.prior = 0.0; // unsmoothed, so the values below can be checked by hand
  options.draws = 0;
  const auto model = fit(log, options);
  // Discovery: o2 leaves to Lost at 1 day, o1 to Proposal at 2, o3 is censored at 10:
  // P(Proposal) = P(Lost) = 1/2. Proposal: o1 is won at 3 days, o4 is censored at 9: P(Won) = 1.
  // Both open deals are older than any exit of their stage. With fewer exits than min_at_risk
  // (10 by default) the tail cannot tell dead deals from slow ones, so nothing is taken as dead
  // and the whole row applies: o3 (Discovery) 1/2, o4 (Proposal) 1.
  const std::vector<std::int32_t> stage{0, 1};
  const std::vector<double> age{10, 9};
  std::vector<double> p(2);
  model.p_win(stage, age, p);
  std::printf("o3 (Discovery, 10 days): P(win) = %.3f\no4 (Proposal, 9 days): P(win) = %.3f\n", p[0], p[1]);
  return std::abs(p[0] - 0.5) < 1e-12 && std::abs(p[1] - 1.0) < 1e-12 ? 0 : 1;
}
