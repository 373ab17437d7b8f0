"""Forecast: time-bounded win probabilities, exact and Monte Carlo distributions, arrivals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def sample_model():
    sim = sf.datasets.simulate(n_opportunities=1500, seed=11)
    model = sf.fit(sim.log, as_of="2025-03-31", draws=100)
    return sim, model


# -- the day-grid recursion against an independent simulation of the same process --------------


def sample_first_step(kernel, age, rng):
    """(destination column, ticks until leaving) for a deal still in the stage at `age`, drawn
    directly from the kernel's definition (empirical mass up to `supported`, then a geometric tail
    with the remaining mass; past `supported`, the smoothed late mix with the same hazard)."""
    mass = np.asarray(kernel["mass"])
    tail = np.asarray(kernel["tail_mass"])
    lam = kernel["tail_hazard"]
    sup = kernel["supported"]
    if age <= sup:
        ahead = mass[age:]
        z = ahead.sum() + tail.sum()
        if z > 1e-300:
            u = rng.random() * z
            flat = ahead.ravel()
            cum = np.cumsum(flat)
            if u < cum[-1] if len(cum) else False:
                i = int(np.searchsorted(cum, u, side="right"))
                t, j = divmod(i, mass.shape[1])
                return j, t
            j = int(
                np.searchsorted(np.cumsum(tail), u - (cum[-1] if len(cum) else 0.0), side="right")
            )
            j = min(j, len(tail) - 1)
            return j, (sup - age) + int(rng.geometric(lam))
    mix = np.asarray(kernel["tail_mix"])
    j = int(np.searchsorted(np.cumsum(mix), rng.random() * mix.sum(), side="right"))
    return min(j, len(mix) - 1), int(rng.geometric(lam)) - 1


def simulate_won_within(model, stage, age, horizon, n, seed):
    kernels = [model.core.kernel(0, s) for s in range(len(model.funnel.stages))]
    n_open = len(kernels)
    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(n):
        s, a, elapsed = stage, age, 0
        while True:
            j, dt = sample_first_step(kernels[s], a, rng)
            elapsed += dt
            if elapsed > horizon:
                break
            if j == n_open:
                wins += 1
                break
            if j == n_open + 1:
                break
            s, a = j, 0
    return wins / n


@pytest.mark.parametrize(
    ("stage", "age", "horizon"),
    [(0, 0, 30), (0, 0, 120), (1, 12, 60), (2, 3, 45), (3, 20, 15), (3, 400, 60), (1, 900, 200)],
)
def test_recursion_matches_simulation_of_the_same_kernel(sample_model, stage, age, horizon):
    _, model = sample_model
    p = float(model.p_win([stage], [age], [horizon])[0])
    n = 6000
    sim = simulate_won_within(model, stage, age, horizon, n, seed=stage * 1000 + age)
    tol = 4.5 * np.sqrt(max(p * (1 - p), 1e-4) / n)
    assert abs(sim - p) <= tol, (p, sim, tol)


def test_time_bounded_is_monotone_and_below_won_ever(sample_model):
    _, model = sample_model
    stages = np.repeat(np.arange(4), 5)
    ages = np.tile([0, 5, 30, 90, 500], 4)
    ever = model.p_win(stages, ages)
    prev = np.zeros_like(ever)
    for h in [0, 1, 7, 30, 90, 365, 2000]:
        now = model.p_win(stages, ages, h)
        assert np.all(now >= prev - 1e-12)
        assert np.all(now <= ever + 1e-12)
        prev = now
    # The limit of the recursion is P(won ever).
    np.testing.assert_allclose(model.p_win(stages, ages, 20000), ever, atol=1e-6)
    # At age 0 P(won ever) is the chain's win probability.
    np.testing.assert_allclose(
        model.p_win(np.arange(4), 0), model.win_probability().to_numpy(), rtol=1e-9
    )


# -- distributions ---------------------------------------------------------------------------


def test_exact_distribution_hand_example():
    # Two deals: 100 with p 1/2, 300 with p 1/4. Totals 0 (3/8), 100 (3/8), 300 (1/8), 400 (1/8).
    d = sf.forecasting._Distribution(
        sf._core.exact_distribution(np.array([100.0, 300.0]), np.array([0.5, 0.25]))
    )
    assert d.mean == pytest.approx(125.0)  # 100 * 3/8 + 300 * 1/8 + 400 * 1/8
    assert d.variance == pytest.approx(100**2 * 0.25 + 300**2 * 0.25 * 0.75)
    assert float((d.values() * d.pmf).sum()) == pytest.approx(
        125.0, rel=1e-9
    )  # mean kept on the lattice
    assert d.probability_at_least(50) == pytest.approx(5 / 8, abs=1e-9)
    assert d.probability_at_least(299) == pytest.approx(1 / 4, abs=1e-9)
    assert d.probability_at_least(399) == pytest.approx(1 / 8, abs=1e-9)
    assert d.quantile(0.3) == pytest.approx(0.0, abs=d.step)
    assert d.quantile(0.7) == pytest.approx(100.0, abs=d.step)


def test_exact_and_monte_carlo_agree_on_10000_deals():
    rng = np.random.default_rng(3)
    n = 10_000
    amount = np.round(rng.lognormal(np.log(20_000), 0.9, n), 2)
    p = rng.beta(0.8, 2.5, n)
    d = sf.forecasting._Distribution(sf._core.exact_distribution(amount, p))
    scenarios = 20_000
    keys = np.array([sf._core.opportunity_key(f"deal-{i}") for i in range(n)], dtype=np.uint64)
    cents = np.round(amount * 100).astype(np.int64)
    mc = np.asarray(sf._core.monte_carlo_cents(cents, p, keys, scenarios, 7, 2)) / 100.0
    assert d.mean == pytest.approx(float(amount @ p), rel=1e-12)
    sd = np.sqrt(d.variance)
    assert abs(mc.mean() - d.mean) < 4 * sd / np.sqrt(scenarios)
    # CDFs agree within the Monte Carlo error (DKW band) plus the lattice's own error.
    grid = d.mean + sd * np.linspace(-3, 3, 25)
    f_exact = np.array([1 - d.probability_at_least(x) for x in grid])
    f_mc = np.array([np.mean(mc < x) for x in grid])
    dkw = np.sqrt(np.log(2 / 1e-6) / (2 * scenarios))
    lattice = d.w1_bound / sd + d.truncated_mass + 1e-3  # step-wide smearing of each point
    assert np.max(np.abs(f_exact - f_mc)) < dkw + lattice
    assert d.truncated_mass < 1e-9


def test_monte_carlo_is_bit_identical_for_threads_and_partitions():
    rng = np.random.default_rng(5)
    n = 3000
    cents = rng.integers(1, 10_000_000, n).astype(np.int64)
    p = rng.random(n)
    keys = np.array([sf._core.opportunity_key(str(i)) for i in range(n)], dtype=np.uint64)
    one = np.asarray(sf._core.monte_carlo_cents(cents, p, keys, 5000, 42, 1))
    two = np.asarray(sf._core.monte_carlo_cents(cents, p, keys, 5000, 42, 2))
    np.testing.assert_array_equal(one, two)
    order = rng.permutation(n)
    a, b = order[: n // 3], order[n // 3 :]
    parts = sum(
        np.asarray(sf._core.monte_carlo_cents(cents[i], p[i], keys[i], 5000, 42, 1)) for i in (a, b)
    )
    np.testing.assert_array_equal(one, parts)
    assert not np.array_equal(
        one, np.asarray(sf._core.monte_carlo_cents(cents, p, keys, 5000, 43, 1))
    )


# -- the forecast -----------------------------------------------------------------------------


def test_forecast_adds_up_and_bounds_hold(sample_model):
    sim, model = sample_model
    fc = sf.forecast(model, sim.log, start="2025-04-01", end="2025-06-30", scenarios=4000, seed=1)
    deals = fc.deals
    assert (deals["p_win_period"] <= deals["p_win_ever"] + 1e-12).all()
    assert ((deals["p_win_period"] >= 0) & (deals["p_win_ever"] <= 1)).all()
    arrivals = fc.arrivals["expected"].sum()
    assert fc.expected == pytest.approx(fc.realised + deals["expected"].sum() + arrivals, rel=1e-9)
    q = fc.quantiles([0.1, 0.5, 0.9])
    assert q[0.1] <= q[0.5] <= q[0.9]
    assert fc.probability_at_least(q[0.1]) >= 0.9 - 1e-9
    by = fc.by("owner")
    assert by["expected"].sum() == pytest.approx(deals["expected"].sum(), rel=1e-9)
    mc = sf.forecast(
        model,
        sim.log,
        start="2025-04-01",
        end="2025-06-30",
        method="monte_carlo",
        scenarios=4000,
        seed=1,
    )
    assert abs(mc.expected - fc.expected) < 4 * np.sqrt(fc.exact.variance / 4000)
    # A longer period never has a smaller expected revenue.
    longer = sf.forecast(model, sim.log, start="2025-04-01", end="2025-09-30", scenarios=0)
    assert longer.expected >= fc.expected
    assert "Forecast(" in repr(fc) and "<div>" in fc._repr_html_()


def test_forecast_before_the_model_as_of_raises(sample_model):
    sim, model = sample_model
    with pytest.raises(sf.InvalidOptionsError, match="before the model's as_of"):
        sf.forecast(model, sim.log, start="2025-04-01", end="2025-06-30", as_of="2025-01-01")


def _uncalibrated(*args, **kwargs):
    """sf.forecast without calibration: the tests of the model's own distribution."""
    return sf.forecast(*args, calibrate=False, **kwargs)


def test_realised_wins_and_hand_made_arrivals():
    # One stage A; every deal is won the day it enters (duration 0). Ninety deals created in the
    # 180 days before as_of (one every other day), amount 1,000 each, so 0.5 deals a day.
    f = sf.Funnel(["A"], won="Won", lost="Lost")
    as_of = pd.Timestamp("2025-06-30", tz="UTC")
    rows = []
    for i in range(90):
        t = as_of - pd.Timedelta(days=2 * i)
        rows += [(i, "A", t, 1000.0), (i, "Won", t, 1000.0)]
    events = pd.DataFrame(rows, columns=["opportunity_id", "stage", "time", "amount"])
    log = sf.EventLog.from_frame(f, events, amount="amount")
    model = sf.fit(log, as_of=as_of, prior=0)  # unsmoothed: A -> Won with probability 1
    # Period 2025-06-21 .. 2025-07-10: realised = wins on 06-22, 06-24, ..., 06-30 (5 deals).
    fc = _uncalibrated(model, log, start="2025-06-21", end="2025-07-10", scenarios=20_000, seed=3)
    assert fc.realised == pytest.approx(5000.0)
    assert len(fc.realised_deals) == 5
    # Arrivals: deals created on ticks 0..10 after as_of (the rest of 06-30, then 07-01 .. 07-10)
    # win the same day, so the expected number of new wins is 0.5 * 11 = 5.5.
    arr = fc.arrivals
    assert arr["rate_per_day"].iloc[0] == pytest.approx(0.5)
    assert arr["expected_wins"].iloc[0] == pytest.approx(5.5, rel=1e-12)
    assert fc.expected == pytest.approx(5000 + 1000 * arr["expected_wins"].iloc[0], rel=1e-9)
    # Poisson number of wins: P(revenue >= 5000 + 3000) = P(N >= 3). The lattice splits each
    # 1,000 between its two nearest points (a step of a few units apart), so ask half-way.
    lam = arr["expected_wins"].iloc[0]
    from math import exp, factorial

    p_at_least_3 = 1 - sum(exp(-lam) * lam**k / factorial(k) for k in range(3))
    assert fc.probability_at_least(5000 + 2500) == pytest.approx(p_at_least_3, abs=1e-9)
    mc = _uncalibrated(
        model,
        log,
        start="2025-06-21",
        end="2025-07-10",
        method="monte_carlo",
        scenarios=20_000,
        seed=3,
    )
    assert mc.probability_at_least(5000 + 2500) == pytest.approx(p_at_least_3, abs=0.015)


def test_baselines_by_the_same_api(sample_model):
    sim, model = sample_model
    kwargs = dict(start="2025-04-01", end="2025-06-30", scenarios=2000, seed=2)
    weighted = sf.forecast(model, sim.log, probabilities="weighted_pipeline", **kwargs)
    deals = weighted.deals
    win = model.win_probability()
    np.testing.assert_allclose(deals["p_win_period"], win[deals["stage"]].to_numpy())
    assert weighted.expected == pytest.approx(
        weighted.realised + float((deals["amount"] * deals["p_win_period"]).sum())
    )
    ladder = {"Prospecting": 0.1, "Qualification": 0.25, "Proposal": 0.5, "Negotiation": 0.75}
    lad = sf.forecast(model, sim.log, probabilities=ladder, **kwargs)
    np.testing.assert_allclose(lad.deals["p_win_period"], lad.deals["stage"].map(ladder).to_numpy())
    mc = sf.forecast(model, sim.log, probabilities=ladder, method="monte_carlo", **kwargs)
    assert abs(mc.expected - lad.expected) < 4 * np.sqrt(lad.exact.variance / 2000)
    with pytest.raises(ValueError, match="probabilities must be"):
        sf.forecast(model, sim.log, probabilities="guess", **kwargs)


def test_win_date_distribution_is_cumulative_and_ends_at_the_period_probability(sample_model):
    sim, model = sample_model
    fc = sf.forecast(model, sim.log, start="2025-04-01", end="2025-06-30", scenarios=0)
    deal = fc.deals.iloc[0]
    dist = fc.win_date_distribution(deal["opportunity_id"])
    assert dist.index[-1] == pd.Timestamp("2025-06-30", tz="UTC")
    assert (np.diff(dist.to_numpy()) >= -1e-12).all()
    assert dist.iloc[-1] == pytest.approx(deal["p_win_period"], abs=1e-12)
    with pytest.raises(sf.UnknownOpportunityError):
        fc.win_date_distribution("no such deal")


def test_parameter_uncertainty_widens_intervals_reproducibly(sample_model):
    sim, model = sample_model
    kwargs = dict(start="2025-04-01", end="2025-06-30", scenarios=3000, seed=4)
    point = _uncalibrated(model, sim.log, **kwargs)
    mixed = _uncalibrated(model, sim.log, parameter_uncertainty=True, parameter_draws=40, **kwargs)
    width = lambda fc: fc.quantile(0.9) - fc.quantile(0.1)  # noqa: E731
    assert width(mixed) > width(point)
    assert mixed.exact.variance > point.exact.variance
    assert mixed.expected == pytest.approx(point.expected, rel=0.05)
    # Monte Carlo with draws: identical for any thread count.
    a = _uncalibrated(
        model,
        sim.log,
        parameter_uncertainty=True,
        parameter_draws=40,
        method="monte_carlo",
        threads=1,
        **kwargs,
    )
    b = _uncalibrated(
        model,
        sim.log,
        parameter_uncertainty=True,
        parameter_draws=40,
        method="monte_carlo",
        threads=2,
        **kwargs,
    )
    np.testing.assert_array_equal(a.scenarios, b.scenarios)
    assert abs(a.expected - mixed.expected) < 4 * np.sqrt(mixed.exact.variance / 3000)


# -- the grid: time-bounded probabilities in whole days, whatever the fit's tick ----------------


def _midnight_log(sim):
    """The simulated histories with every time moved to the midnight (UTC) at or before it."""
    ev = sim.events.copy()
    for col in ("time", "created", "close_date"):
        ev[col] = ev[col].dt.floor("D")
    log = sf.EventLog.from_frame(
        sim.funnel, ev, amount="amount", owner="owner", close_date="close_date", created="created"
    )
    return ev, log


def test_midnight_histories_forecast_the_same_with_a_one_second_and_a_one_day_tick():
    # Step-aligned histories: the one-second fit's kernels added up over each day are the day
    # fit's kernels, so every time-bounded number agrees to rounding.
    sim = sf.datasets.simulate(n_opportunities=1200, seed=31)
    _, log = _midnight_log(sim)
    fine = sf.fit(log, as_of="2025-03-31", tick="1s", draws=0)
    days = sf.fit(log, as_of="2025-03-31", draws=0)
    assert fine.core.grid_ticks == 86400 and days.core.grid_ticks == 1
    kw = dict(start="2025-03-22", end="2025-06-30", stale_after_days=80.5, scenarios=1000, seed=4)
    fa, fb = sf.forecast(fine, log, **kw), sf.forecast(days, log, **kw)
    a, b = fa.deals, fb.deals
    assert len(a) > 50
    pd.testing.assert_series_equal(a["opportunity_id"], b["opportunity_id"])
    np.testing.assert_allclose(a["age_days"], b["age_days"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(a["p_win_period"], b["p_win_period"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["p_win_ever"], b["p_win_ever"], rtol=0, atol=1e-12)
    assert fa.realised > 0 and fa.realised == fb.realised
    assert fa.expected == pytest.approx(fb.expected, rel=1e-12)
    da, db = fa.distribution(), fb.distribution()
    np.testing.assert_allclose(da["revenue"], db["revenue"], rtol=1e-12)
    np.testing.assert_allclose(da["probability"], db["probability"], rtol=0, atol=1e-12)
    # The per-day win dates of a deal, and model.p_win with ages and horizons in days.
    deal = a["opportunity_id"].iloc[0]
    wa, wb = fa.win_date_distribution(deal), fb.win_date_distribution(deal)
    pd.testing.assert_index_equal(wa.index, wb.index)
    assert len(wa) == 92  # from as_of (2025-03-31) to 2025-06-30, the period's last day
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12)
    stages = np.repeat(np.arange(4), 4)
    ages = np.tile([0.0, 2.5, 30.0, 120.0], 4)
    for h in (0.0, 1.0, 45.5, 90.0, 365.0):
        np.testing.assert_allclose(
            fine.p_win(stages, ages, h), days.p_win(stages, ages, h), rtol=0, atol=1e-12
        )


def test_one_second_tick_forecasts_a_quarter_against_the_simulated_future():
    # Timestamped histories simulated to 2025-06-30; the models see them to 2025-03-31 and
    # forecast the next quarter. The one-second fit (refused past 18 hours before the grid) and
    # the day fit must both match what the simulation then did, and each other far more closely.
    sim = sf.datasets.simulate(n_opportunities=3000, seed=17)
    as_of = pd.Timestamp("2025-03-31", tz="UTC")
    fine = sf.fit(sim.log, as_of=as_of, tick="1s", draws=0)
    days = sf.fit(sim.log, as_of=as_of, draws=0)
    kw = dict(start="2025-03-31", end="2025-06-29", scenarios=0, include_arrivals=False)
    fa, fb = sf.forecast(fine, sim.log, **kw), sf.forecast(days, sim.log, **kw)
    a, b = fa.deals.set_index("opportunity_id"), fb.deals.set_index("opportunity_id")
    # Ground truth, independently from the events: the open deals at as_of that reached Won
    # inside [as_of, 2025-06-30).
    ev = sim.events
    won = ev[
        (ev["stage"] == "Won")
        & (ev["time"] >= as_of)
        & (ev["time"] < pd.Timestamp("2025-06-30", tz="UTC"))
    ]
    realised = a.index.isin(won["opportunity_id"])
    assert len(a) > 200 and realised.sum() > 30
    for frame in (a, b):
        p = frame["p_win_period"].to_numpy()
        sd = np.sqrt(np.sum(p * (1 - p)))  # of the number of wins, were p the truth
        assert abs(realised.sum() - p.sum()) < 4 * sd, (realised.sum(), p.sum(), sd)
    # The two fits differ only where exits and censorings (at as_of) share a day, which the day
    # fit orders exits first: a relative ~1/n on a day's hazard with n stays at risk (hundreds
    # for young deals, tens for the oldest: measured 0.007 at most, 0.0004 typically). The
    # expected number of wins then moves by far less than its own sd against the truth.
    diff = np.abs(a["p_win_period"] - b["p_win_period"].reindex(a.index))
    assert diff.max() < 0.02 and diff.median() < 0.002
    assert abs(a["p_win_period"].sum() - b["p_win_period"].sum()) < 0.05 * sd
    # The daily win dates of a deal from the one-second fit: one per day of the quarter.
    dist = fa.win_date_distribution(a.index[0])
    assert len(dist) == 91  # 2025-03-31 to 2025-06-29
    assert dist.iloc[-1] == pytest.approx(a["p_win_period"].iloc[0], abs=1e-12)


def test_grid_days_rounds_durations_to_its_step(sample_model):
    sim, model = sample_model
    # From as_of's day: the period bounds are whole steps from as_of (weeks here).
    kw = dict(start="2025-03-31", end="2025-06-29", scenarios=0)
    daily = sf.forecast(model, sim.log, **kw)
    weekly = sf.forecast(model, sim.log, grid_days=7, **kw)
    # A week's rounding of the same process: close, not equal.
    assert weekly.expected == pytest.approx(daily.expected, rel=0.1)
    assert weekly.expected != daily.expected
    deal = weekly.deals["opportunity_id"].iloc[0]
    dates = weekly.win_date_distribution(deal)
    assert (np.diff(dates.index) == pd.Timedelta(days=7)).all()  # one entry a week
    assert dates.iloc[-1] == pytest.approx(weekly.deals["p_win_period"].iloc[0], abs=1e-12)
    with pytest.raises(sf.InvalidOptionsError, match="grid_days"):
        sf.forecast(model, sim.log, grid_days=0, **kw)


def test_maven_arrivals_valued_like_won_deals(shared_data):
    # The Maven export records lost deals at close_value 0: a new deal that wins must be valued
    # like the deals won in the arrivals lookback (close_value of the Won rows closed in
    # (as_of - 180 days, as_of]), not like the deals created in it (lost ones at 0).
    folder = shared_data / "maven-crm-sales-opportunities"
    imp = sf.imports.read([folder])
    as_of = pd.Timestamp("2017-07-01", tz="UTC")
    model = sf.fit(imp.log, as_of=as_of)
    fc = sf.forecast(model, imp.log, as_of, pd.Timestamp("2017-10-01", tz="UTC"))
    frame = pd.read_csv(folder / "sales_pipeline.csv")
    close = pd.to_datetime(frame["close_date"], utc=True)
    won = frame[
        (frame["deal_stage"] == "Won") & (close > as_of - pd.Timedelta(days=180)) & (close <= as_of)
    ]
    a = fc.arrivals
    assert list(a["amount_source"]) == ["won"]
    assert a["amount_count"].iloc[0] == len(won)
    assert a["mean_amount"].iloc[0] == pytest.approx(won["close_value"].mean(), rel=1e-12)
    # The amounts at creation of the deals created in the window (engaged in it), lost at 0,
    # are what the arrivals used before: well below the won deals' mean.
    engaged = pd.to_datetime(frame["engage_date"], utc=True)
    created = frame[(engaged > as_of - pd.Timedelta(days=180)) & (engaged <= as_of)]
    assert a["created"].iloc[0] == len(created)
    assert created["close_value"].fillna(0).mean() < 0.9 * won["close_value"].mean()
    # The pipeline grows (engagements per month rise through the window): the rate is the trend's
    # level at as_of, nearer the engagements of the next quarter than the flat count over 180 days.
    assert list(a["rate_source"]) == ["trend"]
    assert a["rate_growth_per_day"].iloc[0] > 0
    flat = len(created) / 180.0
    end = pd.Timestamp("2017-10-01", tz="UTC")
    next_quarter = ((engaged >= as_of) & (engaged < end)).sum() / (end - as_of).days
    rate = a["rate_per_day"].iloc[0]
    assert rate > flat
    assert abs(rate - next_quarter) < abs(flat - next_quarter)
