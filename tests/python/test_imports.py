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
    assert list(note["column"]) == ["value"] and note["reason"].iloc[0].startswith("1 rows")
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
    assert again.log.n_events == 7 and again.quality.empty


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
    assert set(notes["table"]) == {"accounts.csv", "products.csv", "sales_teams.csv"}
    rejected = imp.quality[imp.quality["action"] == "rejected"]
    assert set(rejected["id"]) == set(
        frame.loc[frame["deal_stage"] == "Prospecting", "opportunity_id"]
    )


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
