"""Calibrated intervals end to end (issue 12, item 3): 209 weekly walk-forward periods of a
simulated log whose win rate moves with a common monthly factor, and of the same log without it.

The truth is known: a deal closing in month m is won with probability 0.4 S_m, S_m lognormal
(log sd 0.3, mean 1) shared by every deal of the month. Independent deals with known
probabilities cannot see S, so their P10-P90 under-covers; the range calibrated from each date's
own past covers about 80%. Without the factor the calibrated range stays close to the model's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

T0 = pd.Timestamp("2021-01-01", tz="UTC")
DAYS = 1800


def shocked_log(sigma: float, seed: int, per_day: int = 6) -> sf.EventLog:
    rng = np.random.default_rng(seed)
    n = per_day * DAYS
    created = np.sort(rng.uniform(0, DAYS, n))
    closed = created + rng.exponential(15.0, n)
    month = (closed // 30).astype(int)
    factor = np.exp(sigma * rng.standard_normal(month.max() + 1) - sigma**2 / 2)
    won = rng.random(n) < np.clip(0.4 * factor[month], 0, 1)
    ids = np.arange(n)
    done = closed < DAYS
    amount = rng.lognormal(8, 0.5, n)
    ev = pd.concat(
        [
            pd.DataFrame({"opportunity_id": ids, "stage": "A", "day": created, "amount": amount}),
            pd.DataFrame(
                {
                    "opportunity_id": ids[done],
                    "stage": np.where(won[done], "Won", "Lost"),
                    "day": closed[done],
                    "amount": amount[done],
                }
            ),
        ],
        ignore_index=True,
    )
    ev["time"] = T0 + pd.to_timedelta(ev.pop("day"), unit="D")
    return sf.EventLog.from_frame(sf.Funnel(["A"], won="Won", lost="Lost"), ev, amount="amount")


DATES = list(pd.date_range(T0 + pd.Timedelta(days=300), T0 + pd.Timedelta(days=1760), freq="7D"))


@pytest.fixture(scope="module", params=[0.3, 0.0], ids=["common_factor", "independent"])
def replay(request):
    log = shocked_log(request.param, seed=5)
    bt = sf.backtest(log, DATES, horizon_days=30, fit=sf.FitOptions(draws=0), threads=2)
    return request.param, bt


def test_calibrated_range_covers_80_percent_of_209_periods(replay):
    sigma, bt = replay
    m = bt.metrics
    assert int(m.loc["smartfunnel", "periods"]) == len(DATES) == 209
    assert m.loc["smartfunnel", "coverage_p10_p90"] == pytest.approx(0.80, abs=0.07)
    if sigma > 0:  # independent deals cannot see the factor
        assert m.loc["smartfunnel_uncalibrated", "coverage_p10_p90"] < 0.6
        assert m.loc["smartfunnel", "pinball"] < m.loc["smartfunnel_uncalibrated", "pinball"]


def test_without_a_common_factor_the_range_changes_little(replay):
    sigma, bt = replay
    t = bt.table.pivot(index="as_of", columns="method")
    width = t["P90"] - t["P10"]
    ratio = float((width["smartfunnel"] / width["smartfunnel_uncalibrated"]).median())
    if sigma > 0:
        assert ratio > 1.5
    else:
        # The model's own range covers 74% here (its rates are estimates); calibration widens it
        # by about a tenth, not more.
        assert 1.0 <= ratio < 1.15
    # The mean is never moved (the level is not applied).
    np.testing.assert_allclose(
        t["expected"]["smartfunnel"], t["expected"]["smartfunnel_uncalibrated"]
    )
