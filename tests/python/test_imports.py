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
