"""backtest(log, as_of=[...]) -> Backtest: replay the log, forecast each period, compare with what
was actually won, beside the baselines a CRM would use."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np
import pandas as pd

from . import _convert, _core, _html
from .event_log import EventLog
from .forecasting import _day_bounds, _Distribution
from .model import FitOptions, FunnelModel, fit

QUANTILES = (0.1, 0.5, 0.9)


def _closed_only_win(model: FunnelModel) -> np.ndarray:
    """P(win) per open stage from the naive closed-only rates d_k / sum d, through the chain."""
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


def _date_rows(
    stamp: pd.Timestamp,
    model: FunnelModel,
    ladder: Mapping[str, float] | None,
    amount: np.ndarray,
    stage: np.ndarray,
    p_smartfunnel: np.ndarray,
    smartfunnel: _Distribution,
    outcome: np.ndarray,
    realised: float,
    actual: float,
) -> tuple[list[dict[str, Any]], list[pd.DataFrame]]:
    """The table rows and deal rows of one replayed date, every method side by side."""
    stages = list(model.funnel.stages)
    win = model.win_probability().to_numpy()
    methods: dict[str, tuple[np.ndarray, _Distribution]] = {
        "smartfunnel": (p_smartfunnel, smartfunnel),
    }
    baselines = {"weighted_pipeline": win[stage], "closed_only": _closed_only_win(model)[stage]}
    if ladder is not None:
        baselines["static_ladder"] = np.array([ladder[s] for s in stages])[stage]
    for name, p in baselines.items():
        p = np.clip(np.nan_to_num(p), 0.0, 1.0)
        methods[name] = (p, _Distribution(_core.exact_distribution(amount, p, realised)))
    rows: list[dict[str, Any]] = []
    deal_rows: list[pd.DataFrame] = []
    for name, (p, dist) in methods.items():
        qs = {q: dist.quantile(q) for q in QUANTILES}
        rows.append(
            {
                "as_of": stamp,
                "method": name,
                "expected": dist.mean,
                "P10": qs[0.1],
                "P50": qs[0.5],
                "P90": qs[0.9],
                "actual": actual,
                "error": dist.mean - actual,
                "covered": qs[0.1] <= actual <= qs[0.9],
                "pinball": _pinball(actual, qs),
                "open_deals": len(amount),
            }
        )
        deal_rows.append(pd.DataFrame({"as_of": stamp, "method": name, "p": p, "won": outcome}))
    return rows, deal_rows


def backtest(
    log: EventLog,
    as_of: Sequence[Any],
    horizon_days: int = 90,
    ladder: Mapping[str, float] | None = None,
    fit: FitOptions | None = None,
    *,
    include_arrivals: bool = True,
    tz: str = "UTC",
    stale_after_days: float | None = None,
    calibration_bins: int = 10,
    parameter_uncertainty: bool = False,
    parameter_draws: int = 50,
    grid_days: float | None = None,
    threads: int = 1,
    progress: Callable[[float], bool] | None = None,
) -> Backtest:
    """Replay the log as of each date, forecast the following `horizon_days`, compare with actuals.

    For each date the model is fitted with `fit` (its prior, half-life and groups are what is
    tested) as of that date, so nothing after it is seen; the period is ``[as_of day, as_of day +
    horizon_days - 1]``. What was actually won comes from the whole log.

    Methods compared, each giving every open deal a probability of being won in the period:

    - ``smartfunnel``: the time-bounded semi-Markov probabilities (plus arrivals);
    - ``weighted_pipeline``: amount x the stage's censoring-aware win probability, ignoring time;
    - ``closed_only``: the same with the naive closed-only conversion rates;
    - ``static_ladder``: amount x the user's per-stage probabilities (when `ladder` is given).

    Each method's revenue distribution is the exact distribution of its independent per-deal
    outcomes, so all are scored the same way: error, bias, P10-P90 coverage, pinball loss, and for
    deals Brier score, log loss and a calibration table.

    `grid_days` is the time-bounded recursion's grid, as in :func:`smartfunnel.forecast`.

    Dates are independent: with ``threads > 1`` they run in parallel (the compiled fits and
    forecasts release the GIL), with identical results. `progress` is called with the fraction of
    dates done; returning False cancels (raises CancelledError).
    """
    fit_options = fit or FitOptions()
    funnel = log.funnel
    stages = list(funnel.stages)
    if ladder is not None:
        missing = [s for s in stages if s not in ladder]
        if missing:
            raise ValueError(f"ladder has no probability for stage(s) {missing}")

    def one_date(when: Any) -> tuple[list[dict[str, Any]], list[pd.DataFrame]]:
        t = _convert.timestamp_seconds(when, "as_of")
        stamp = _convert.to_timestamp(t)
        model = _fit_as_of(log, fit_options, stamp)
        start_day = stamp.tz_convert(tz).normalize()
        end_day = start_day + pd.Timedelta(days=horizon_days - 1)
        t0, t1 = _day_bounds(start_day, end_day, tz)
        raw = _core.forecast(
            model.core,
            log.core,
            t0,
            t1,
            as_of=t,
            stale_after_days=stale_after_days,
            scenarios=0,
            include_arrivals=include_arrivals,
            parameter_draws=parameter_draws if parameter_uncertainty else 0,
            seed=0,
            grid_days=grid_days,
        )
        # What was won in the period, from the whole log: the "realised" wins as of its end.
        actual_raw = _core.forecast(
            model.core,
            log.core,
            t0,
            t1,
            as_of=max(t, t1 - 1),
            exact=False,
            scenarios=0,
            include_arrivals=False,
        )
        actual = float(actual_raw["realised"])
        won_ids = set(np.asarray(actual_raw["realised_opportunity"]).tolist())
        opp = np.asarray(raw["opportunity"], dtype=np.int64)
        outcome = np.array([o in won_ids for o in opp.tolist()], dtype=float)
        return _date_rows(
            stamp,
            model,
            ladder,
            np.asarray(raw["amount"]),
            np.asarray(raw["stage"], dtype=np.int64),
            np.asarray(raw["p_win_period"]),
            _Distribution(raw["exact"]),
            outcome,
            float(raw["realised"]),
            actual,
        )

    dates = list(as_of)
    results: list[tuple[list[dict[str, Any]], list[pd.DataFrame]] | None] = [None] * len(dates)
    done = 0

    def finished() -> None:
        nonlocal done
        done += 1
        if progress is not None and not progress(done / max(1, len(dates))):
            raise _core.CancelledError("backtest cancelled")

    if threads > 1 and len(dates) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = {pool.submit(one_date, d): i for i, d in enumerate(dates)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                finished()
    else:
        for i, d in enumerate(dates):
            results[i] = one_date(d)
            finished()
    rows = [r for res in results if res for r in res[0]]
    deal_rows = [r for res in results if res for r in res[1]]
    table = pd.DataFrame(rows)
    deals = (
        pd.concat(deal_rows, ignore_index=True)
        if deal_rows
        else pd.DataFrame(columns=["as_of", "method", "p", "won"])
    )
    return Backtest(table, deals, calibration_bins, horizon_days)


def _fit_as_of(log: EventLog, options: FitOptions, stamp: pd.Timestamp) -> FunnelModel:
    return fit(log, dataclasses.replace(options, as_of=stamp))


class Backtest:
    """Forecasts replayed at past dates against what was actually won.

    Attributes
    ----------
    table : DataFrame
        One row per (as_of, method): expected, P10, P50, P90, actual, error, covered, pinball.
    deals : DataFrame
        One row per (as_of, method, open deal): its predicted probability ``p`` of being won in
        the horizon and whether it was (``won``).
    horizon_days : int
        Length of each replayed forecast period.
    """

    def __init__(self, table: pd.DataFrame, deals: pd.DataFrame, bins: int, horizon_days: int):
        self.table = table
        self.deals = deals
        self.horizon_days = horizon_days
        self._bins = bins

    @property
    def metrics(self) -> pd.DataFrame:
        """Per method, the mean absolute error, mean absolute percentage error, bias, P10-P90
        coverage, mean pinball loss, Brier score and log loss of the deal-level probabilities."""
        t = self.table
        d = self.deals
        out = []
        for method, g in t.groupby("method", sort=False):
            dd = d[d["method"] == method]
            p = np.clip(dd["p"].to_numpy(), 1e-12, 1 - 1e-12)
            y = dd["won"].to_numpy()
            nonzero = g["actual"] != 0
            out.append(
                {
                    "method": method,
                    "mae": g["error"].abs().mean(),
                    "mape": (g["error"].abs()[nonzero] / g["actual"][nonzero]).mean()
                    if nonzero.any()
                    else np.nan,
                    "bias": g["error"].mean(),
                    "coverage_p10_p90": g["covered"].mean(),
                    "pinball": g["pinball"].mean(),
                    "brier": float(np.mean((p - y) ** 2)) if len(y) else np.nan,
                    "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
                    if len(y)
                    else np.nan,
                    "periods": len(g),
                    "deals": len(dd),
                }
            )
        return pd.DataFrame(out).set_index("method")

    @property
    def calibration(self) -> pd.DataFrame:
        """Per method and bin of predicted probability, the mean predicted, the observed win rate
        and the number of deals."""
        d = self.deals.copy()
        edges = np.linspace(0.0, 1.0, self._bins + 1)
        d["bin"] = np.clip(np.digitize(d["p"], edges[1:-1]), 0, self._bins - 1)
        g = d.groupby(["method", "bin"], sort=False)
        out = g.agg(
            predicted=("p", "mean"), observed=("won", "mean"), deals=("p", "size")
        ).reset_index()
        out["low"] = edges[out["bin"]]
        out["high"] = edges[out["bin"] + 1]
        return out[["method", "low", "high", "predicted", "observed", "deals"]]

    def plot_backtest(self, method: str = "smartfunnel", ax: Any = None) -> Any:
        """Plot the replayed periods (see :func:`smartfunnel.plotting.plot_backtest`)."""
        from .plotting import plot_backtest

        return plot_backtest(self, method, ax)

    def __repr__(self) -> str:
        m = self.metrics
        lines = [
            f"Backtest({self.table['as_of'].nunique()} dates, horizon {self.horizon_days} days)"
        ]
        lines.append(
            m[["mae", "bias", "coverage_p10_p90", "pinball", "brier"]].to_string(
                float_format="{:,.3f}".format
            )
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = repr(self).splitlines()[0]
        return _html.box("Backtest", head[len("Backtest") :].strip("()"), _html.frame(self.metrics))
