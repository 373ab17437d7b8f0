"""backtest(log, as_of=[...]) -> Backtest: replay the log, forecast each period, compare with what
was actually won, beside the baselines a CRM would use."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import _convert, _core, _html
from .event_log import EventLog
from .forecasting import _day_bounds
from .model import FitOptions, FunnelModel


def _closed_only_win(model: FunnelModel) -> np.ndarray:
    """P(win) per open stage from the naive closed-only rates d_k / sum d, through the chain."""
    return np.asarray(_core.closed_only_win(model.core), dtype=np.float64)


def _ladder_values(stages: Sequence[str], ladder: Mapping[str, float] | None) -> list[float]:
    """The ladder's probability per open stage, in funnel order (empty without a ladder)."""
    if ladder is None:
        return []
    missing = [s for s in stages if s not in ladder]
    if missing:
        raise ValueError(f"ladder has no probability for stage(s) {missing}")
    return [float(ladder[s]) for s in stages]


def _period_bounds(t: int, horizon_days: int, tz: str) -> tuple[int, int]:
    """[as_of day 00:00, (as_of day + horizon_days) 00:00) in `tz`, as epoch seconds."""
    start_day = _convert.to_timestamp(t).tz_convert(tz).normalize()
    end_day = start_day + pd.Timedelta(days=horizon_days - 1)
    return _day_bounds(start_day, end_day, tz)


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
    calibrate: bool = True,
) -> Backtest:
    """Replay the log as of each date, forecast the following `horizon_days`, compare with actuals.

    For each date the model is fitted with `fit` (its prior, half-life and groups are what is
    tested) as of that date, so nothing after it is seen; the period is ``[as_of day, as_of day +
    horizon_days - 1]``. What was actually won comes from the whole log.

    Methods compared, each giving every open deal a probability of being won in the period:

    - ``smartfunnel``: the time-bounded semi-Markov probabilities (plus arrivals);
    - ``weighted_pipeline``: amount x the stage's censoring-aware win probability, ignoring time;
    - ``closed_only``: the same with the naive closed-only conversion rates;
    - ``static_ladder``: amount x the user's per-stage probabilities (when `ladder` is given);
    - ``smartfunnel_uncalibrated`` (with `calibrate`, the default): the smartfunnel forecast
      before its calibration; ``smartfunnel`` is then calibrated as :func:`smartfunnel.forecast`
      does, each date only from the past periods whose outcome was known at that date.

    Each method's revenue distribution is the exact distribution of its independent per-deal
    outcomes, so all are scored the same way: error, bias, P10-P90 coverage, pinball loss, and for
    deals Brier score, log loss and a calibration table.

    `grid_days` is the time-bounded recursion's grid, as in :func:`smartfunnel.forecast`.

    The replay runs in the compiled core (``backtest.hpp``). Dates are independent: with
    ``threads > 1`` they run in parallel, with identical results. `progress` is called with the
    fraction of dates done; returning False cancels (raises CancelledError).
    """
    limits = _core.FORECAST_LIMITS
    horizon_days = _convert.option_int(horizon_days, "horizon_days", 1, 2**31 - 1)
    calibration_bins = _convert.option_int(calibration_bins, "calibration_bins", 1, 2**31 - 1)
    threads = _convert.option_int(threads, "threads", 1, limits["threads"])
    parameter_draws = _convert.option_int(
        parameter_draws, "parameter_draws", 0, limits["parameter_draws"]
    )
    fit_options = fit or FitOptions()
    ladder_values = _ladder_values(list(log.funnel.stages), ladder)
    times = [_convert.timestamp_seconds(when, "as_of") for when in as_of]
    bounds = [_period_bounds(t, horizon_days, tz) for t in times]
    result = _core.backtest(
        log.core,
        np.asarray(times, dtype=np.int64),
        horizon_days=horizon_days,
        period_start=np.asarray([b[0] for b in bounds], dtype=np.int64),
        period_end=np.asarray([b[1] for b in bounds], dtype=np.int64),
        fit=fit_options.to_core(),
        ladder=ladder_values,
        calibration_bins=calibration_bins,
        threads=threads,
        progress=progress,
        stale_after_days=stale_after_days,
        include_arrivals=include_arrivals,
        parameter_draws=parameter_draws if parameter_uncertainty else 0,
        grid_days=grid_days,
        calibrate=bool(calibrate),
    )
    return Backtest(result, horizon_days)


class Backtest:
    """Forecasts replayed at past dates against what was actually won.

    Built by :func:`backtest` from the compiled core's result (rows and scores computed in C++).

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

    def __init__(self, result: _core.BacktestResult, horizon_days: int):
        self.core = result
        self.horizon_days = horizon_days
        methods = np.asarray(result.methods, dtype=object)
        stamps = pd.DatetimeIndex([_convert.to_timestamp(int(t)) for t in result.as_of])
        p = result.periods
        date = np.asarray(p["date"], dtype=np.intp)
        self.table = pd.DataFrame(
            {
                "as_of": stamps.take(date),
                "method": methods.take(np.asarray(p["method"], dtype=np.intp)),
                "expected": np.array(p["expected"]),
                "P10": np.array(p["P10"]),
                "P50": np.array(p["P50"]),
                "P90": np.array(p["P90"]),
                "actual": np.array(p["actual"]),
                "error": np.array(p["error"]),
                "covered": np.asarray(p["covered"]).astype(bool),
                "pinball": np.array(p["pinball"]),
                "open_deals": np.asarray(p["open_deals"]).astype(np.int64),
            }
        )

    @functools.cached_property
    def deals(self) -> pd.DataFrame:
        """The forecast probability ``p`` and outcome ``won`` of each open deal, one row per
        as_of, method and deal (built on first use)."""
        result = self.core
        stamps = pd.DatetimeIndex([_convert.to_timestamp(int(t)) for t in result.as_of])
        methods = np.asarray(result.methods, dtype=object)
        d = result.deals
        return pd.DataFrame(
            {
                "as_of": stamps.take(np.asarray(d["date"], dtype=np.intp)),
                "method": methods.take(np.asarray(d["method"], dtype=np.intp)),
                "p": np.array(d["p"]),
                "won": np.array(d["won"]),
            }
        )

    @property
    def metrics(self) -> pd.DataFrame:
        """Per method, the mean absolute error, mean absolute percentage error, bias, P10-P90
        coverage, mean pinball loss, Brier score and log loss of the deal-level probabilities."""
        m = {k: np.array(v) for k, v in self.core.metrics.items()}
        out = pd.DataFrame(m, index=pd.Index(list(self.core.methods), name="method"))
        for count in ("periods", "deals"):
            out[count] = out[count].astype(np.int64)
        return out

    @property
    def calibration(self) -> pd.DataFrame:
        """Per method and bin of predicted probability, the mean predicted, the observed win rate
        and the number of deals."""
        c = self.core.calibration
        methods = np.asarray(self.core.methods, dtype=object)
        return pd.DataFrame(
            {
                "method": methods.take(np.asarray(c["method"], dtype=np.intp)),
                "low": np.array(c["low"]),
                "high": np.array(c["high"]),
                "predicted": np.array(c["predicted"]),
                "observed": np.array(c["observed"]),
                "deals": np.asarray(c["deals"]).astype(np.int64),
            }
        )

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
