"""Reverse funnel: hand-computed plan, and the planned pipeline reaches the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

DAY0 = pd.Timestamp("2024-01-01", tz="UTC")


def d(x):
    return DAY0 + pd.Timedelta(days=x)


def test_hand_computed_plan():
    # One stage A. 96 deals created every other day (days 0..190), each won or lost exactly 10 days
    # later (alternately: P(win) = 1/2), amount 1,000, three calls each. As of day 200 nothing is
    # open. Target 5,000 for days 201..300.
    f = sf.Funnel(["A"], won="Won", lost="Lost")
    rows, calls = [], []
    for i in range(96):
        c = 2 * i
        rows += [
            (i, "A", d(c), 1000.0, "ann"),
            (i, "Won" if i % 2 else "Lost", d(c + 10), 1000.0, "ann"),
        ]
        calls += [(i, d(c + 1), "call")] * 3
    log = sf.EventLog.from_frame(
        f,
        pd.DataFrame(rows, columns=["opportunity_id", "stage", "time", "amount", "owner"]),
        amount="amount",
        owner="owner",
    )
    acts = sf.ActivityLog.from_frame(
        log, pd.DataFrame(calls, columns=["opportunity_id", "time", "kind"])
    )
    model = sf.fit(log, as_of=d(200), prior=0, draws=0)
    p = sf.plan(model, log, target=5000, start=d(201), end=d(300), activities=acts, confidence=0.5)
    team = p.loc["team"]
    assert p.loc["ann", "target"] == 5000  # the only rep
    assert team["gap"] == 5000  # no open pipeline: its median is 0
    assert team["p_reach_target"] == 0.0
    assert team["deal_size"] == 1000
    # P(won in the period | entering A now) = 1/2 (won at day 10, well inside 100 days):
    assert team["pipeline_needed[A]"] == pytest.approx(10_000)
    assert team["deals_needed[A]"] == pytest.approx(10)
    # Weeks 0..14 cover the 100 days; a deal created at the start of week w is won in the period
    # when 7w + 10 <= 100, i.e. w <= 12: sum q_w = 13 * 1/2 = 6.5, so 5000 / (1000 * 6.5) a week.
    assert team["new_deals_per_week"] == pytest.approx(5000 / 6500)
    # Three calls per deal; calls per advance x advances per deal = 3 calls per new deal.
    assert team["call_per_week"] == pytest.approx(3 * 5000 / 6500)


def test_adding_the_planned_pipeline_reaches_the_target():
    sim = sf.datasets.simulate(n_opportunities=3000, seed=12)
    as_of = "2025-03-31"
    model = sf.fit(sim.log, as_of=as_of, draws=0)
    target = 2_500_000
    p = sf.plan(
        model, sim.log, target=target, start="2025-04-01", end="2025-06-30", by=None, confidence=0.5
    )
    team = p.loc["team"]
    assert team["gap"] > 0
    # Add the planned Negotiation pipeline as new deals entering Negotiation at as_of.
    k = round(float(team["deals_needed[Negotiation]"]))
    size = team["pipeline_needed[Negotiation]"] / k
    extra = pd.DataFrame(
        {
            "opportunity_id": np.arange(10_000_000, 10_000_000 + k),
            "stage": "Negotiation",
            "time": pd.Timestamp(as_of, tz="UTC"),
            "amount": size,
            "owner": "Ana",
            "close_date": pd.Timestamp("2025-06-30", tz="UTC"),
            "created": pd.Timestamp(as_of, tz="UTC"),
        }
    )
    events = pd.concat([sim.events, extra], ignore_index=True)
    log = sf.EventLog.from_frame(
        sim.funnel, events, amount="amount", owner="owner", created="created"
    )
    fc = sf.forecast(
        model,
        log,
        start="2025-04-01",
        end="2025-06-30",
        as_of=as_of,
        scenarios=0,
        include_arrivals=False,
    )
    # The plan aims at P(revenue >= target) = 0.5; the sum of today's median and the added deals'
    # expectation is not exactly the median of the sum, so allow a little.
    assert fc.probability_at_least(target) == pytest.approx(0.5, abs=0.06)


@pytest.fixture(scope="module")
def reps_world():
    sample = sf.datasets.sample()
    model = sf.fit(sample.log, groups=["owner"])
    return sample.log, model


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (-5, "target must be an amount in [0, 1e+15]"),
        (1e300, "target must be an amount in [0, 1e+15]"),
        (float("nan"), "got nan"),
        ("a lot", "target must be a number, got 'a lot'"),
        (True, "target must be a number, got True"),
        ({}, "the mapping names no rep"),
        ({"Ana": -1.0}, "target['Ana'] must be an amount"),
    ],
)
def test_targets_that_are_no_revenue_are_refused(reps_world, target, message):
    log, model = reps_world
    with pytest.raises(sf.InvalidOptionsError) as err:
        sf.plan(model, log, target, "2025-07-01", "2025-09-30")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_target_for_an_unknown_rep_names_it_and_the_closest_reps(reps_world):
    log, model = reps_world
    reps = sorted(k[0] for k in model.groups if len(k) == 1)
    typo = reps[0][:-1] + ("x" if reps[0][-1] != "x" else "y")  # one letter off a real name
    target = {r: 1e5 for r in reps[1:]} | {typo: 1e5}
    with pytest.raises(sf.InvalidOptionsError) as err:
        sf.plan(model, log, target, "2025-07-01", "2025-09-30")
    text = str(err.value)
    assert f"{typo!r} (closest: {reps[0]!r}" in text and "does not have" in text


def test_a_period_already_over_is_refused(reps_world):
    log, model = reps_world
    day = model.as_of.normalize().tz_localize(None)
    past = (day - pd.Timedelta(days=120), day - pd.Timedelta(days=30))
    with pytest.raises(sf.InvalidOptionsError, match="is over at as_of"):
        sf.plan(model, log, 1e5, *past)
    # A period that has started but not ended is planned, with finite figures.
    p = sf.plan(model, log, 1e5, day - pd.Timedelta(days=10), day + pd.Timedelta(days=50), by=None)
    numbers = p.select_dtypes("number").to_numpy(dtype=float)
    assert np.isfinite(numbers[~np.isnan(numbers)]).all()
