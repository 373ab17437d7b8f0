"""forecast(model, log, start, end) -> Forecast: the revenue won in a period, with its uncertainty."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import _convert, _core, _html
from .event_log import EventLog
from .model import FunnelModel


def _day_bounds(start: Any, end: Any, tz: str) -> tuple[int, int]:
    """[start day 00:00, (end day + 1) 00:00) in `tz`, as epoch seconds (end day inclusive)."""

    def day(value: Any, what: str) -> pd.Timestamp:
        try:
            ts = None if value is None else pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError) as err:
            raise _core.InvalidOptionsError(
                f"{what} must be a date, got {value!r} ({err})"
            ) from None
        if ts is None or ts is pd.NaT:
            raise _core.InvalidOptionsError(f"{what} must be a date, got {value!r}")
        return (ts.tz_convert(tz) if ts.tzinfo else ts.tz_localize(tz)).normalize()

    s = day(start, "start")
    e = day(end, "end") + pd.Timedelta(days=1)
    if e <= s:
        raise _core.InvalidOptionsError(
            f"the period must end on or after its start ({start} .. {end})"
        )
    return _convert.instant_seconds(s), _convert.instant_seconds(e)


def forecast(
    model: FunnelModel,
    log: EventLog,
    start: Any,
    end: Any,
    as_of: Any = None,
    method: str = "exact",
    scenarios: int = 10_000,
    seed: int = 0,
    include_arrivals: bool = True,
    *,
    tz: str = "UTC",
    stale_after_days: float | None = None,
    use_groups: bool = True,
    arrivals_by: str | None = None,
    arrivals_lookback_days: float = 180.0,
    threads: int = 1,
    lattice_cells: int = 1 << 12,
    progress: Callable[[float], bool] | None = None,
    probabilities: str | Mapping[str, float] = "time_bounded",
    parameter_uncertainty: bool = False,
    parameter_draws: int = 50,
    grid_days: float | None = None,
    calibrate: bool = True,
) -> Forecast:
    """Forecast the revenue won in the period ``[start, end]`` (whole days in `tz`, end inclusive).

    Each open deal's probability of being won inside the period comes from the semi-Markov model
    of the fit (its stage, and how long it has been there), by a deterministic recursion on a
    grid of whole days, whatever the fit's tick (see `grid_days`). Wins already booked between
    `start` and `as_of` count as realised.

    Parameters
    ----------
    model : FunnelModel
    log : EventLog
        The pipeline as of `as_of` (events after it are not seen).
    start, end : date-like
    as_of : time-like, optional
        Default: the model's as_of. Earlier than the model's as_of is an error.
    method : {"exact", "monte_carlo"}
        Which distribution answers quantile / probability_at_least. Both are computed when
        ``scenarios > 0``; the exact one is the lattice convolution of the per-deal outcomes.
    scenarios, seed, threads : int
        Monte Carlo: streams keyed by (seed, scenario, opportunity id), totals in integer cents,
        identical for any thread count.
    include_arrivals : bool
        Add wins from deals not created yet (compound Poisson from the creation rate over the
        last `arrivals_lookback_days`, per `arrivals_by` value when given).
    stale_after_days : float, optional
        A deal still in a stage this long after entering it counts as lost (whole grid steps).
    grid_days : float, optional
        Step of the recursion's grid in days (rounded to whole ticks of the fit, at least one).
        Default: one day, or the fit's tick when it is coarser. Durations, deal ages and the
        period bounds count in whole steps from `as_of`; moves faster than a step count as taking
        none. With a fine tick (seconds), ``grid_days=1/24`` rounds less at (24x the steps)^2
        the work; a week speeds up very long periods. At most 65,536 steps ahead.
    use_groups : bool
        Score each deal with its own group's rows when the model was fitted with groups.
    progress : callable, optional
        Called with the fraction done; return False to cancel (raises CancelledError).
    parameter_uncertainty : bool
        Also draw the model's parameters (every stage row from its Dirichlet posterior, every
        creation rate from its Gamma posterior), `parameter_draws` times: Monte Carlo scenario s
        uses draw s % parameter_draws and the exact distribution is the mixture over the draws.
        Wider, better calibrated intervals over long periods.
    probabilities : {"time_bounded", "weighted_pipeline", "closed_only"} or mapping
        Which per-deal probability drives the distribution: the time-bounded one (default), or a
        baseline by the same API: the stage's win probability ignoring time (weighted pipeline),
        the naive closed-only conversion rates through the chain, or a static ladder given as
        ``{stage: probability}``. Baselines have no arrivals.
    """
    if method not in ("exact", "monte_carlo"):
        raise ValueError(f"method must be 'exact' or 'monte_carlo', got {method!r}")
    if method == "monte_carlo" and scenarios <= 0:
        raise ValueError("method='monte_carlo' needs scenarios > 0")
    limits = _core.FORECAST_LIMITS
    scenarios = _convert.option_int(scenarios, "scenarios", 0, limits["scenarios"])
    seed = _convert.option_int(seed, "seed", 0, 2**64 - 1)
    threads = _convert.option_int(threads, "threads", 1, limits["threads"])
    lattice_cells = _convert.option_int(lattice_cells, "lattice_cells", 16, limits["lattice_cells"])
    parameter_draws = _convert.option_int(
        parameter_draws, "parameter_draws", 0, limits["parameter_draws"]
    )
    if parameter_uncertainty and parameter_draws < 1:
        raise ValueError(f"parameter_uncertainty needs parameter_draws >= 1, got {parameter_draws}")
    arrivals_lookback_days = _convert.option_float(arrivals_lookback_days, "arrivals_lookback_days")
    if stale_after_days is not None:
        stale_after_days = _convert.option_float(stale_after_days, "stale_after_days")
    if grid_days is not None:
        grid_days = _convert.option_float(grid_days, "grid_days")
    t0, t1 = _day_bounds(start, end, tz)
    time_bounded = isinstance(probabilities, str) and probabilities == "time_bounded"
    raw = _core.forecast(
        model.core,
        log.core,
        t0,
        t1,
        as_of=None if as_of is None else _convert.timestamp_seconds(as_of, "as_of"),
        stale_after_days=stale_after_days,
        use_groups=use_groups,
        exact=True,
        lattice_cells=lattice_cells,
        scenarios=scenarios,
        seed=seed,
        threads=threads,
        progress=progress,
        include_arrivals=include_arrivals,
        arrivals_lookback_days=arrivals_lookback_days,
        arrivals_by=arrivals_by or "",
        parameter_draws=parameter_draws if parameter_uncertainty else 0,
        grid_days=grid_days,
        calibrate=bool(calibrate) and time_bounded,
    )
    if not time_bounded:
        raw = _with_baseline(raw, model, probabilities, scenarios, seed, threads, log)
        include_arrivals = False
    return Forecast(raw, model, log, method, include_arrivals, (t0, t1), tz, seed)


def _baseline_per_stage(model: FunnelModel, probabilities: str | Mapping[str, float]) -> np.ndarray:
    """A baseline's win probability per stage code (the `probabilities` of :func:`forecast`)."""
    from .backtesting import _closed_only_win

    stages = list(model.funnel.stages)
    if isinstance(probabilities, str):
        if probabilities == "weighted_pipeline":
            return np.asarray(model.win_probability().to_numpy(), dtype=np.float64)
        if probabilities == "closed_only":
            return np.asarray(_closed_only_win(model), dtype=np.float64)
        raise ValueError(
            "probabilities must be 'time_bounded', 'weighted_pipeline', 'closed_only' or a "
            f"{{stage: probability}} ladder, got {probabilities!r}"
        )
    missing = [s for s in stages if s not in probabilities]
    if missing:
        raise ValueError(f"ladder has no probability for stage(s) {missing}")
    return np.array([float(probabilities[s]) for s in stages])


def _with_baseline(
    raw: dict[str, Any],
    model: FunnelModel,
    probabilities: str | Mapping[str, float],
    scenarios: int,
    seed: int,
    threads: int,
    log: EventLog,
) -> dict[str, Any]:
    """The forecast's deals and realised wins with a baseline's per-deal probabilities."""
    stage = np.asarray(raw["stage"], dtype=np.int64)
    p = np.clip(np.nan_to_num(_baseline_per_stage(model, probabilities)[stage]), 0.0, 1.0)
    amount = np.asarray(raw["amount"])
    out = dict(raw)
    out["p_win_period"] = p
    out["exact"] = _core.exact_distribution(amount, p, float(raw["realised"]))
    out["exact_pipeline"] = out["exact"]
    out["arrivals"] = {k: [] for k in raw["arrivals"]}
    if scenarios > 0:
        opp = np.asarray(raw["opportunity"], dtype=np.int64)
        ids = log.opportunity_ids()[opp].astype(str)
        keys = np.array([_core.opportunity_key(i) for i in ids], dtype=np.uint64)
        cents = np.round(amount * 100).astype(np.int64)
        realised = int(
            np.round(np.asarray(raw["realised_amount"]) * 100).sum()
        )  # as the core: per deal
        out["scenario_cents"] = (
            np.asarray(_core.monte_carlo_cents(cents, p, keys, scenarios, seed, threads)) + realised
        )
    out["calibration"] = {
        "method": "none",
        "reason": "a baseline's probabilities: not calibrated (compare the backtest's baselines)",
    }
    return out


def _group_cents(
    amount: np.ndarray, p: np.ndarray, ids: np.ndarray, scenarios: int, seed: int
) -> np.ndarray:
    """Monte Carlo totals in cents of some deals, on the forecast's streams (keyed by id)."""
    cents = np.round(amount * 100).astype(np.int64)
    keys = np.array([_core.opportunity_key(i) for i in ids], dtype=np.uint64)
    return np.asarray(_core.monte_carlo_cents(cents, np.nan_to_num(p), keys, scenarios, seed))


def _scenario_quantiles(totals: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Quantiles of scenario totals in cents, as Forecast.quantile reads them."""
    s = np.sort(totals)
    return [float(s[min(len(s) - 1, max(0, int(np.ceil(q * len(s))) - 1))] / 100) for q in qs]


def _by_frame(rows: list[list[Any]], column: str, qs: Sequence[float]) -> pd.DataFrame:
    cols = [column, "deals", "expected", *[f"P{round(q * 100)}" for q in qs]]
    return pd.DataFrame(rows, columns=cols).set_index(column)


class _Distribution:
    """A lattice distribution from the core (origin, step, pmf)."""

    def __init__(self, d: dict[str, Any]):
        self.origin = float(d["origin"])
        self.step = float(d["step"])
        self.pmf = np.asarray(d["pmf"])
        self.mean = float(d["mean"])
        self.variance = float(d["variance"])
        self.truncated_mass = float(d["truncated_mass"])
        self.w1_bound = float(d["w1_bound"])
        self.cdf = np.cumsum(self.pmf)

    def values(self) -> np.ndarray:
        return self.origin + self.step * np.arange(len(self.pmf))

    def __repr__(self) -> str:
        return (
            f"distribution(mean {self.mean:,.0f}, sd {np.sqrt(self.variance):,.0f}, "
            f"P10 {self.quantile(0.1):,.0f}, P50 {self.quantile(0.5):,.0f}, "
            f"P90 {self.quantile(0.9):,.0f}; {len(self.pmf):,} lattice points of {self.step:,.2f})"
        )

    def _repr_html_(self) -> str:
        return _html.box(
            "distribution",
            "",
            _html.fields(
                [
                    ("mean", self.mean),
                    ("sd", float(np.sqrt(self.variance))),
                    *((f"P{round(q * 100)}", self.quantile(q)) for q in (0.1, 0.5, 0.9)),
                    ("lattice step", self.step),
                    ("truncated mass", self.truncated_mass),
                ]
            ),
        )

    def quantile(self, q: float) -> float:
        total = self.cdf[-1]
        i = int(np.searchsorted(self.cdf, q * total - 1e-15, side="left"))
        return float(self.origin + self.step * min(i, len(self.pmf) - 1))

    def probability_at_least(self, x: float) -> float:
        i = int(np.ceil((x - self.origin) / self.step - 1e-9))
        if i <= 0:
            return float(self.cdf[-1])
        if i >= len(self.pmf):
            return 0.0
        return float(self.cdf[-1] - self.cdf[i - 1])


class Forecast:
    """The revenue won in a period: expected value, quantiles, P(revenue >= target), per deal.

    Built by :func:`forecast`. ``method`` chooses which distribution (exact lattice or Monte
    Carlo) answers :meth:`quantile` and :meth:`probability_at_least`; both stay available as
    the ``exact`` and ``scenarios`` attributes.

    Attributes
    ----------
    exact : distribution
        The exact lattice distribution of the period's revenue (pipeline and arrivals), with
        ``pmf``, ``quantile(q)`` and ``probability_at_least(x)``.
    scenarios : ndarray
        The Monte Carlo totals in integer cents (empty with ``scenarios=0``).
    realised : float
        Wins already booked between the period start and as_of.
    start : Timestamp
        The period's first day, in `tz`.
    end : Timestamp
        The period's last day (inclusive), in `tz`.
    as_of : Timestamp
        Analysis time.
    calibration : smartfunnel.Calibration
        How the interval was widened from the log's past forecasts (``method``, ``reason``, the
        factor's ``sigma``, the past ``periods``), or why it was not.
    """

    def __init__(
        self,
        raw: dict[str, Any],
        model: FunnelModel,
        log: EventLog,
        method: str,
        include_arrivals: bool,
        period: tuple[int, int],
        tz: str,
        seed: int = 0,
    ):
        self._raw = raw
        self._model = model
        self._log = log
        self.method = method
        self.include_arrivals = include_arrivals
        self.tz = tz
        self.start = _convert.to_timestamp(period[0]).tz_convert(tz)
        self.end = _convert.to_timestamp(period[1]).tz_convert(tz) - pd.Timedelta(days=1)
        self.as_of = _convert.to_timestamp(raw["as_of"])
        self.exact = _Distribution(raw["exact"])
        self.exact_pipeline = _Distribution(raw["exact_pipeline"])
        self.exact_arrivals = _Distribution(raw["exact_arrivals"]) if include_arrivals else None
        self.scenarios = np.asarray(raw["scenario_cents"], dtype=np.int64)
        self.realised = float(raw["realised"])
        self._seed = seed
        self.calibration = Calibration(raw.get("calibration"))

    @property
    def track_record(self) -> pd.DataFrame:
        """How past forecasts of the same kind did on this log, per method (``smartfunnel``
        calibrated, ``smartfunnel_uncalibrated``, ``weighted_pipeline``, ``closed_only``): the
        number of past periods scored, P10-P90 coverage, bias (mean expected - actual),
        relative bias, mean pinball loss and mean absolute error. Each past period's calibration
        uses only the periods known at its own as_of; no rows when the history is too short to
        judge (see ``calibration.reason``)."""
        return self.calibration.track_record

    # -- the distribution -----------------------------------------------------------------------
    @property
    def expected(self) -> float:
        """Expected revenue won in the period (realised + pipeline + arrivals when included)."""
        if self.method == "monte_carlo":
            return float(self.scenarios.mean() / 100.0)
        return self.exact.mean

    def quantile(self, q: float) -> float:
        """The q-quantile of the revenue won in the period."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q}")
        if self.method == "monte_carlo":
            s = np.sort(self.scenarios)
            i = min(len(s) - 1, max(0, int(np.ceil(q * len(s))) - 1))
            return float(s[i] / 100.0)
        return self.exact.quantile(q)

    def quantiles(self, qs: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.Series:
        """Several quantiles, as a Series indexed by q."""
        return pd.Series(
            [self.quantile(q) for q in qs], index=pd.Index(list(qs), name="q"), name="revenue"
        )

    def probability_at_least(self, target: float) -> float:
        """P(revenue won in the period >= target)."""
        if self.method == "monte_carlo":
            return float(np.mean(self.scenarios >= round(target * 100)))
        return self.exact.probability_at_least(target)

    def distribution(self) -> pd.DataFrame:
        """The exact distribution: revenue value and probability per lattice point."""
        return pd.DataFrame({"revenue": self.exact.values(), "probability": self.exact.pmf})

    @property
    def error_bounds(self) -> dict[str, float]:
        """The lattice error of the exact distribution (truncated mass, Wasserstein-1 bound, step)."""
        return {
            "truncated_mass": self.exact.truncated_mass,
            "w1_bound": self.exact.w1_bound,
            "step": self.exact.step,
        }

    # -- per deal --------------------------------------------------------------------------------
    @property
    def n_open_deals(self) -> int:
        """Number of open deals at as_of."""
        return len(self._raw["opportunity"])

    @property
    def deals(self) -> pd.DataFrame:
        """The open deals at as_of, one row each with opportunity_id, stage, age_days, amount,
        owner, p_win_period, p_win_ever and expected (amount x p_win_period)."""
        r = self._raw
        opp = np.asarray(r["opportunity"], dtype=np.int64)
        ids = self._log.opportunity_ids()[opp] if len(opp) else np.array([], dtype=object)
        names = np.asarray(self._log.funnel.names, dtype=object)
        tick_days = self._model.core.options.tick_seconds / 86400.0
        amount = np.asarray(r["amount"])
        p = np.asarray(r["p_win_period"])
        out = pd.DataFrame(
            {
                "opportunity_id": ids,
                "stage": names[np.asarray(r["stage"], dtype=np.int64)],
                "age_days": np.asarray(r["age_ticks"]) * tick_days,
                "amount": amount,
                "p_win_period": p,
                "p_win_ever": np.asarray(r["p_win_ever"]),
                "expected": amount * p,
            }
        )
        if self._log.core.has_owners:
            codes = np.asarray(self._log.core.owners_at(opp, int(r["as_of"])))
            owners = np.asarray([*self._log.core.owner_names, "(missing)"], dtype=object)
            out.insert(2, "owner", owners[np.where(codes < 0, len(owners) - 1, codes)])
        return out

    def win_date_distribution(self, opportunity_id: Any) -> pd.Series:
        """P(the open deal is won by the end of each day of the period), a cumulative Series
        indexed by date (from as_of's day to the period end), from the same recursion (one entry
        per step of the forecast's grid: per day by default)."""
        r = self._raw
        ids = self._log.opportunity_ids()[np.asarray(r["opportunity"], dtype=np.int64)]
        where = np.flatnonzero(ids.astype(str) == str(opportunity_id))
        if len(where) == 0:
            raise _core.UnknownOpportunityError(
                f"opportunity {opportunity_id!r} is not open at {self.as_of:%Y-%m-%d}"
            )
        i = int(where[0])
        tick = self._model.core.options.tick_seconds
        grid = int(r.get("grid_ticks", self._model.core.grid_ticks))
        end_instant = _convert.instant_seconds(self.end + pd.Timedelta(days=1))
        h_end = (end_instant - 1 - int(r["as_of"])) // (tick * grid)  # whole grid steps
        horizons = np.arange(h_end + 1, dtype=np.float64) * grid  # in ticks
        stage = np.full(len(horizons), int(r["stage"][i]), dtype=np.int32)
        age = np.full(len(horizons), float(r["age_ticks"][i]))
        g = int(r["group"][i])
        p = np.asarray(self._model.core.p_win_within(stage, age, horizons, g, grid))
        dates = (
            (self.as_of + pd.to_timedelta(horizons * tick, unit="s"))
            .tz_convert(self.tz)
            .normalize()
        )
        return pd.Series(p, index=pd.Index(dates, name="date"), name="p_won_by")

    @property
    def realised_deals(self) -> pd.DataFrame:
        """Wins already booked between the period start and as_of."""
        r = self._raw
        opp = np.asarray(r["realised_opportunity"], dtype=np.int64)
        ids = self._log.opportunity_ids()[opp] if len(opp) else np.array([], dtype=object)
        return pd.DataFrame(
            {
                "opportunity_id": ids,
                "amount": np.asarray(r["realised_amount"]),
                "won_at": pd.to_datetime(np.asarray(r["realised_time"]), unit="s", utc=True),
            }
        )

    @property
    def arrivals(self) -> pd.DataFrame:
        """The wins from deals not created yet, per arrivals group, with the creation rate, expected
        wins and revenue (empty without arrivals). ``rate_source`` says whether the rate is the
        level at as_of of the creation times' log-linear trend ("trend", with its
        ``rate_growth_per_day``) or the flat count over the lookback ("flat"). ``mean_amount`` is what a new deal brings when
        it wins: the mean of the amounts at the win of the group's deals won in the lookback
        (``amount_source`` "won"), or, with fewer than ``arrivals_min_wins`` of them, of the amounts
        at entry of the deals created in it ("created"); ``amount_count`` amounts were used."""
        a = self._raw["arrivals"]
        return pd.DataFrame(
            {
                "created": np.asarray(a["created"]),
                "rate_per_day": np.asarray(a["rate_per_day"]),
                "expected_wins": np.asarray(a["expected_wins"]),
                "mean_amount": np.asarray(a["mean_amount"]),
                "expected": np.asarray(a["expected"]),
                "rate_source": np.asarray(a.get("rate_source", []), dtype=object),
                "rate_growth_per_day": np.asarray(a.get("rate_growth_per_day", [])),
                "amount_source": np.asarray(a.get("amount_source", []), dtype=object),
                "amount_count": np.asarray(a.get("amount_count", [])),
            },
            index=pd.Index(list(a["group"]), name="group"),
        )

    def by(self, column: str, qs: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
        """Expected revenue and quantiles of the open pipeline per owner or attribute value
        (each group's own exact distribution, or its Monte Carlo totals with the same streams)."""
        keys, amount, p, ids = self._group_deals(column)
        rows = []
        for key in sorted(set(keys)):
            sel = keys == key
            if self.method == "monte_carlo":
                totals = _group_cents(
                    amount[sel], p[sel], ids[sel], len(self.scenarios), self._seed
                )
                qv, expected = _scenario_quantiles(totals, qs), float(totals.mean() / 100)
            else:
                d = _Distribution(_core.exact_distribution(amount[sel], np.nan_to_num(p[sel])))
                qv = [d.quantile(q) for q in qs]
                expected = d.mean
            rows.append([key, int(sel.sum()), expected, *qv])
        return _by_frame(rows, column, qs)

    def _group_deals(self, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The open deals' group under `column` (owner or an attribute; "(missing)" when none),
        amount, probability and id (as text, the Monte Carlo streams' key)."""
        deals = self.deals
        if column == "owner" and "owner" in deals:
            keys = deals["owner"].to_numpy()
        else:
            found = [a for a in self._log.core.attributes if a[0] == column]
            if not found:
                raise KeyError(f"{column!r} is neither 'owner' nor an attribute of the log")
            _, values, codes = found[0]
            opp = np.asarray(self._raw["opportunity"], dtype=np.int64)
            c = np.asarray(codes)[opp]
            keys = np.where(c < 0, "(missing)", np.asarray([*values, "(missing)"], dtype=object)[c])
        return (
            np.asarray(keys, dtype=object),
            deals["amount"].to_numpy(),
            deals["p_win_period"].to_numpy(),
            deals["opportunity_id"].astype(str).to_numpy(),
        )

    def plot_forecast(self, target: float | None = None, ax: Any = None) -> Any:
        """P(revenue >= x) with P10 / P50 / P90 and an optional target; returns the axes."""
        from .plotting import plot_forecast

        return plot_forecast(self, target, ax)

    def to_frame(self) -> pd.DataFrame:
        """One row: expected, P10, P50, P90, realised, arrivals and the lattice error bounds."""
        q = self.quantiles()
        return pd.DataFrame(
            {
                "expected": [self.expected],
                "P10": [q[0.1]],
                "P50": [q[0.5]],
                "P90": [q[0.9]],
                "realised": [self.realised],
                "pipeline_expected": [self.exact_pipeline.mean - self.realised],
                "arrivals_expected": [self.exact_arrivals.mean if self.exact_arrivals else 0.0],
                "open_deals": [self.n_open_deals],
                "truncated_mass": [self.exact.truncated_mass],
                "w1_bound": [self.exact.w1_bound],
            },
            index=pd.Index([f"{self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"], name="period"),
        )

    def __repr__(self) -> str:
        q = self.quantiles()
        return (
            f"Forecast({self.start:%Y-%m-%d}..{self.end:%Y-%m-%d} as of {self.as_of:%Y-%m-%d}, {self.method}: "
            f"expected {self.expected:,.0f}, P10 {q[0.1]:,.0f}, P50 {q[0.5]:,.0f}, P90 {q[0.9]:,.0f}; "
            f"realised {self.realised:,.0f}, {self.n_open_deals:,} open deals"
            f"{', arrivals included' if self.include_arrivals else ''}; "
            f"{'range calibrated' if self.calibration.calibrated else 'range not calibrated'})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("period", f"{self.start:%Y-%m-%d} .. {self.end:%Y-%m-%d}"),
            ("as of", f"{self.as_of:%Y-%m-%d}"),
            ("method", self.method),
            ("expected", f"{self.expected:,.0f}"),
            *((f"P{round(k * 100)}", f"{self.quantile(k):,.0f}") for k in (0.1, 0.5, 0.9)),
            ("realised", f"{self.realised:,.0f}"),
            ("open deals", f"{len(self._raw['opportunity']):,}"),
            ("arrivals included", self.include_arrivals),
            ("range", self.calibration.reason),
        ]
        return _html.box("Forecast", "", _html.fields(rows))


class Calibration:
    """How a forecast's distribution was calibrated from the log's own past forecasts.

    Forecasts of the same length are replayed as of earlier dates (a quarter of the period's
    length apart in whole weeks, from a period's length after the log's first close, only outcomes
    known at as_of); the spread of what was won around
    what was expected, beyond the model's own, is a common factor S on the uncertain part:
    ``total = realised + S * (open deals + new deals)``, ``log S ~ N(log level - sigma^2 / 2,
    sigma^2)``. The distribution (and each Monte Carlo scenario) is the mixture over S.

    Attributes
    ----------
    method : str
        ``"common_factor"`` or ``"none"`` (not calibrated: see `reason`).
    reason : str
        The estimate in words, or why there is none (too short a history, calibration off).
    level : float
        Mean of S applied (1 unless the level is corrected).
    observed_level : float
        Won / expected over the past periods.
    tau : float
        The common factor's relative sd beyond the model's own.
    sigma : float
        The sd of log S.
    model_cv : float
        The model's own relative sd of the past periods.
    independent_periods : float
        How many period lengths the past dates span.
    degrees_of_freedom : float
        A spread learned from few independent periods is itself uncertain: the Student t
        prediction interval behind `sigma` has this many degrees of freedom.
    small_sample_factor : float
        The factor t(0.9) / z(0.9) of that interval, included in `sigma`.
    periods : DataFrame
        The past periods (most recent first): as_of, start, end, expected and sd of the uncertain
        part, P10/P50/P90 of the uncalibrated forecast and what was won.
    track_record : DataFrame
        The past periods' scores per method (see :attr:`Forecast.track_record`).
    """

    def __init__(self, raw: dict[str, Any] | None):
        raw = raw or {"method": "none", "reason": "not calibrated"}
        self.method: str = raw["method"]
        self.reason: str = raw["reason"]
        self.level = float(raw.get("level", 1.0))
        self.observed_level = float(raw.get("observed_level", 1.0))
        self.tau = float(raw.get("tau", 0.0))
        self.sigma = float(raw.get("sigma", 0.0))
        self.model_cv = float(raw.get("model_cv", 0.0))
        self.independent_periods = float(raw.get("independent_periods", 0.0))
        self.degrees_of_freedom = float(raw.get("degrees_of_freedom", 0.0))
        self.small_sample_factor = float(raw.get("small_sample_factor", 1.0))
        periods = raw.get("periods") or {}
        frame = pd.DataFrame({k: np.asarray(v) for k, v in periods.items()})
        for col in ("as_of", "start", "end"):
            if col in frame:
                frame[col] = pd.to_datetime(frame[col].astype(np.int64), unit="s", utc=True)
        self.periods = frame
        record = raw.get("track_record") or {}
        table = pd.DataFrame({k: np.asarray(v) for k, v in record.items() if k != "method"})
        if "method" in record:
            table.index = pd.Index(list(record["method"]), name="method")
            table = table[table["periods"] > 0]
            table["periods"] = table["periods"].astype(np.int64)
        self.track_record = table

    @property
    def calibrated(self) -> bool:
        """True when the distribution was widened (method ``common_factor``)."""
        return self.method != "none"

    def __repr__(self) -> str:
        return f"Calibration({self.method}: {self.reason})"
