"""CRM imports on the public datasets in ../shared/data (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf


@pytest.fixture(scope="module")
def maven(shared_data):
    path = shared_data / "maven-crm-sales-opportunities" / "sales_pipeline.csv"
    frame = pd.read_csv(path)
    funnel = sf.Funnel(["Prospecting", "Engaging"], won="Won", lost="Lost")
    log, report = sf.imports.from_snapshot(
        funnel,
        frame,
        opportunity="opportunity_id",
        stage="deal_stage",
        entered={"Engaging": "engage_date"},
        closed="close_date",
        amount="close_value",
        owner="sales_agent",
        attributes=["product"],
    )
    return frame, log, report


def test_snapshot_import_places_every_dated_row_and_reports_the_rest(maven):
    frame, log, report = maven
    counts = frame["deal_stage"].value_counts()
    # Won and Lost rows give two events (engaged, closed), Engaging rows one; Prospecting rows
    # have no date at all and are reported, not dropped silently.
    assert log.n_events == 2 * (counts["Won"] + counts["Lost"]) + counts["Engaging"]
    assert log.n_opportunities == len(frame) - counts["Prospecting"]
    undated = report[report["reason"].str.startswith("undated")]
    assert len(undated) == counts["Prospecting"]
    assert set(undated["deal_stage"]) == {"Prospecting"}


def test_closed_only_win_rate_per_agent_matches_pandas(maven):
    frame, log, _ = maven
    model = sf.fit(
        log, groups=["owner"], prior=0, draws=0, min_groups_for_eb=10_000, fallback_concentration=0
    )
    naive = model.summary.xs(("Engaging", "Won"), level=("stage", "destination"))["naive"]
    closed = frame[frame["deal_stage"].isin(["Won", "Lost"])]
    by_agent = closed.groupby("sales_agent")["deal_stage"].apply(lambda s: (s == "Won").mean())
    for agent, rate in by_agent.items():
        assert naive.loc[agent] == pytest.approx(rate, abs=1e-12), agent
    # The censoring-aware Engaging -> Won rate of the whole funnel sits beside the naive one.
    overall = model.summary.xs(
        ("(all)", "Engaging", "Won"), level=("group", "stage", "destination")
    )
    assert overall["naive"].iloc[0] == pytest.approx((closed["deal_stage"] == "Won").mean())
    assert 0 < overall["p"].iloc[0] < 1
    # Deals per stage at the end: open Engaging deals are censored stays.
    stays = model.time_in_stage().loc["Engaging"]
    assert stays["censored"] == (frame["deal_stage"] == "Engaging").sum()
    assert np.isfinite(stays["median_days"])


# -- generic long format ---------------------------------------------------------------------------

FUNNEL = sf.Funnel(["Lead", "Demo", "Proposal"], won="Won", lost="Lost")


def long_frame():
    return pd.DataFrame(
        {
            "deal": ["a", "a", "a", "b", "b", "c", "c", None, "d"],
            "stage_name": ["lead", "demo", "won", "lead", "lost", "lead", "Demo", "lead", "Lead"],
            "at": [
                "2024-01-01",
                "2024-01-05T10:00:00Z",
                "2024-02-01",
                "2024-01-02",
                "31/01/2024",  # not ISO 8601: reported, the row is not used
                "2024-01-03",
                "2024-01-09",
                "2024-01-04",  # no opportunity id
                None,  # no time
            ],
            "value": [100.0, 120.0, 150.0, 50.0, 50.0, "n/a", 70.0, 10.0, 10.0],
        }
    )


def test_from_long_maps_stages_parses_dates_and_reports_every_bad_cell():
    frame = long_frame()
    imp = sf.imports.from_long(
        frame,
        FUNNEL,
        opportunity="deal",
        stage="stage_name",
        time="at",
        amount="value",
        stage_map={"lead": "Lead", "demo": "Demo", "won": "Won", "lost": "Lost"},
    )
    assert imp.source == "long format"
    # Hand-worked: rows 0-3, 5, 6 are usable (6 events; "Demo" is already a funnel name).
    events = imp.log.to_frame()
    assert len(events) == 6
    assert list(events[events["opportunity_id"] == "a"]["stage"]) == ["Lead", "Demo", "Won"]
    assert events["time"].iloc[1] == pd.Timestamp("2024-01-05T10:00:00Z")
    # Row 5's amount is not a number: c's amount in force is then the next row's (70), noted.
    note = imp.quality[imp.quality["row"].isna()]
    amount_note = note[note["column"] == "value"]
    assert len(amount_note) == 1 and amount_note["reason"].iloc[0].startswith("1 rows")
    # Each renaming of the stage map is a note too, with the name in the file.
    assert set(note.loc[note["column"] == "stage_name", "value"]) == {"lead", "demo", "won", "lost"}
    q = imp.quality.dropna(subset=["row"]).set_index("row")
    assert set(q.index) == {4, 5, 7, 8}
    assert (
        q.loc[4, "column"] == "at" and q.loc[4, "id"] == "b" and q.loc[4, "value"] == "31/01/2024"
    )
    assert q.loc[4, "action"] == "rejected" and "time_format" in q.loc[4, "reason"]
    assert q.loc[5, "column"] == "value" and q.loc[5, "action"] == "changed"
    assert q.loc[7, "column"] == "deal" and q.loc[7, "action"] == "rejected"
    assert q.loc[8, "column"] == "at" and q.loc[8, "id"] == "d"
    # With the right format the row is used.
    frame.loc[4, "at"] = "2024-01-31"
    frame.loc[0:3, "at"] = ["2024-01-01", "2024-01-05", "2024-02-01", "2024-01-02"]
    again = sf.imports.from_long(
        frame.iloc[:7],
        FUNNEL,
        opportunity="deal",
        stage="stage_name",
        time="at",
        stage_map={"lead": "Lead", "demo": "Demo", "won": "Won", "lost": "Lost"},
    )
    assert again.log.n_events == 7
    assert list(again.quality["action"]) == ["note"] * 4  # the four renamings, nothing else


def test_from_long_reports_unknown_stages_and_can_raise_instead():
    frame = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 2],
            "stage": ["Lead", "Negotiation", "Lead"],
            "time": ["2024-01-01", "2024-01-02", "2024-01-03"],
        }
    )
    imp = sf.imports.from_long(frame, FUNNEL)
    assert imp.log.n_events == 2
    (bad,) = imp.quality.itertuples()
    assert (bad.row, bad.id, bad.column, bad.value) == (1, "1", "stage", "Negotiation")
    with pytest.raises(sf.DataError, match="row 1") as err:
        sf.imports.from_long(frame, FUNNEL, errors="raise")
    assert err.value.row == 1 and err.value.column == "stage"
    frame.loc[2, "time"] = "soon"
    with pytest.raises(sf.DataError, match=r"row 2: time value 'soon' of opportunity '2'"):
        sf.imports.from_long(frame, FUNNEL, errors="raise")
    with pytest.raises(sf.DataError, match="column 'owner' is missing"):
        sf.imports.from_long(frame, FUNNEL, owner="owner")


def test_infer_funnel_orders_open_stages_by_precedence_and_reads_outcomes():
    frame = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 1, 2, 2, 3, 3, 3],
            "stage": [
                "Qualify",
                "Demo",
                "Closed Won",
                "Demo",
                "Closed Lost",
                "Qualify",
                "Proposal",
                "Demo",
            ],
            "time": pd.to_datetime(
                [
                    "2024-01-01",
                    "2024-01-02",
                    "2024-01-03",
                    "2024-01-01",
                    "2024-01-05",
                    "2024-01-01",
                    "2024-01-02",
                    "2024-01-03",
                ]
            ),
        }
    )
    f = sf.imports.infer_funnel(frame)
    # Qualify precedes Demo twice and Proposal once (score 3); Proposal: before Demo once,
    # after Qualify once (0); Demo: after Qualify twice, after Proposal once (-3).
    assert f.stages == ["Qualify", "Proposal", "Demo"]
    assert f.won == ["Closed Won"] and f.lost == ["Closed Lost"]
    with pytest.raises(sf.DataError, match="no stage reads as won"):
        sf.imports.infer_funnel(frame[frame["stage"] != "Closed Won"])


def test_activities_report_unknown_opportunities_and_bad_times():
    imp = sf.imports.from_long(
        pd.DataFrame(
            {
                "opportunity_id": ["a", "a", "b"],
                "stage": ["Lead", "Demo", "Lead"],
                "time": ["2024-01-01", "2024-01-10", "2024-01-02"],
            }
        ),
        FUNNEL,
    )
    acts = pd.DataFrame(
        {
            "deal": ["a", "a", "zz", "b", "b"],
            "when": ["2024-01-03", "2024-01-11", "2024-01-04", "someday", None],
            "type": ["call", "meeting", "call", "email", "call"],
        }
    )
    log = sf.imports.activities(acts, imp, opportunity="deal", time="when", kind="type")
    assert len(log) == 2
    got = log.to_frame()
    assert list(got["stage"]) == ["Lead", "Demo"] and list(got["kind"]) == ["call", "meeting"]
    rej = log.rejected.set_index("row")
    assert list(rej.index) == [2, 3, 4]
    assert rej.loc[2, "rejected_column"] == "deal" and rej.loc[2, "deal"] == "zz"
    assert rej.loc[3, "rejected_column"] == "when" and "not a time" in rej.loc[3, "reason"]
    assert rej.loc[4, "rejected_column"] == "when" and "no time" in rej.loc[4, "reason"]


# -- read: recognising formats ---------------------------------------------------------------------


def test_read_long_csv_with_activities(tmp_path):
    events = pd.DataFrame(
        {
            "deal_id": ["a", "a", "a", "b", "b"],
            "stage": ["Lead", "Demo", "Won", "Lead", "Lost"],
            "timestamp": ["2024-01-01", "2024-01-05", "2024-02-01", "2024-01-02", "2024-01-31"],
            "amount": [10, 10, 12, 5, 5],
            "owner": ["ann", "ann", "ann", "bob", "bob"],
        }
    )
    events.to_csv(tmp_path / "events.csv", index=False)
    pd.DataFrame(
        {
            "deal_id": ["a", "b", "x"],
            "timestamp": ["2024-01-02", "2024-01-03", "2024-01-03"],
            "kind": ["call", "email", "call"],
        }
    ).to_csv(tmp_path / "acts.csv", index=False)
    imp = sf.imports.read([tmp_path / "events.csv", str(tmp_path / "acts.csv")])
    assert imp.source == "long format + activities"
    assert imp.log.n_events == 5 and imp.funnel.stages == ["Lead", "Demo"]
    assert len(imp.activities) == 2
    acts_q = imp.quality[imp.quality["table"] == "acts.csv"]
    assert list(acts_q["id"]) == ["x"] and list(acts_q["row"]) == [2]
    assert "funnel inferred" in imp.quality["reason"].iloc[0]
    assert "Imported(long format + activities" in repr(imp)
    assert "<strong>Imported</strong>" in imp._repr_html_()
    # A given funnel is used as it is.
    fixed = sf.imports.read(tmp_path / "events.csv", funnel=FUNNEL)
    assert fixed.funnel == FUNNEL and fixed.quality.empty


def test_read_refuses_unknown_files_listing_what_it_expects(tmp_path):
    path = tmp_path / "mystery.csv"
    pd.DataFrame({"x": [1], "y": [2]}).to_csv(path, index=False)
    with pytest.raises(sf.DataError, match=r"(?s)mystery.csv.*not recognised.*Salesforce.*HubSpot"):
        sf.imports.read([path])
    with pytest.raises(FileNotFoundError):
        sf.imports.read([tmp_path / "missing.csv"])


def test_read_recognises_maven(shared_data, maven):
    frame, log, _ = maven
    imp = sf.imports.read([shared_data / "maven-crm-sales-opportunities"])
    assert imp.source.startswith("Maven")
    assert imp.log.n_events == log.n_events
    assert imp.as_of == pd.Timestamp(frame["close_date"].max(), tz="UTC")
    # The directory's lookup tables are listed as unused, not silently ignored.
    notes = imp.quality[imp.quality["action"] == "note"]
    while_open = notes["reason"].str.contains("list price while open")
    assert set(notes.loc[while_open, "table"]) == {"sales_pipeline"}
    assert set(notes.loc[~while_open, "table"]) == {"accounts.csv", "sales_teams.csv"}
    rejected = imp.quality[imp.quality["action"] == "rejected"]
    assert set(rejected["id"]) == set(
        frame.loc[frame["deal_stage"] == "Prospecting", "opportunity_id"]
    )


def test_maven_open_deals_are_valued_at_list_price(shared_data):
    folder = shared_data / "maven-crm-sales-opportunities"
    frame = pd.read_csv(folder / "sales_pipeline.csv")
    prices = pd.read_csv(folder / "products.csv")
    # Independently: the export spells one product "GTXPro" where the price list has "GTX Pro".
    prices["key"] = prices["product"].str.replace(" ", "").str.lower()
    engaging = frame[frame["deal_stage"] == "Engaging"].assign(
        key=lambda f: f["product"].str.replace(" ", "").str.lower()
    )
    expected = engaging.merge(prices, on="key", how="left").set_index("opportunity_id")
    assert expected["sales_price"].notna().all() and engaging["close_value"].isna().all()
    imp = sf.imports.read([folder])
    changed = imp.quality[imp.quality["action"] == "changed"]
    assert set(changed["id"]) == set(expected.index)
    assert changed["reason"].str.contains("list price").all()
    # The forecast values each open deal at its list price, instead of 0.
    fc = sf.forecast(sf.fit(imp.log, as_of=imp.as_of), imp.log, "2018-01-01", "2018-12-31")
    deals = fc.deals.set_index("opportunity_id")["amount"]
    assert len(deals) == len(expected)
    assert np.allclose(deals.loc[expected.index].to_numpy(), expected["sales_price"].to_numpy())


def test_snapshot_deals_replayed_in_the_past_are_valued_while_open_not_by_outcome(shared_data):
    # Maven records what a deal closed at (lost deals at 0): as of a past date, a deal that was
    # then open is valued at its product's list price, and the actual of a backtest is still the
    # close value of what was won.
    folder = shared_data / "maven-crm-sales-opportunities"
    frame = pd.read_csv(folder / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"])
    prices = pd.read_csv(folder / "products.csv")
    price = dict(zip(prices["product"].str.replace(" ", "").str.lower(), prices["sales_price"]))
    a = pd.Timestamp("2017-06-01")
    was_open = frame[(frame["engage_date"] <= a) & (frame["close_date"] > a)].copy()
    was_open["list"] = was_open["product"].str.replace(" ", "").str.lower().map(price)
    assert (was_open.loc[was_open["deal_stage"] == "Lost", "close_value"] == 0).all()
    imp = sf.imports.read([folder])
    notes = imp.quality[imp.quality["action"] == "note"]["reason"]
    assert notes.str.contains("valued at their product's list price while open").any()
    model = sf.fit(imp.log, as_of=a.tz_localize("UTC"))
    fc = sf.forecast(model, imp.log, "2017-06-01", "2017-08-29", calibrate=False)
    deals = fc.deals.set_index("opportunity_id")["amount"]
    lost_later = was_open[was_open["deal_stage"] == "Lost"].set_index("opportunity_id")
    assert len(lost_later) > 100
    np.testing.assert_allclose(deals.loc[lost_later.index].to_numpy(), lost_later["list"])
    bt = sf.backtest(imp.log, as_of=[a], horizon_days=90, calibrate=False)
    won = frame[(frame["deal_stage"] == "Won") & (frame["close_date"] >= a)]
    won = won[won["close_date"] < a + pd.Timedelta(days=90)]
    assert bt.table["actual"].iloc[0] == pytest.approx(won["close_value"].sum())


def test_sparklesquad_snapshot_counts_and_win_rates_match_pandas(shared_data):
    path = shared_data / "sparklesquad-crm-dataset" / "sales-pipeline.csv"
    frame = pd.read_csv(path)
    imp = sf.imports.read([path])
    assert imp.source.startswith("sparklesquad")
    stages = frame["Deal_Stage"].value_counts()
    assert imp.log.n_opportunities == len(frame)
    assert imp.log.n_events == len(frame) + stages["Won"] + stages["Lost"]
    # Deals per current stage, from the log's last events.
    last = imp.log.to_frame().groupby("opportunity_id", observed=True)["stage"].last()
    assert last.value_counts().to_dict() == stages.to_dict()
    # Missing close values are reported: every open deal and the Won rows without one.
    changed = imp.quality[imp.quality["column"] == "Close_Value"]
    assert len(changed) == frame["Close_Value"].isna().sum()
    # Win rate per agent among closed deals (naive) equals pandas'.
    model = sf.fit(
        imp.log,
        groups=["owner"],
        prior=0,
        draws=0,
        min_groups_for_eb=10_000,
        fallback_concentration=0,
        as_of=imp.as_of,
    )
    naive = model.summary.xs(("In_Progress", "Won"), level=("stage", "destination"))["naive"]
    closed = frame[frame["Deal_Stage"].isin(["Won", "Lost"])]
    by_agent = closed.groupby("Sales_Agent")["Deal_Stage"].apply(lambda s: (s == "Won").mean())
    for agent, rate in by_agent.items():
        assert naive.loc[agent] == pytest.approx(rate, abs=1e-12), agent
    assert imp.as_of == pd.Timestamp("2017-12-31", tz="UTC")


# -- Salesforce ------------------------------------------------------------------------------------


def salesforce_exports():
    """A small Opportunity + OpportunityHistory export with every case worked out by hand."""
    opps = pd.DataFrame(
        {
            "Id": ["006A", "006B", "006C", "006D", "006E"],
            "IsDeleted": [0, 0, 0, 0, 1],
            "StageName": [
                "Closed Won",
                "Qualification",
                "Prospecting",
                "Closed Lost",
                "Prospecting",
            ],
            "StageSortOrder": [5, 2, 1, 6, 1],
            "Probability": [100, 20, 10, 0, 10],
            "IsClosed": [1, 0, 0, 1, 0],
            "IsWon": [1, 0, 0, 0, 0],
            "Amount": [1000, 500, 200, 300, 50],
            "CloseDate": ["2024-02-10", "2024-03-01", "2024-04-01", "2023-12-31", "2024-04-01"],
            "OwnerId": ["U1", "U2", "U1", "U2", "U1"],
            "Type": ["New Customer", "Upgrade", "New Customer", "Upgrade", "Upgrade"],
            "CreatedDate": [
                "2024-01-01 09:00:00",
                "2024-01-05 00:00:00",
                "2024-01-10 00:00:00",
                "2024-01-04 00:00:00",
                "2024-01-01 00:00:00",
            ],
            "LastStageChangeDate": [None, "2024-01-25 00:00:00", None, None, None],
            "LastModifiedDate": [
                "2024-02-12 00:00:00",
                "2024-01-25 00:00:00",
                "2024-01-12 00:00:00",
                "2024-01-20 00:00:00",
                "2024-01-02 00:00:00",
            ],
        }
    )
    history = pd.DataFrame(
        {
            "Id": [f"008{i:02d}" for i in range(9)],
            "OpportunityId": [
                "006A",
                "006A",
                "006A",
                "006A",
                "006B",
                "006D",
                "006D",
                "006E",
                "006Z",
            ],
            "CreatedDate": [
                "2024-01-01 09:00:00",
                "2024-01-15 00:00:00",
                "2024-01-20 00:00:00",
                "2024-02-12 00:00:00",
                "2024-01-05 00:00:00",
                "2024-01-03 00:00:00",
                "2024-01-20 00:00:00",
                "2024-01-01 00:00:00",
                "2024-01-02 00:00:00",
            ],
            "StageName": [
                "Prospecting",
                "Negotiation",
                "Negotiation",
                "Closed Won",
                "Prospecting",
                "Prospecting",
                "Closed Lost",
                "Prospecting",
                "Prospecting",
            ],
            "Amount": [800, 900, 1000, 1000, 500, 300, 300, 50, 10],
            "CloseDate": ["2024-03-01"] * 9,
            "Probability": [10, 80, 80, 100, 10, 10, 0, 10, 10],
            "ForecastCategory": [
                "Pipeline",
                "Commit",
                "Commit",
                "Closed",
                "Pipeline",
                "Pipeline",
                "Omitted",
                "Pipeline",
                "Pipeline",
            ],
        }
    )
    # A history row whose time is not ISO 8601 (day first): rejected, naming row 9.
    history.loc[9] = [
        "00809",
        "006B",
        "13/01/2024",
        "Qualification",
        500,
        "2024-03-01",
        20,
        "Pipeline",
    ]
    return history, opps


def test_salesforce_hand_worked_export():
    history, opps = salesforce_exports()
    imp = sf.imports.from_salesforce(history, opps)
    # Negotiation is no opportunity's current stage: placed by its probability (80) after
    # Qualification (20); Closed Lost is an outcome by IsClosed/IsWon.
    assert imp.funnel.stages == ["Prospecting", "Qualification", "Negotiation"]
    assert imp.funnel.won == ["Closed Won"] and imp.funnel.lost == ["Closed Lost"]
    ev = imp.log.to_frame()
    got = {
        o: list(zip(g["stage"].astype(str), g["time"].dt.strftime("%m-%d %H")))
        for o, g in ev.groupby("opportunity_id")
    }
    assert got == {
        # 006A: the Negotiation row of 01-20 is an amount change; Won on its CloseDate 02-10.
        "006A": [
            ("Prospecting", "01-01 09"),
            ("Negotiation", "01-15 00"),
            ("Closed Won", "02-10 00"),
        ],
        # 006B: the history ends in Prospecting, the current stage is added on LastStageChangeDate.
        "006B": [("Prospecting", "01-05 00"), ("Qualification", "01-25 00")],
        # 006C: no history, open: its stage from its CreatedDate.
        "006C": [("Prospecting", "01-10 00")],
        # 006D: CloseDate 2023-12-31 is before its Prospecting entry: closed at the history row.
        "006D": [("Prospecting", "01-03 00"), ("Closed Lost", "01-20 00")],
    }
    q = imp.quality

    def one(table, oid, column):
        same_id = q["id"].isna() if oid is None else q["id"] == oid
        rows = q[(q["table"] == table) & same_id & (q["column"] == column)]
        assert len(rows) == 1, (table, oid, column, q)
        return rows.iloc[0]

    assert one("Opportunity", "006E", "IsDeleted")["action"] == "rejected"
    assert one("OpportunityHistory", "006E", "OpportunityId")["row"] == 7
    unknown = one("OpportunityHistory", "006Z", "OpportunityId")
    assert unknown["row"] == 8 and "not in the Opportunity export" in unknown["reason"]
    early = one("OpportunityHistory", "006D", "CreatedDate")
    assert early["row"] == 5 and early["action"] == "changed"
    assert "(2024-01-04 00:00)" in early["reason"]  # 006D's CreatedDate, with its time
    close = one("Opportunity", "006D", "CloseDate")
    assert close["action"] == "changed" and "2023-12-31" in close["reason"]
    # ... closed at the history row of 2024-01-20 00:00 (hours and minutes, as written)
    assert close["reason"].endswith("closed at the history row that closed it (2024-01-20 00:00)")
    assert one("Opportunity", "006B", "StageName")["action"] == "added"
    assert one("Opportunity", "006C", "StageName")["action"] == "added"
    assert one("OpportunityHistory", None, "StageName")["value"] == "Negotiation"  # the note
    bad_date = one("OpportunityHistory", "006B", "CreatedDate")
    assert (
        bad_date["row"] == 9
        and bad_date["value"] == "13/01/2024"
        and "not a time" in bad_date["reason"]
    )
    assert len(q) == 9
    # 006D's creation is its first history row (before its CreatedDate), the others' CreatedDate.
    created = dict(zip(imp.log.opportunity_ids(), pd.to_datetime(imp.log.core.created, unit="s")))
    assert created["006D"] == pd.Timestamp("2024-01-03") and created["006A"] == pd.Timestamp(
        "2024-01-01 09:00"
    )
    # Amount history of 006A: 800, then 900, then 1000 from the change row of 01-20.
    offsets, _, values = imp.log.core.amount_history
    a = list(imp.log.opportunity_ids()).index("006A")
    amounts = values[offsets[a] : offsets[a + 1]]
    assert list(amounts[:3]) == [800, 900, 1000]
    assert imp.as_of == pd.Timestamp("2024-02-12", tz="UTC")
    assert list(imp.stages["stage"]) == [*imp.funnel.stages, "Closed Won", "Closed Lost"]
    # close_at="history": closes when the rep moved the deal.
    hist = sf.imports.from_salesforce(history, opps, close_at="history").log.to_frame()
    assert hist.loc[hist["stage"] == "Closed Won", "time"].iloc[0] == pd.Timestamp(
        "2024-02-12", tz="UTC"
    )


def test_salesforce_with_a_given_funnel_reports_stages_outside_it():
    history, opps = salesforce_exports()
    funnel = sf.Funnel(["Prospecting", "Qualification"], won="Closed Won", lost="Closed Lost")
    imp = sf.imports.from_salesforce(history, opps, funnel)
    bad = imp.quality[imp.quality["value"] == "Negotiation"]
    assert list(bad["row"]) == [1] and list(bad["action"]) == ["rejected"]
    assert list(bad["table"]) == ["OpportunityHistory"] and list(bad["column"]) == ["StageName"]
    mapped = sf.imports.from_salesforce(
        history, opps, funnel, stage_map={"Negotiation": "Qualification"}
    )
    rejected = mapped.quality[mapped.quality["action"] == "rejected"]
    assert sorted(rejected["id"]) == ["006B", "006E", "006E", "006Z"]  # bad date, deleted, unknown
    assert list(mapped.log.to_frame()["stage"].astype(str))[:3] == [
        "Prospecting",
        "Qualification",
        "Closed Won",
    ]


def test_salesforce_dev_org_sample_matches_pandas(shared_data):
    folder = shared_data / "salesforce-dev-org-sample"
    opps = pd.read_csv(folder / "Opportunity.csv")
    history = pd.read_csv(folder / "OpportunityHistory.csv")
    imp = sf.imports.read([folder])
    assert imp.source == "Salesforce Opportunity + OpportunityHistory"
    # Two history rows per opportunity with the same stage: one stage event each, one change.
    assert imp.log.n_opportunities == len(opps) == history["OpportunityId"].nunique()
    assert imp.log.n_events == len(opps)
    last = imp.log.to_frame().groupby("opportunity_id", observed=True)["stage"].last().astype(str)
    assert last.value_counts().to_dict() == opps["StageName"].value_counts().to_dict()
    # The funnel follows StageSortOrder of the open stages.
    open_ = opps[opps["IsClosed"] == 0].drop_duplicates("StageName").sort_values("StageSortOrder")
    assert imp.funnel.stages == list(open_["StageName"])
    assert imp.funnel.won == ["Closed Won"]
    # Every closed deal's CloseDate is before the history (demo data): reported, closed at the
    # history time.
    closed = opps[opps["IsClosed"] == 1]
    early = closed[
        pd.to_datetime(closed["CloseDate"]).dt.normalize()
        < pd.to_datetime(closed["CreatedDate"]).dt.normalize()
    ]
    changed = imp.quality[(imp.quality["column"] == "CloseDate")]
    assert set(changed["id"]) == set(early["Id"]) and len(changed) == len(early) > 0
    assert (imp.quality["action"] != "rejected").all()
    won = imp.log.to_frame()
    assert (won["stage"] == "Closed Won").sum() == opps["IsWon"].sum()
    # The close date in force is the second history row's (shifted) CloseDate, not the template.
    offsets, _, values = imp.log.core.close_date_history
    assert pd.Timestamp(int(values[offsets[1] - 1]), unit="s") == pd.Timestamp(
        history.loc[history["OpportunityId"] == imp.log.opportunity_ids()[0], "CloseDate"].iloc[-1]
    )
    assert imp.as_of == pd.Timestamp(history["CreatedDate"].max(), tz="UTC")


# -- HubSpot (no public export: a small realistic one, worked out by hand) -----------------------

HS_STAGES = pd.DataFrame(
    {
        "pipelineId": ["default"] * 5,
        "id": ["appointmentscheduled", "qualifiedtobuy", "contractsent", "closedwon", "closedlost"],
        "label": [
            "Appointment Scheduled",
            "Qualified To Buy",
            "Contract Sent",
            "Closed Won",
            "Closed Lost",
        ],
        "displayOrder": [0, 1, 2, 3, 4],
        "metadata.probability": ["0.2", "0.4", "0.8", "1.0", "0.0"],
        "metadata.isClosed": ["false", "false", "false", "true", "true"],
    }
)


def hubspot_deals():
    e, x = "hs_v2_date_entered_", "hs_v2_date_exited_"
    return pd.DataFrame(
        {
            "hs_object_id": [101, 102, 103, 104],
            "dealname": ["Acme renewal", "Globex pilot", "Initech", "Umbrella"],
            "pipeline": ["default"] * 4,
            "dealstage": ["closedwon", "contractsent", "closedlost", "appointmentscheduled"],
            "amount": [5000.0, np.nan, 1200.0, 800.0],
            "hubspot_owner_id": [11.0, 12.0, np.nan, 11.0],
            "createdate": [
                "2024-01-02T10:00:00Z",
                "2024-01-03T00:00:00Z",
                "2024-01-05T00:00:00Z",
                "2024-01-06T00:00:00Z",
            ],
            "closedate": ["2024-01-20T00:00:00Z", None, "2024-02-01T00:00:00Z", None],
            e + "appointmentscheduled": [
                "2024-01-02T10:00:00Z",
                "2024-01-03T00:00:00Z",
                "2024-01-04T00:00:00Z",
                None,
            ],
            x + "appointmentscheduled": [
                "2024-01-05T00:00:00Z",
                "2024-01-01T00:00:00Z",
                None,
                None,
            ],
            e + "qualifiedtobuy": ["2024-01-05T00:00:00Z", "2024-01-10T00:00:00Z", None, None],
            x + "qualifiedtobuy": ["2024-01-20T00:00:00Z", "2024-01-15T00:00:00Z", None, None],
            e + "contractsent": [None, "not a date", None, None],
            e + "closedwon": ["2024-01-20T00:00:00Z", None, None, None],
            e + "closedlost": [None, None, None, None],
            e + "999": [None, "2024-01-04T00:00:00Z", None, None],
        }
    )


def test_hubspot_hand_worked_export():
    imp = sf.imports.from_hubspot(hubspot_deals(), HS_STAGES)
    assert imp.funnel.stages == ["Appointment Scheduled", "Qualified To Buy", "Contract Sent"]
    assert imp.funnel.won == ["Closed Won"] and imp.funnel.lost == ["Closed Lost"]
    ev = imp.log.to_frame()
    got = {
        o: list(zip(g["stage"].astype(str), g["time"].dt.strftime("%m-%d %H")))
        for o, g in ev.groupby("opportunity_id")
    }
    assert got == {
        "101": [
            ("Appointment Scheduled", "01-02 10"),
            ("Qualified To Buy", "01-05 00"),
            ("Closed Won", "01-20 00"),
        ],
        # Contract Sent's entry is unreadable: added at the latest exit (Qualified To Buy's).
        "102": [
            ("Appointment Scheduled", "01-03 00"),
            ("Qualified To Buy", "01-10 00"),
            ("Contract Sent", "01-15 00"),
        ],
        # Closed Lost without an entry date: added at the close date.
        "103": [("Appointment Scheduled", "01-04 00"), ("Closed Lost", "02-01 00")],
        # No entry date at all: its current stage from its create date.
        "104": [("Appointment Scheduled", "01-06 00")],
    }
    q = imp.quality
    cells = {(r.id, r.column): (r.row, r.action) for r in q.itertuples()}
    assert cells == {
        ("102", "hs_v2_date_exited_appointmentscheduled"): (1, "rejected"),  # exit before entry
        ("102", "hs_v2_date_entered_contractsent"): (1, "rejected"),  # not a date
        ("102", "hs_v2_date_entered_999"): (1, "rejected"),  # stage id not in the pipeline
        ("102", "amount"): (1, "changed"),
        ("102", "dealstage"): (1, "added"),
        ("103", "dealstage"): (2, "added"),
        ("103", "createdate"): (2, "changed"),  # created after its first entry
        ("103", "hubspot_owner_id"): (2, "changed"),
        ("104", "dealstage"): (3, "added"),
    }
    assert (
        "exit before entry"
        in q.loc[q["column"].str.endswith("exited_appointmentscheduled"), "reason"].iloc[0]
    )
    assert q.loc[q["column"] == "hs_v2_date_entered_contractsent", "value"].iloc[0] == "not a date"
    assert "'999'" in q.loc[q["column"] == "hs_v2_date_entered_999", "reason"].iloc[0]
    assert list(imp.stages["outcome"]) == ["open", "open", "open", "won", "lost"]


def test_hubspot_pipeline_choice_and_read(tmp_path):
    two = pd.concat([HS_STAGES, HS_STAGES.assign(pipelineId="renewals")], ignore_index=True)
    with pytest.raises(sf.DataError, match=r"several pipelines \['default', 'renewals'\]"):
        sf.imports.from_hubspot(hubspot_deals(), two)
    deals = hubspot_deals()
    deals.loc[3, "pipeline"] = "renewals"
    imp = sf.imports.from_hubspot(deals, two, pipeline="default")
    assert imp.log.n_opportunities == 3
    other = imp.quality[imp.quality["column"] == "pipeline"]
    assert list(other["id"]) == ["104"] and list(other["action"]) == ["rejected"]
    hubspot_deals().to_csv(tmp_path / "deals.csv", index=False)
    HS_STAGES.to_csv(tmp_path / "stages.csv", index=False)
    read = sf.imports.read([tmp_path])
    assert read.source == "HubSpot deals + pipeline stages"
    assert read.log.n_events == 9 and len(read.quality) == 9
    with pytest.raises(sf.DataError, match="needs the pipeline stages"):
        sf.imports.read([tmp_path / "deals.csv"])


def test_read_refuses_an_incomplete_salesforce_pair(tmp_path):
    history, _ = salesforce_exports()
    history.to_csv(tmp_path / "OpportunityHistory.csv", index=False)
    with pytest.raises(sf.DataError, match="needs Opportunity as well"):
        sf.imports.read([tmp_path / "OpportunityHistory.csv"])


# -- Olist -----------------------------------------------------------------------------------------


def test_olist_funnel_rejects_the_deal_won_before_first_contact(shared_data):
    folder = shared_data / "olist-marketing-funnel"
    leads = pd.read_csv(folder / "olist_marketing_qualified_leads_dataset.csv")
    deals = pd.read_csv(folder / "olist_closed_deals_dataset.csv")
    imp = sf.imports.read([folder])
    assert imp.source.startswith("Olist")
    joined = deals.reset_index().merge(leads, on="mql_id")
    early = joined[
        pd.to_datetime(joined["won_date"]) < pd.to_datetime(joined["first_contact_date"])
    ]
    assert len(early) == 1
    rejected = imp.quality[imp.quality["action"] == "rejected"]
    assert list(rejected["id"]) == list(early["mql_id"])
    assert list(rejected["row"]) == list(early["index"]) and list(rejected["column"]) == [
        "won_date"
    ]
    # Every lead is kept (the early deal's lead stays open); the other deals are won.
    assert imp.log.n_opportunities == len(leads)
    assert imp.log.n_events == len(leads) + len(deals) - 1
    # Won deals per closer (sr_id) match pandas.
    ev = imp.log.to_frame()
    won_ids = set(ev.loc[ev["stage"] == "Won", "opportunity_id"])
    ok = deals[~deals["mql_id"].isin(early["mql_id"])]
    assert won_ids == set(ok["mql_id"])
    model = sf.fit(imp.log, groups=["owner"], prior=0, draws=0, as_of=imp.as_of)
    wins = model.summary.xs(("MQL", "Won"), level=("stage", "destination"))["exits"]
    by_sr = ok["sr_id"].value_counts()
    for sr, n in by_sr.items():
        assert wins.loc[sr] == n, sr
    # Open leads are censored at the data's end, never lost.
    assert imp.as_of == pd.Timestamp(deals["won_date"].max(), tz="UTC")
    overall = model.stage_summary().loc["MQL"]
    assert overall["n"] == len(leads) and overall["censored"] == len(leads) - len(ok)


def test_read_reports_progress_by_bytes_parsed_and_can_be_cancelled(tmp_path):
    history = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 2, 2],
            "stage": ["A", "B", "A", "Won"],
            "time": ["2024-01-01", "2024-01-05", "2024-01-02", "2024-01-09"],
        }
    )
    acts = pd.DataFrame(
        {"opportunity_id": [1, 2, 2], "time": ["2024-01-03"] * 3, "kind": ["call", "call", "demo"]}
    )
    history.to_csv(tmp_path / "history.csv", index=False)
    acts.to_csv(tmp_path / "activities.csv", index=False)
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    seen: list[float] = []
    imp = sf.imports.read([tmp_path], progress=lambda f: seen.append(f) is None)
    assert imp.log.n_events == 4 and imp.activities is not None
    # Starts at 0, ends at 1; the history file is parsed first, then the activities: 90% of the
    # bar goes by bytes, the last 10% is building the log.
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    first = 0.9 * sizes["history.csv"] / sum(sizes.values())
    assert any(f == pytest.approx(first) for f in seen), (seen, first)
    assert 0.9 in [pytest.approx(f) for f in seen]
    with pytest.raises(sf.CancelledError):
        sf.imports.read([tmp_path], progress=lambda f: f < 0.5)
