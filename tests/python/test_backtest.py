"""Backtest: calibrated intervals and better pinball loss than the baselines on known processes;
no look-ahead."""

from __future__ import annotations

import dataclasses

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
            calibrate=False,  # the model's own interval (calibration: test_calibration.py)
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
        "smartfunnel_uncalibrated",
    }
    assert len(bt.table) == 5 * len(dates)
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


# -- the compiled backtest against the previous Python implementation --------------------------


def _previous_closed_only(model: sf.FunnelModel) -> np.ndarray:
    """P(win) per stage from the naive rates of model.summary, solved with numpy (as before)."""
    s = model.summary.reset_index()
    if "group" in s.columns:
        s = s[s["group"] == "(all)"]
    stages = list(model.funnel.stages)
    n = len(stages)
    q, r = np.zeros((n, n)), np.zeros(n)
    for stage, dest, outcome, v in zip(s["stage"], s["destination"], s["outcome"], s["naive"]):
        if not np.isfinite(v) or v == 0:
            continue
        i = stages.index(str(stage))
        if outcome == "open":
            q[i][stages.index(str(dest))] += v
        elif outcome == "won":
            r[i] += v
    return np.linalg.solve(np.eye(n) - q, r)


def _quantile(d: dict, level: float) -> float:
    cdf = np.cumsum(np.asarray(d["pmf"]))
    i = int(np.searchsorted(cdf, level * cdf[-1] - 1e-15, side="left"))
    return float(d["origin"] + d["step"] * min(i, len(cdf) - 1))


def _previous_backtest(log, dates, horizon, ladder, fit, tz, **fc):
    """The Python loop sf.backtest ran before the core did: a fit per date, a forecast, the
    baselines' exact distributions, and the scores with pandas."""
    core = sf._core
    stages = list(log.funnel.stages)
    rows, deal_rows = [], []
    for when in dates:
        stamp = pd.Timestamp(when).tz_convert("UTC")
        t = int(stamp.value // 10**9)
        model = sf.fit(log, dataclasses.replace(fit, as_of=stamp))
        start = stamp.tz_convert(tz).normalize()
        # The last day is horizon - 1 days after the first, through midnight after it.
        end = (start + pd.Timedelta(days=horizon - 1)).normalize() + pd.Timedelta(days=1)
        t0 = int(start.tz_convert("UTC").value // 10**9)
        t1 = int(end.tz_convert("UTC").value // 10**9)
        raw = core.forecast(model.core, log.core, t0, t1, as_of=t, scenarios=0, seed=0, **fc)
        later = core.forecast(
            model.core, log.core, t0, t1, as_of=max(t, t1 - 1), exact=False, scenarios=0,
            include_arrivals=False,
        )  # fmt: skip
        actual = float(later["realised"])
        won = np.isin(raw["opportunity"], later["realised_opportunity"]).astype(float)
        stage = np.asarray(raw["stage"], dtype=np.int64)
        methods = {"smartfunnel": (np.asarray(raw["p_win_period"]), raw["exact"])}
        baselines = {
            "weighted_pipeline": model.win_probability().to_numpy()[stage],
            "closed_only": _previous_closed_only(model)[stage],
            "static_ladder": np.array([ladder[s] for s in stages])[stage],
        }
        for name, p in baselines.items():
            p = np.clip(np.nan_to_num(p), 0.0, 1.0)
            methods[name] = (p, core.exact_distribution(raw["amount"], p, raw["realised"]))
        for name, (p, dist) in methods.items():
            qs = {q: _quantile(dist, q) for q in (0.1, 0.5, 0.9)}
            pin = np.mean([max(q * (actual - v), (q - 1) * (actual - v)) for q, v in qs.items()])
            rows.append(
                {
                    "as_of": stamp, "method": name, "expected": dist["mean"], "P10": qs[0.1],
                    "P50": qs[0.5], "P90": qs[0.9], "actual": actual,
                    "error": dist["mean"] - actual, "covered": qs[0.1] <= actual <= qs[0.9],
                    "pinball": float(pin), "open_deals": len(p),
                }
            )  # fmt: skip
            deal_rows.append(pd.DataFrame({"as_of": stamp, "method": name, "p": p, "won": won}))
    table = pd.DataFrame(rows)
    deals = pd.concat(deal_rows, ignore_index=True)
    metrics = []
    for method, g in table.groupby("method", sort=False):
        dd = deals[deals["method"] == method]
        p = np.clip(dd["p"].to_numpy(), 1e-12, 1 - 1e-12)
        y = dd["won"].to_numpy()
        nz = g["actual"] != 0
        metrics.append(
            {
                "method": method, "mae": g["error"].abs().mean(),
                "mape": (g["error"].abs()[nz] / g["actual"][nz]).mean(),
                "bias": g["error"].mean(), "coverage_p10_p90": g["covered"].mean(),
                "pinball": g["pinball"].mean(), "brier": float(np.mean((p - y) ** 2)),
                "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
                "periods": len(g), "deals": len(dd),
            }
        )  # fmt: skip
    edges = np.linspace(0.0, 1.0, 11)
    d = deals.copy()
    d["bin"] = np.clip(np.digitize(d["p"], edges[1:-1]), 0, 9)
    cal = (
        d.groupby(["method", "bin"], sort=False)
        .agg(predicted=("p", "mean"), observed=("won", "mean"), deals=("p", "size"))
        .reset_index()
    )
    cal["low"] = edges[cal["bin"]]
    cal["high"] = edges[cal["bin"] + 1]
    cal = cal[["method", "low", "high", "predicted", "observed", "deals"]]
    return table, deals, pd.DataFrame(metrics).set_index("method"), cal


@pytest.mark.parametrize(
    "fit, tz, kw",
    [
        (sf.FitOptions(draws=0), "UTC", {}),
        (sf.FitOptions(draws=0, groups=["owner"], half_life=60), "America/New_York", {}),
        (
            sf.FitOptions(draws=0),
            "Europe/Paris",
            {"stale_after_days": 120, "parameter_uncertainty": True, "parameter_draws": 5},
        ),
    ],
)
def test_equals_the_previous_python_implementation(fit, tz, kw):
    """On the bundled sample, every table of the compiled backtest is the previous Python loop's."""
    sample = sf.datasets.sample()
    dates = pd.date_range("2024-06-15", "2025-01-15", freq="MS", tz="UTC")
    bt = sf.backtest(
        sample.log, dates, horizon_days=45, ladder=LADDER, fit=fit, tz=tz, calibrate=False, **kw
    )
    fc = {
        "stale_after_days": kw.get("stale_after_days"),
        "parameter_draws": kw.get("parameter_draws", 0),
    }
    table, deals, metrics, cal = _previous_backtest(
        sample.log, dates, 45, LADDER, fit, tz, include_arrivals=True, **fc
    )
    assert len(table) == 4 * len(dates) and len(deals) > 100
    close = dict(check_exact=False, rtol=1e-12, atol=1e-9)
    pd.testing.assert_frame_equal(bt.table, table, **close)
    pd.testing.assert_frame_equal(bt.deals, deals, **close)
    pd.testing.assert_frame_equal(bt.metrics, metrics, **close)
    pd.testing.assert_frame_equal(bt.calibration, cal, **close)


def test_calibrated_backtest_keeps_the_uncalibrated_forecast_beside_it(sample):
    """The calibrated smartfunnel rows have the uncalibrated forecast's mean (the level is not
    applied) and a range at least as wide; the uncalibrated rows are the backtest without
    calibration; threads change nothing."""
    dates = pd.date_range("2024-09-01", "2024-12-01", freq="MS", tz="UTC")
    kw = dict(horizon_days=30, fit=sf.FitOptions(draws=0))
    bt = sf.backtest(sample.log, as_of=dates, **kw)
    plain = sf.backtest(sample.log, as_of=dates, calibrate=False, **kw)
    t = bt.table.set_index(["method", "as_of"])
    raw = t.loc["smartfunnel_uncalibrated"]
    pd.testing.assert_frame_equal(
        raw, plain.table.set_index(["method", "as_of"]).loc["smartfunnel"]
    )
    cal = t.loc["smartfunnel"]
    np.testing.assert_allclose(cal["expected"], raw["expected"], rtol=1e-9)
    assert ((cal["P90"] - cal["P10"]) >= (raw["P90"] - raw["P10"]) * (1 - 1e-9)).all()
    assert ((cal["P90"] - cal["P10"]) > (raw["P90"] - raw["P10"])).any()
    two = sf.backtest(sample.log, as_of=dates, threads=2, **kw)
    pd.testing.assert_frame_equal(two.table, bt.table)
