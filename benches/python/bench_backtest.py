"""Side-by-side: sf.backtest (the walk-forward replay in the C++ core) against the Python loop it
replaced, on the same simulated log, in the same run.

The reference below is the previous ``smartfunnel.backtesting`` loop, kept here only as the code an
analyst would otherwise have: per date a fit and a forecast through the compiled core, a second
forecast for what was won, the closed-only chain solved with numpy from ``model.summary``, the
baselines' exact distributions, and the table, deal rows, metrics and calibration with pandas.
Both give the same tables (checked below).

    .venv/bin/python benches/python/bench_backtest.py [--events 1000000] [--dates 52] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

import smartfunnel as sf
from smartfunnel import _convert, _core
from smartfunnel.forecasting import _day_bounds, _Distribution

LADDER = {"Prospecting": 0.10, "Qualification": 0.25, "Proposal": 0.50, "Negotiation": 0.75}
QUANTILES = (0.1, 0.5, 0.9)


# -- the previous Python implementation (reference) -------------------------------------------
def _closed_only_win(model: sf.FunnelModel) -> np.ndarray:
    s = model.summary.reset_index()
    if "group" in s.columns:
        s = s[s["group"] == "(all)"]
    stages = list(model.funnel.stages)
    n = len(stages)
    q = np.zeros((n, n))
    r = np.zeros(n)
    for stage, dest, outcome, v in zip(s["stage"], s["destination"], s["outcome"], s["naive"]):
        if not np.isfinite(v) or v == 0:
            continue
        i = stages.index(str(stage))
        if outcome == "open":
            q[i][stages.index(str(dest))] += v
        elif outcome == "won":
            r[i] += v
    try:
        return np.asarray(np.linalg.solve(np.eye(n) - q, r))
    except np.linalg.LinAlgError:
        return np.full(n, np.nan)


def _pinball(actual: float, quantiles: Mapping[float, float]) -> float:
    return float(
        np.mean([max(q * (actual - v), (q - 1) * (actual - v)) for q, v in quantiles.items()])
    )


def python_backtest(
    log: sf.EventLog,
    as_of: Sequence[Any],
    horizon_days: int,
    ladder: Mapping[str, float],
    fit: sf.FitOptions,
    tz: str = "UTC",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    stages = list(log.funnel.stages)
    rows: list[dict[str, Any]] = []
    deal_rows: list[pd.DataFrame] = []
    for when in as_of:
        t = _convert.timestamp_seconds(when, "as_of")
        stamp = _convert.to_timestamp(t)
        model = sf.fit(log, dataclasses.replace(fit, as_of=stamp))
        start_day = stamp.tz_convert(tz).normalize()
        end_day = start_day + pd.Timedelta(days=horizon_days - 1)
        t0, t1 = _day_bounds(start_day, end_day, tz)
        raw = _core.forecast(
            model.core, log.core, t0, t1, as_of=t, scenarios=0, include_arrivals=True, seed=0
        )
        actual_raw = _core.forecast(
            model.core, log.core, t0, t1, as_of=max(t, t1 - 1), exact=False, scenarios=0,
            include_arrivals=False,
        )  # fmt: skip
        actual = float(actual_raw["realised"])
        won_ids = set(np.asarray(actual_raw["realised_opportunity"]).tolist())
        opp = np.asarray(raw["opportunity"], dtype=np.int64)
        outcome = np.array([o in won_ids for o in opp.tolist()], dtype=float)
        amount = np.asarray(raw["amount"])
        stage = np.asarray(raw["stage"], dtype=np.int64)
        win = model.win_probability().to_numpy()
        methods = {"smartfunnel": (np.asarray(raw["p_win_period"]), _Distribution(raw["exact"]))}
        baselines = {
            "weighted_pipeline": win[stage],
            "closed_only": _closed_only_win(model)[stage],
            "static_ladder": np.array([ladder[s] for s in stages])[stage],
        }
        for name, p in baselines.items():
            p = np.clip(np.nan_to_num(p), 0.0, 1.0)
            dist = _Distribution(_core.exact_distribution(amount, p, float(raw["realised"])))
            methods[name] = (p, dist)
        for name, (p, dist) in methods.items():
            qs = {q: dist.quantile(q) for q in QUANTILES}
            rows.append(
                {
                    "as_of": stamp, "method": name, "expected": dist.mean, "P10": qs[0.1],
                    "P50": qs[0.5], "P90": qs[0.9], "actual": actual, "error": dist.mean - actual,
                    "covered": qs[0.1] <= actual <= qs[0.9], "pinball": _pinball(actual, qs),
                    "open_deals": len(amount),
                }
            )  # fmt: skip
            deal_rows.append(pd.DataFrame({"as_of": stamp, "method": name, "p": p, "won": outcome}))
    table = pd.DataFrame(rows)
    deals = pd.concat(deal_rows, ignore_index=True)
    out = []
    for method, g in table.groupby("method", sort=False):
        dd = deals[deals["method"] == method]
        p = np.clip(dd["p"].to_numpy(), 1e-12, 1 - 1e-12)
        y = dd["won"].to_numpy()
        nonzero = g["actual"] != 0
        out.append(
            {
                "method": method, "mae": g["error"].abs().mean(),
                "mape": (g["error"].abs()[nonzero] / g["actual"][nonzero]).mean(),
                "bias": g["error"].mean(), "coverage_p10_p90": g["covered"].mean(),
                "pinball": g["pinball"].mean(), "brier": float(np.mean((p - y) ** 2)),
                "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
                "periods": len(g), "deals": len(dd),
            }
        )  # fmt: skip
    metrics = pd.DataFrame(out).set_index("method")
    d = deals.copy()
    edges = np.linspace(0.0, 1.0, 11)
    d["bin"] = np.clip(np.digitize(d["p"], edges[1:-1]), 0, 9)
    cal = (
        d.groupby(["method", "bin"], sort=False)
        .agg(predicted=("p", "mean"), observed=("won", "mean"), deals=("p", "size"))
        .reset_index()
    )
    cal["low"] = edges[cal["bin"]]
    cal["high"] = edges[cal["bin"] + 1]
    return table, deals, metrics, cal[["method", "low", "high", "predicted", "observed", "deals"]]


# -- the bench -----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dates", type=int, default=52)
    ap.add_argument("--horizon", type=int, default=90)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    sim = sf.datasets.simulate(
        n_opportunities=args.events * 10 // 29, start="2023-01-01", as_of="2025-01-01", seed=1
    )
    log = sim.log
    dates = pd.date_range("2024-01-01 12:00", periods=args.dates, freq="7D", tz="UTC")
    fit = sf.FitOptions()
    print(
        f"{log.n_events:,} events, {log.n_opportunities:,} opportunities, {len(dates)} weekly dates"
    )

    t0 = time.perf_counter()
    bt = sf.backtest(log, dates, horizon_days=args.horizon, ladder=LADDER, fit=fit, threads=1)
    _ = bt.table, bt.metrics, bt.calibration
    t_core = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = bt.deals  # the deal rows as a DataFrame, built on first use
    t_deals = time.perf_counter() - t0
    t_core2 = float("nan")
    if args.threads > 1:
        t0 = time.perf_counter()
        sf.backtest(
            log, dates, horizon_days=args.horizon, ladder=LADDER, fit=fit, threads=args.threads
        )
        t_core2 = time.perf_counter() - t0
    t0 = time.perf_counter()
    table, deals, metrics, cal = python_backtest(log, dates, args.horizon, LADDER, fit)
    t_py = time.perf_counter() - t0

    close = dict(check_exact=False, rtol=1e-12, atol=1e-9)
    pd.testing.assert_frame_equal(bt.table, table, **close)
    pd.testing.assert_frame_equal(bt.deals, deals, **close)
    pd.testing.assert_frame_equal(bt.metrics, metrics, **close)
    pd.testing.assert_frame_equal(bt.calibration, cal, **close)
    print(f"  same tables; {len(deals):,} deal rows")
    print(f"  previous Python loop:      {t_py:8.2f} s  ({t_py / len(dates) * 1e3:6.0f} ms a date)")
    print(
        f"  sf.backtest (C++), 1 thread: {t_core:6.2f} s  ({t_core / len(dates) * 1e3:6.0f} ms a date)"
        f"  ratio {t_py / t_core:4.1f}x"
    )
    print(
        f"  the deal rows as a DataFrame: {t_deals:6.2f} s more (with them: ratio "
        f"{t_py / (t_core + t_deals):4.1f}x)"
    )
    if args.threads > 1:
        print(
            f"  sf.backtest, {args.threads} threads:    {t_core2:6.2f} s  ratio {t_py / t_core2:4.1f}x"
        )


if __name__ == "__main__":
    main()
