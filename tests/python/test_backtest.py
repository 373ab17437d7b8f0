"""Backtest: calibrated intervals and better pinball loss than the baselines on known processes;
no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

LADDER = {"Prospecting": 0.10, "Qualification": 0.25, "Proposal": 0.50, "Negotiation": 0.75}


def test_coverage_and_pinball_over_200_independent_histories():
    """200 histories of the bundled process, each forecast for the 30 days after 2024-09-01."""
    covered, pinball = [], {}
    for seed in range(200):
        sim = sf.datasets.simulate(
            n_opportunities=400, start="2024-01-01", as_of="2024-12-31", seed=1000 + seed
        )
        bt = sf.backtest(
            sim.log,
            as_of=["2024-09-01"],
            horizon_days=30,
            ladder=LADDER,
            fit=sf.FitOptions(draws=0),
        )
        t = bt.table.set_index("method")
        covered.append(bool(t.loc["smartfunnel", "covered"]))
        for method in t.index:
            pinball.setdefault(method, []).append(float(t.loc[method, "pinball"]))
    n = len(covered)
    tolerance = 3 * np.sqrt(0.8 * 0.2 / n)  # binomial: 3 standard errors around 80%
    assert abs(np.mean(covered) - 0.8) <= tolerance, np.mean(covered)
    ours = np.mean(pinball["smartfunnel"])
    assert ours < np.mean(pinball["static_ladder"])
    assert ours < np.mean(pinball["closed_only"])
    assert ours < np.mean(pinball["weighted_pipeline"])


@pytest.fixture(scope="module")
def sample():
    return sf.datasets.simulate(n_opportunities=800, start="2024-01-01", as_of="2025-03-31", seed=5)


def test_no_look_ahead(sample):
    as_of = pd.Timestamp("2024-10-01", tz="UTC")
    opts = sf.FitOptions(draws=0, groups=["owner"])
    base = sf.backtest(sample.log, as_of=[as_of], horizon_days=60, ladder=LADDER, fit=opts)
    ev = sample.events.copy()
    later = ev["time"] > as_of
    ev.loc[later, "time"] = ev.loc[later, "time"] + pd.Timedelta(days=3)
    ev.loc[later, "amount"] = ev.loc[later, "amount"] * 2
    owners = np.asarray(ev["owner"].cat.categories)
    ev.loc[later, "owner"] = owners[0]
    log = sf.EventLog.from_frame(
        sample.funnel, ev, amount="amount", owner="owner", created="created"
    )
    again = sf.backtest(log, as_of=[as_of], horizon_days=60, ladder=LADDER, fit=opts)
    cols = ["method", "expected", "P10", "P50", "P90", "open_deals"]
    pd.testing.assert_frame_equal(base.table[cols], again.table[cols])
    # ...while what actually happened (amounts doubled after as_of) did change.
    assert not np.allclose(base.table["actual"], again.table["actual"])


def test_metrics_and_calibration_tables(sample):
    dates = pd.date_range("2024-07-01", "2024-12-01", freq="MS", tz="UTC")
    bt = sf.backtest(
        sample.log, as_of=dates, horizon_days=30, ladder=LADDER, fit=sf.FitOptions(draws=0)
    )
    assert set(bt.table["method"]) == {
        "smartfunnel",
        "weighted_pipeline",
        "closed_only",
        "static_ladder",
    }
    assert len(bt.table) == 4 * len(dates)
    m = bt.metrics
    t = bt.table
    ours = t[t["method"] == "smartfunnel"]
    assert m.loc["smartfunnel", "mae"] == pytest.approx(
        np.mean(np.abs(ours["expected"] - ours["actual"]))
    )
    assert m.loc["smartfunnel", "bias"] == pytest.approx(np.mean(ours["expected"] - ours["actual"]))
    d = bt.deals[bt.deals["method"] == "smartfunnel"]
    assert m.loc["smartfunnel", "brier"] == pytest.approx(np.mean((d["p"] - d["won"]) ** 2))
    cal = bt.calibration
    assert cal.groupby("method")["deals"].sum().eq(ours["open_deals"].sum()).all()
    assert ((cal["predicted"] >= cal["low"]) & (cal["predicted"] <= cal["high"])).all()
    with pytest.raises(ValueError, match="ladder has no probability"):
        sf.backtest(sample.log, as_of=dates[:1], ladder={"Prospecting": 0.1})


def test_threads_give_identical_tables_and_progress_can_cancel(sample):
    dates = pd.date_range("2024-07-01", "2024-10-01", freq="MS", tz="UTC")
    opts = sf.FitOptions(draws=0)
    one = sf.backtest(sample.log, as_of=dates, horizon_days=30, fit=opts)
    seen = []
    two = sf.backtest(
        sample.log,
        as_of=dates,
        horizon_days=30,
        fit=opts,
        threads=2,
        progress=lambda f: seen.append(f) or True,
    )
    pd.testing.assert_frame_equal(one.table, two.table)
    assert sorted(seen) == [0.25, 0.5, 0.75, 1.0]
    with pytest.raises(sf.CancelledError):
        sf.backtest(sample.log, as_of=dates, horizon_days=30, fit=opts, progress=lambda f: f < 0.5)
