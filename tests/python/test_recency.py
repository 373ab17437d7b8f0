"""half_life="auto" (issue 12, item 2): the fit's decay chosen by the log's own walk-forward score.

Simulated logs with known truth: conversion that drifts (the win rate rises from 20% to 80% over
two years) and conversion that does not. With drift, a finite half-life forecasts the past
periods better than no decay and its fit is closer to today's true win rate; without, no decay
is as good as any.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

T0 = pd.Timestamp("2023-01-01", tz="UTC")
DAYS = 720


def simulated(p_start: float, p_end: float, seed: int) -> sf.EventLog:
    """Four deals a day in one stage A, each closing after an exponential 20 days; a deal that
    closes on day t is won with probability p(t), linear from p_start (day 0) to p_end (day DAYS)."""
    rng = np.random.default_rng(seed)
    n = 4 * DAYS
    created = np.sort(rng.uniform(0, DAYS, n))
    closed = created + rng.exponential(20.0, n)
    p = p_start + (p_end - p_start) * np.clip(closed / DAYS, 0, 1)
    won = rng.random(n) < p
    ids = np.arange(n)
    rows = [pd.DataFrame({"opportunity_id": ids, "stage": "A", "day": created})]
    done = closed < DAYS
    rows.append(
        pd.DataFrame(
            {
                "opportunity_id": ids[done],
                "stage": np.where(won[done], "Won", "Lost"),
                "day": closed[done],
            }
        )
    )
    ev = pd.concat(rows, ignore_index=True)
    ev["time"] = T0 + pd.to_timedelta(ev["day"], unit="D")
    ev["amount"] = 1000.0
    funnel = sf.Funnel(["A"], won="Won", lost="Lost")
    return sf.EventLog.from_frame(funnel, ev.drop(columns="day"), amount="amount")


AS_OF = T0 + pd.Timedelta(days=DAYS)


def test_drifting_conversion_gets_a_finite_half_life_closer_to_the_truth():
    log = simulated(0.2, 0.8, seed=1)
    model = sf.fit(log, as_of=AS_OF, half_life="auto")
    rec = model.recency
    assert rec is not None and rec["chosen"].sum() == 1
    chosen = rec[rec["chosen"]].iloc[0]
    none = rec[rec["half_life_days"] == 0].iloc[0]
    assert 0 < chosen["half_life_days"] <= 180
    assert chosen["pinball"] < 0.9 * none["pinball"]
    assert (rec["periods"] >= 5).all()
    # The options hold the chosen value, and the fit is the one with that half-life.
    assert model.options.half_life == chosen["half_life_days"]
    same = sf.fit(log, as_of=AS_OF, half_life=chosen["half_life_days"])
    assert model == same
    # Against the truth: P(win) of a deal closing now is 0.8; no decay averages two years.
    truth = 0.8
    flat = sf.fit(log, as_of=AS_OF)
    assert abs(model.win_probability()["A"] - truth) < abs(flat.win_probability()["A"] - truth)
    assert "lowest mean pinball loss" in rec.attrs["reason"]


def test_stable_conversion_loses_nothing_without_decay():
    log = simulated(0.5, 0.5, seed=2)
    rec = sf.fit(log, as_of=AS_OF, half_life="auto").recency
    none = rec[rec["half_life_days"] == 0].iloc[0]
    assert none["pinball"] <= 1.1 * rec["pinball"].min()
    # Shorter half-lives use fewer stays: the shortest is the noisiest.
    assert rec.set_index("half_life_days")["pinball"].loc[30.0] >= none["pinball"]


def test_too_short_a_history_keeps_no_decay_and_says_so():
    log = simulated(0.2, 0.8, seed=3)
    model = sf.fit(log, as_of=T0 + pd.Timedelta(days=150), half_life="auto")
    assert model.options.half_life is None
    assert "too short a history to choose" in model.recency.attrs["reason"]


def test_auto_is_resolved_by_fit_only():
    log = simulated(0.5, 0.5, seed=4)
    with pytest.raises(sf.InvalidOptionsError, match=r"chosen by smartfunnel\.fit"):
        sf.backtest(log, as_of=[AS_OF], fit=sf.FitOptions(half_life="auto"))
