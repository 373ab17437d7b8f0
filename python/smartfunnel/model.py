"""fit(log, ...) -> FunnelModel: conversion probabilities, win probabilities, time in stage."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import pandas as pd

from . import _convert, _core, _html
from .event_log import EventLog

GroupKey = Union[None, str, Sequence[str]]


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Every setting of a fit, in one value that every function taking a fit accepts.

    Parameters
    ----------
    as_of : time-like, optional
        Analysis time; only events at or before it are visible. Default: the log's last event.
    tick : duration-like, default "1D"
        Length of one duration tick ("1D": days; "1s": the input's resolution). Numbers are seconds.
    prior : float, default 1.0
        Total concentration of the Dirichlet prior on each stage's destinations (0: unsmoothed,
        with Wilson intervals on the effective number of exits).
    half_life : duration-like or "auto", optional
        Exponential decay of each stay's weight by the age of its exit. Numbers are days.
        ``"auto"`` (in :func:`fit`): chosen among no decay and 30, 60, 90, 180, 365 days by the
        log's own walk-forward score: each candidate is fitted as of past dates (only what was
        known then) and its forecast of the next ``recency_horizon_days`` (default 90) scored by
        pinball loss against what was won; the fitted model's options hold the chosen value and
        ``model.recency`` the table behind it. Too short a history keeps no decay, and says so.
    groups : sequence of str
        Grouping columns, outermost first: "owner" (the owner when the stay ended) or attribute
        names. Each group's rows are shrunk toward the level above by empirical Bayes.
    min_exits : int, default 20
        Rows with fewer exits are flagged ``insufficient_history``.
    unresolved_threshold : float, default 0.2
        Rows whose unresolved mass exceeds it are flagged ``unresolved_high``.
    level : float, default 0.9
        Level of every interval.
    seed, draws : int
        Posterior draws behind the win-probability intervals (the point values are exact).
    """

    as_of: Any = None
    tick: Any = "1D"
    prior: float = 1.0
    half_life: Any = None
    groups: Sequence[str] = ()
    min_exits: int = 20
    unresolved_threshold: float = 0.2
    level: float = 0.9
    seed: int = 0
    draws: int = 2000
    min_at_risk: int = 10
    min_concentration: float = 0.5
    max_concentration: float = 1e4
    min_groups_for_eb: int = 5
    fallback_concentration: float = 10.0

    def to_core(self) -> _core.FitOptions:
        """The compiled options (times in epoch seconds, durations in seconds)."""
        o = _core.FitOptions()
        o.as_of = None if self.as_of is None else _convert.timestamp_seconds(self.as_of, "as_of")
        tick = _convert.duration_seconds(self.tick, "tick")
        if tick < 1 or tick != int(tick):
            raise _core.InvalidOptionsError(
                f"tick must be a whole number of seconds >= 1, got {tick} s"
            )
        o.tick_seconds = int(tick)
        o.prior = _convert.option_float(self.prior, "prior")
        if isinstance(self.half_life, str) and self.half_life == "auto":
            raise _core.InvalidOptionsError(
                "half_life='auto' is chosen by smartfunnel.fit (fit the model, then pass "
                "model.options, which holds the chosen value)"
            )
        o.half_life_seconds = (
            None
            if self.half_life is None
            else _convert.duration_seconds(self.half_life, "half_life", "days")
        )
        groups = [self.groups] if isinstance(self.groups, str) else list(self.groups)
        o.groups = groups
        o.min_exits = _convert.option_int(self.min_exits, "min_exits", 0, 2**63 - 1)
        o.unresolved_threshold = _convert.option_float(
            self.unresolved_threshold, "unresolved_threshold"
        )
        o.level = _convert.option_float(self.level, "level")
        o.seed = _convert.option_int(self.seed, "seed", 0, 2**64 - 1)
        o.draws = _convert.option_int(self.draws, "draws", 0, _core.FIT_MAX_DRAWS)
        o.min_at_risk = _convert.option_int(self.min_at_risk, "min_at_risk", 0, 2**63 - 1)
        o.min_concentration = _convert.option_float(self.min_concentration, "min_concentration")
        o.max_concentration = _convert.option_float(self.max_concentration, "max_concentration")
        o.min_groups_for_eb = _convert.option_int(
            self.min_groups_for_eb, "min_groups_for_eb", 0, 2**63 - 1
        )
        o.fallback_concentration = _convert.option_float(
            self.fallback_concentration, "fallback_concentration"
        )
        o.validate()
        return o

    def _repr_html_(self) -> str:
        return _html.box(
            "FitOptions",
            "",
            _html.fields((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)),
        )

    def save(self, path: str | os.PathLike[str], format: str = "binary") -> None:
        """Save the options to a file, atomically; :func:`smartfunnel.load` reads them back.

        The file holds the compiled options (what C++ reads) and these values as given.
        """
        self.to_core().save(path, format, json.dumps(_options_metadata("FitOptions", self)))


def _to_json(value: Any) -> Any:
    """A FitOptions value as JSON: times and durations tagged, tuples kept apart from lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (pd.Timestamp, datetime.datetime, datetime.date, np.datetime64)):
        return {"timestamp": pd.Timestamp(value).isoformat()}
    if isinstance(value, (pd.Timedelta, datetime.timedelta, np.timedelta64)):
        return {"timedelta_ns": int(pd.Timedelta(value).value)}
    if isinstance(value, tuple):
        return {"tuple": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    raise TypeError(f"cannot keep a {type(value).__name__} in an archive's metadata")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "timestamp" in value:
            return pd.Timestamp(value["timestamp"])
        if "timedelta_ns" in value:
            return pd.Timedelta(int(value["timedelta_ns"]), unit="ns")
        if "tuple" in value:
            return tuple(_from_json(v) for v in value["tuple"])
        raise ValueError(f"unknown value in metadata: {value!r}")
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _options_metadata(cls: str, options: FitOptions) -> dict[str, Any]:
    """Metadata of a saved FitOptions or FunnelModel: the options as given, when JSON can hold them."""
    meta: dict[str, Any] = {"class": cls}
    try:
        meta["options"] = {
            f.name: _to_json(getattr(options, f.name)) for f in dataclasses.fields(options)
        }
    except TypeError:
        pass  # loading rebuilds them from the compiled options
    return meta


def _options_from_archive(core: _core.FitOptions, meta: dict[str, Any]) -> FitOptions:
    """The FitOptions of a loaded archive: as given when saved from Python, else rebuilt from the
    compiled options (times as UTC timestamps, durations as timedeltas)."""
    try:
        return FitOptions(**{k: _from_json(v) for k, v in meta["options"].items()})
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return FitOptions(
        as_of=None if core.as_of is None else _convert.to_timestamp(core.as_of),
        tick=pd.Timedelta(seconds=core.tick_seconds),
        prior=core.prior,
        half_life=None
        if core.half_life_seconds is None
        else pd.Timedelta(seconds=core.half_life_seconds),
        groups=tuple(core.groups),
        min_exits=core.min_exits,
        unresolved_threshold=core.unresolved_threshold,
        level=core.level,
        seed=core.seed,
        draws=core.draws,
        min_at_risk=core.min_at_risk,
        min_concentration=core.min_concentration,
        max_concentration=core.max_concentration,
        min_groups_for_eb=core.min_groups_for_eb,
        fallback_concentration=core.fallback_concentration,
    )


def fit(log: EventLog, options: FitOptions | None = None, **kwargs: Any) -> FunnelModel:
    """Fit the funnel model of a log.

    Parameters
    ----------
    log : EventLog
    options : FitOptions, optional
        Base options; keyword arguments (``as_of=``, ``prior=``, ``groups=``...) override them.

    Returns
    -------
    FunnelModel
    """
    if not isinstance(log, EventLog):
        raise TypeError(f"fit expects an EventLog, got {type(log).__name__}")
    horizon = kwargs.pop("recency_horizon_days", 90)
    opts = dataclasses.replace(options or FitOptions(), **kwargs)
    if not (isinstance(opts.half_life, str) and opts.half_life == "auto"):
        return FunnelModel(_core.fit(log.core, opts.to_core()), opts)
    # half_life="auto": every candidate fitted and forecast as of past dates, scored on what was
    # won; the lowest mean pinball loss is the fit's half-life (the choice and its table kept).
    base = dataclasses.replace(opts, half_life=None)
    horizon = _convert.option_int(horizon, "recency_horizon_days", 1, 3660)
    raw = _core.choose_half_life(log.core, base.to_core(), horizon_days=horizon)
    days = float(raw["half_life_days"][int(raw["chosen"])])
    chosen = dataclasses.replace(opts, half_life=None if days == 0 else days)
    model = FunnelModel(_core.fit(log.core, chosen.to_core()), chosen)
    table = pd.DataFrame(
        {
            "half_life_days": np.asarray(raw["half_life_days"]),
            "pinball": np.asarray(raw["pinball"]),
            "relative_pinball": np.asarray(raw["relative_pinball"]),
            "coverage_p10_p90": np.asarray(raw["coverage_p10_p90"]),
            "bias": np.asarray(raw["bias"]),
            "periods": np.asarray(raw["periods"]).astype(np.int64),
        }
    )
    table["chosen"] = np.arange(len(table)) == int(raw["chosen"])
    table.attrs["reason"] = str(raw["reason"])
    model._recency = table
    return model


def merge(a: FunnelModel, b: FunnelModel) -> FunnelModel:
    """Merge models fitted on disjoint sets of opportunities into the model of their union."""
    return FunnelModel(_core.merge(a.core, b.core), a.options)


class FunnelModel:
    """A fitted funnel model: immutable, shareable between threads, mergeable.

    Per open stage (and per group when fitted with ``groups``): censoring-aware transition
    probabilities with intervals, the unresolved mass, the naive closed-only estimate beside them,
    win probabilities from the absorbing chain, expected visits and days to close, time in stage.
    """

    def __init__(self, core: _core.FunnelModel, options: FitOptions):
        self._m = core
        self._options = options
        self._keys = [tuple(k) for k in core.group_keys]
        self._recency: pd.DataFrame | None = None

    @property
    def recency(self) -> pd.DataFrame | None:
        """With ``half_life="auto"``: the candidate half-lives (0: no decay) with the mean pinball
        loss, relative pinball, P10-P90 coverage and bias of their past forecasts, the ``chosen``
        one, and ``attrs["reason"]`` in words; None otherwise (and after a load)."""
        return self._recency

    # -- identity -----------------------------------------------------------------------------
    @property
    def core(self) -> _core.FunnelModel:
        return self._m

    @property
    def options(self) -> FitOptions:
        return self._options

    def save(self, path: str | os.PathLike[str], format: str = "binary") -> None:
        """Save the model to a file, atomically; :func:`smartfunnel.load` reads it back.

        Parameters
        ----------
        path : str or path-like
        format : {"binary", "text", "xml"}
            binary is fastest but stays on one platform; text and xml move between machines.

        Notes
        -----
        The file holds the model's sufficient statistics; loading derives every estimate from
        them again (exactly the same values). Pickling uses the same archive, so models travel to
        worker processes.
        """
        meta = _options_metadata("FunnelModel", self._options)
        self._m.save(path, format, json.dumps(meta))

    @property
    def funnel(self) -> _core.Funnel:
        return self._m.funnel

    @property
    def as_of(self) -> pd.Timestamp:
        return _convert.to_timestamp(self._m.as_of)

    @property
    def groups(self) -> list[tuple[str, ...]]:
        """Keys of the fitted groups; ``()`` is the whole funnel."""
        return list(self._keys)

    @property
    def _tick_days(self) -> float:
        return float(self._m.options.tick_seconds) / 86400.0

    def _group(self, group: GroupKey) -> int:
        if group is None:
            return 0
        key = (group,) if isinstance(group, str) else tuple(group)
        try:
            return self._keys.index(key)
        except ValueError:
            raise KeyError(
                f"group {key!r} is not in the model (groups: {self._keys[1:8]}...)"
            ) from None

    def _stage_index(self) -> pd.Index:
        return pd.Index(self.funnel.stages, name="stage")

    # -- results ------------------------------------------------------------------------------
    def win_probability(self, group: GroupKey = None) -> pd.Series:
        """P(eventually won) from each open stage: B = (I - Q)^-1 R, exact."""
        sc = self._m.stage_scalars(self._group(group))
        return pd.Series(np.asarray(sc["win"]), index=self._stage_index(), name="p_win")

    def transition_matrix(self, group: GroupKey = None) -> pd.DataFrame:
        """Rows: open stages; columns: every open stage, Won, Lost. Rows sum to 1."""
        m = np.asarray(self._m.transition_matrix(self._group(group)))
        cols = [*self.funnel.stages, "Won", "Lost"]
        return pd.DataFrame(m, index=self._stage_index(), columns=pd.Index(cols, name="to"))

    def time_in_stage(self, group: GroupKey = None, by: str = "stage") -> pd.DataFrame:
        """Time in stage in days.

        ``by="stage"`` (default): all-cause time from the Kaplan-Meier curve, indexed by stage,
        with median_days, p25, p75, p90, n (stays) and censored. A quantile is NaN when the curve
        never gets there (too much censoring).

        ``by="destination"``: the sojourn given each destination, F_k(t)/F_k(tau), indexed by
        (stage, destination), with median_days, p25, p75, p90, mean_days and exits.
        """
        gi = self._group(group)
        d = self._tick_days
        if by == "destination":
            names = list(self.funnel.names)
            t = self._m.stage_tables(gi)
            exits = np.asarray(t["exits"])
            qs = {
                q: np.asarray(self._m.destination_quantiles(gi, q)) * d
                for q in (0.25, 0.5, 0.75, 0.9)
            }
            rows = [
                (stage, names[k], s, k)
                for s, stage in enumerate(self.funnel.stages)
                for k in range(len(names))
                if exits[s, k] > 0
            ]
            idx = pd.MultiIndex.from_tuples(
                [(a, b) for a, b, _, _ in rows], names=["stage", "destination"]
            )
            take = lambda m: [m[s, k] for _, _, s, k in rows]  # noqa: E731
            return pd.DataFrame(
                {
                    "median_days": take(qs[0.5]),
                    "p25": take(qs[0.25]),
                    "p75": take(qs[0.75]),
                    "p90": take(qs[0.9]),
                    "mean_days": take(np.asarray(t["mean_sojourn"]) * d),
                    "exits": take(exits),
                },
                index=idx,
            )
        if by != "stage":
            raise ValueError(f"by must be 'stage' or 'destination', got {by!r}")
        sc = self._m.stage_scalars(gi)
        return pd.DataFrame(
            {
                "median_days": np.asarray(sc["q50"]) * d,
                "p25": np.asarray(sc["q25"]) * d,
                "p75": np.asarray(sc["q75"]) * d,
                "p90": np.asarray(sc["q90"]) * d,
                "n": np.asarray(sc["n_stays"]),
                "censored": np.asarray(sc["n_censored"]),
            },
            index=self._stage_index(),
        )

    def stage_summary(self, group: GroupKey = None) -> pd.DataFrame:
        """Per open stage: counts, unresolved mass, win probability with interval, visits, days."""
        sc = self._m.stage_scalars(self._group(group))
        d = self._tick_days
        return pd.DataFrame(
            {
                "n": np.asarray(sc["n_stays"]),
                "exits": np.asarray(sc["n_exits"]),
                "censored": np.asarray(sc["n_censored"]),
                "unresolved": np.asarray(sc["unresolved"]),
                "effective_n": np.asarray(sc["effective_n"]),
                "p_win": np.asarray(sc["win"]),
                "p_win_low": np.asarray(sc["win_low"]),
                "p_win_high": np.asarray(sc["win_high"]),
                "expected_visits": np.asarray(sc["visits"]),
                "days_to_close": np.asarray(sc["ticks_to_close"]) * d,
                "days_to_win": np.asarray(sc["ticks_to_win"]) * d,
                "insufficient_history": np.asarray(sc["insufficient_history"], dtype=bool),
                "unresolved_high": np.asarray(sc["unresolved_high"], dtype=bool),
            },
            index=self._stage_index(),
        )

    @property
    def summary(self) -> pd.DataFrame:
        """One row per (group, stage, destination) with counts, rates, intervals and flags.

        Columns: ``exits`` (raw), ``p`` (censoring-aware F_k(tau)/(1-S(tau))), ``naive``
        (closed-only), ``probability`` (smoothed, what the chain uses), ``low``/``high`` (interval
        at ``level``), ``unresolved`` (S(tau) of the stage), ``effective_n``, ``concentration``
        and the flags. Several terminal names are broken out here (Won/Lost columns of
        :meth:`transition_matrix` aggregate them).
        """
        names = list(self.funnel.names)
        n_open = len(self.funnel.stages)
        n_won = len(self.funnel.won)
        frames = []
        for gi, key in enumerate(self._keys):
            t = self._m.stage_tables(gi)
            sc = self._m.stage_scalars(gi)
            for s, stage in enumerate(self.funnel.stages):
                dests = [k for k in range(len(names)) if k != s]
                frames.append(
                    pd.DataFrame(
                        {
                            "group": "/".join(key) if key else "(all)",
                            "stage": stage,
                            "destination": [names[k] for k in dests],
                            "outcome": [
                                "open" if k < n_open else ("won" if k < n_open + n_won else "lost")
                                for k in dests
                            ],
                            "exits": np.asarray(t["exits"])[s, dests],
                            "p": np.asarray(t["p"])[s, dests],
                            "naive": np.asarray(t["naive"])[s, dests],
                            "probability": np.asarray(t["probability"])[s, dests],
                            "low": np.asarray(t["low"])[s, dests],
                            "high": np.asarray(t["high"])[s, dests],
                            "mean_days": np.asarray(t["mean_sojourn"])[s, dests] * self._tick_days,
                            "unresolved": float(np.asarray(sc["unresolved"])[s]),
                            "effective_n": float(np.asarray(sc["effective_n"])[s]),
                            "concentration": float(np.asarray(sc["concentration"])[s]),
                            "insufficient_history": bool(sc["insufficient_history"][s]),
                            "unresolved_high": bool(sc["unresolved_high"][s]),
                        }
                    )
                )
        out = pd.concat(frames, ignore_index=True)
        index = (
            ["group", "stage", "destination"] if len(self._keys) > 1 else ["stage", "destination"]
        )
        if len(self._keys) == 1:
            out = out.drop(columns="group")
        return out.set_index(index)

    def p_win(
        self, stage: Any, age_days: Any = 0.0, horizon_days: Any = None, group: GroupKey = None
    ) -> np.ndarray:
        """Vectorised scoring: P(a deal in `stage`, `age_days` in it, is won [within horizon_days]).

        Stages may be names or codes; Won gives 1, Lost 0. Without a horizon the probability is
        P(eventually won) given the age (the destination mix of the semi-Markov kernel conditioned
        on the age, through the chain); with `horizon_days` (scalar or array, NaN for none) it is
        the time-bounded probability from the same kernel by the day-grid recursion. Whatever
        the fit's tick, ages and horizons count in whole days (floored; in whole ticks when the
        tick is coarser than a day), up to 65,536 days ahead.
        """
        st = np.atleast_1d(np.asarray(stage))
        if st.dtype.kind in "OUS":
            f = self.funnel
            st = np.array([f.code_of(str(x)) for x in st], dtype=np.int32)
        st = st.astype(np.int32)
        # Days to ticks as days * 86400 / tick: whole days stay whole numbers of ticks (dividing by
        # the tick in days, 1/86400 for seconds, could land an ulp below and floor a day short).
        tick = float(self._m.options.tick_seconds)
        age = np.ascontiguousarray(
            np.broadcast_to(np.asarray(age_days, dtype=np.float64), st.shape) * 86400.0 / tick
        )
        g = self._group(group)
        if horizon_days is None:
            return np.asarray(self._m.p_win(st, age, g))
        horizon = np.ascontiguousarray(
            np.broadcast_to(np.asarray(horizon_days, dtype=np.float64), st.shape) * 86400.0 / tick
        )
        return np.asarray(self._m.p_win_within(st, age, horizon, g))

    def plot_funnel(self, ax: Any = None) -> Any:
        """Bar chart of P(win) from each stage with its interval; returns the axes."""
        from .plotting import plot_funnel

        return plot_funnel(self, ax)

    def plot_time_in_stage(self, ax: Any = None) -> Any:
        """Kaplan-Meier curves of the time in each stage; returns the axes."""
        from .plotting import plot_time_in_stage

        return plot_time_in_stage(self, ax)

    def merge(self, other: FunnelModel) -> FunnelModel:
        """The model of the union of two disjoint sets of opportunities."""
        return merge(self, other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunnelModel) and self._m.statistics_equal(other._m)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        win = self.win_probability()
        stages = ", ".join(f"{s}: {p:.2f}" for s, p in win.items())
        g = f", {len(self._keys) - 1} groups" if len(self._keys) > 1 else ""
        return (
            f"FunnelModel(as of {self.as_of:%Y-%m-%d}, {self._m.n_opportunities:,} opportunities, "
            f"{self._m.n_stays:,} stays{g}; P(win) {stages})"
        )

    def _repr_html_(self) -> str:
        s = self.stage_summary()[
            ["n", "censored", "p_win", "p_win_low", "p_win_high", "days_to_win"]
        ]
        g = f", {len(self._keys) - 1} groups" if len(self._keys) > 1 else ""
        return _html.box(
            "FunnelModel",
            f"as of {self.as_of:%Y-%m-%d}, {self._m.n_opportunities:,} opportunities, "
            f"{self._m.n_stays:,} stays{g}",
            _html.frame(s),
        )
