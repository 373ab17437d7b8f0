"""smartfunnel on Dask: fits, forecasts and scorecards of event logs too large for one machine.

The events live in a Dask DataFrame, one partition per group of whole opportunities (the log is
repartitioned by opportunity id when it is not, with a :class:`PartitioningWarning`). Every
partition becomes a smartfunnel :class:`~smartfunnel.EventLog` on a worker, and every result is
built from per-partition pieces that combine exactly:

* a fit merges the partitions' sufficient statistics (:class:`FitStatistics`, integer counts and
  weights) in a tree reduction into a :class:`~smartfunnel.FunnelModel` equal (``==``) to
  :func:`smartfunnel.fit` of the same data;
* a forecast adds the partitions' Monte Carlo totals scenario by scenario (bit-identical to
  :func:`smartfunnel.forecast`: random streams are keyed by seed, scenario and opportunity, and
  posterior draws by seed, draw, group and stage, never by partition) and convolves their exact
  distributions on the lattice of the whole, fixed by a first pass over the partitions' means and
  variances (the local result on the same lattice, to rounding: ~1e-12); with parameter
  uncertainty, one such convolution per draw, mixed as locally; its ``by(column)`` adds up per
  group the same way;
* a scorecard is the local scorecard of the distributed fit grouped by owner.

What travels between processes: the partial statistics and the per-partition distributions and
scenario totals (as the library's own archives and numpy arrays), never the events. Every task
checks on its worker that its result pickles, and fails at once when it does not (Dask would
otherwise wait forever for a result it cannot send to another worker). Needs
``dask[distributed]`` (any Dask scheduler works; worker processes are what scale).
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from . import _convert, _core
from .backtesting import Backtest
from .coaching import ActivityLog, Coaching, _effectiveness, _landmarks, _scorecard, _sum_cells
from .event_log import EventLog as _LocalEventLog
from .event_log import _ColumnMap
from .forecasting import (
    Forecast,
    _baseline_per_stage,
    _by_frame,
    _day_bounds,
    _Distribution,
    _group_cents,
    _scenario_quantiles,
)
from .model import FitOptions, FunnelModel

try:
    import dask
    import dask.dataframe as dd
    from dask.base import tokenize
    from dask.delayed import Delayed, delayed
except ImportError as exc:  # pragma: no cover - only without dask installed
    raise ImportError(
        "smartfunnel.dask needs Dask: pip install 'dask[distributed]' (it is an optional dependency)"
    ) from exc

FitStatistics = _core.FitStatistics

__all__ = [
    "DaskEventLog",
    "DaskForecast",
    "EventLog",
    "FitStatistics",
    "PartitioningWarning",
    "action_effectiveness",
    "backtest",
    "collect_statistics",
    "fit",
    "forecast",
    "scorecard",
]

T = TypeVar("T")


class PartitioningWarning(UserWarning):
    """The events were not partitioned by opportunity: smartfunnel repartitioned them (a shuffle)."""


# -- what travels between processes ------------------------------------------------------------------
class _Discard:
    """A file that forgets what is written to it."""

    def write(self, data: Any) -> int:
        return len(data)


def _nothing() -> None:
    return None


class _PortabilityPickler(pickle.Pickler):
    """Pickles to nowhere, skipping what is known to pickle (numeric numpy arrays, the compiled
    objects that carry their own archive), so checking a result costs little."""

    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        if t is np.ndarray and not obj.dtype.hasobject:
            return _nothing, ()
        if t.__module__ == "smartfunnel._core" and "__getstate__" in t.__dict__:
            return _nothing, ()
        return NotImplemented


def _check_portable(value: Any, task: str) -> None:
    """Raise a TypeError naming the task and the object when `value` cannot be pickled.

    Dask's workers send a task's result to another worker pickled; when that fails, the worker's
    state machine does not report it and the computation waits forever (dask/distributed#6705).
    Checking on the worker that produced it turns that hang into an error on the client."""
    try:
        _PortabilityPickler(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        return
    except Exception as first:
        try:  # what the distributed protocol falls back to (local functions, lambdas...)
            import cloudpickle

            cloudpickle.dumps(value)
            return
        except Exception:
            reason = first
    raise TypeError(
        f"smartfunnel.dask: the result of {task} cannot be sent between Dask processes: "
        f"{type(value).__module__}.{type(value).__qualname__} does not pickle ({reason})"
    ) from reason


class _Checked:
    """A task function whose result is checked to pickle before it leaves the worker."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.fn(*args, **kwargs)
        _check_portable(out, self.__name__)
        return out

    def __dask_tokenize__(self) -> Any:
        return ("smartfunnel.dask._Checked", tokenize(self.fn))


def _delayed(fn: Callable[..., Any], pure: bool = False) -> Any:
    """``dask.delayed(fn)`` for a task of this module: its result is checked to pickle on the
    worker (a result that does not would otherwise hang the computation, see _check_portable)."""
    return delayed(_Checked(fn), pure=pure)


# -- tree reduction ---------------------------------------------------------------------------------
def _tree(parts: Sequence[Any], combine: Callable[[list[Any]], Any], split_every: int) -> Any:
    """A Dask tree reduction of delayed values: `combine` over groups of `split_every`, level by
    level, so no process ever holds more than `split_every` parts at once."""
    if split_every < 2:
        raise ValueError(f"split_every must be >= 2, got {split_every}")
    level = list(parts)
    if not level:
        raise ValueError("nothing to reduce (no partitions)")
    while len(level) > 1:
        # pure: each node's key is a hash of the function and of its inputs' keys, so reductions
        # of different inputs never share a key
        level = [
            _delayed(combine, pure=True)(level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level[0]


# -- the log ------------------------------------------------------------------------------------------
def _id_hashes(ids: pd.Series) -> np.ndarray:
    """Sorted 64-bit hashes of the distinct opportunity ids of one partition."""
    unique = pd.Series(ids.dropna().unique())
    return np.sort(pd.util.hash_pandas_object(unique.astype(str), index=False).to_numpy())


def _shared_ids(hashes: Sequence[np.ndarray]) -> int:
    """Number of opportunity ids present in more than one partition (by hash: a collision can only
    report a shared id that is not, which costs a needless shuffle, never a wrong result)."""
    parts = [h for h in hashes if len(h)]
    if len(parts) < 2:
        return 0
    allh = np.sort(np.concatenate(parts))
    dup = allh[1:] == allh[:-1]
    return int(np.count_nonzero(dup & ~np.r_[False, dup[:-1]]))


_ROW_PREFIX = re.compile(r"^row \d+: ")


def _build_partition(
    frame: pd.DataFrame,
    index: int,
    funnel: _core.Funnel,
    kwargs: dict[str, Any],
) -> _LocalEventLog:
    """The EventLog of one partition; a bad row raises naming the partition and the row's label."""
    labels = frame.index
    local = frame.reset_index(drop=True)
    try:
        log = _LocalEventLog.from_frame(funnel, local, **kwargs)
    except _core.DataError as err:
        row = getattr(err, "row", None)
        column = getattr(err, "column", None)
        where = f"partition {index}"
        if row is not None and 0 <= row < len(labels):
            where += f", row {labels[row]!r} (position {row} in the partition)"
        new = type(err)(f"{where}: {_ROW_PREFIX.sub('', str(err))}")
        new.row, new.column = row, column
        new.partition = index  # type: ignore[attr-defined]
        new.label = (  # type: ignore[attr-defined]
            labels[row] if row is not None and 0 <= row < len(labels) else None
        )
        raise new from None
    rejected = log.rejected
    if len(rejected):
        rejected = rejected.copy()
        rows = rejected["row"].to_numpy()
        ok = (rejected["source"].to_numpy() == "events") & (rows >= 0)
        new_index = np.asarray(rejected.index, dtype=object)
        new_index[ok] = np.asarray(labels, dtype=object)[rows[ok]]
        rejected.index = pd.Index(new_index, name=labels.name)
        rejected.insert(0, "partition", index)
        log._rejected = rejected
    return log


def _log_summary(log: _LocalEventLog) -> dict[str, Any]:
    core = log.core
    return {
        "n_events": log.n_events,
        "n_opportunities": log.n_opportunities,
        "first_time": int(core.first_time) if log.n_events else None,
        "last_time": int(core.last_time) if log.n_events else None,
        "quality": log.quality,
        "rejected": log.rejected if len(log.rejected) else None,
        "memory_bytes": log.memory_bytes,
    }


class DaskEventLog:
    """An event log held by Dask: one smartfunnel :class:`~smartfunnel.EventLog` per partition,
    every opportunity's events in one partition.

    Build one with :meth:`from_frame`, then :func:`fit`, :func:`forecast` and :func:`scorecard`.
    The partition logs are persisted (kept in the workers' memory, a fraction of the frame's
    size) so that several analyses read the events once.
    """

    def __init__(
        self,
        partitions: list[Delayed],
        funnel: _core.Funnel,
        columns: _ColumnMap,
        summaries: list[dict[str, Any]],
        repartitioned: bool,
    ):
        self.partitions = partitions
        self._funnel = funnel
        self._columns = columns
        self._summaries = summaries
        self.repartitioned = repartitioned

    @classmethod
    def from_frame(
        cls,
        funnel: _core.Funnel,
        frame: dd.DataFrame,
        opportunity: str = "opportunity_id",
        stage: str = "stage",
        time: str = "time",
        amount: str | None = None,
        owner: str | None = None,
        close_date: str | None = None,
        created: str | None = None,
        attributes: Sequence[str] = (),
        validation: str = "strict",
        after_terminal: str = "error",
        *,
        partitioned: bool | None = None,
        persist: bool = True,
    ) -> DaskEventLog:
        """Build the partition logs of a Dask DataFrame of events (one row per stage event).

        Parameters
        ----------
        funnel : Funnel
        frame : dask.dataframe.DataFrame
            The columns of :meth:`smartfunnel.EventLog.from_frame`.
        opportunity, stage, time, amount, owner, close_date, created, attributes, validation, after_terminal
            As in :meth:`smartfunnel.EventLog.from_frame`.
        partitioned : bool, optional
            Whether every opportunity's events are in one partition. ``None`` (default): known
            when the frame is indexed by the opportunity column with known divisions, else checked
            (one pass over the id column); when they are not, the frame is shuffled by opportunity
            id, with a :class:`PartitioningWarning` saying so. ``True`` skips the check (you vouch
            for it: an opportunity split between partitions would count as two); ``False``
            shuffles without checking.
        persist : bool
            Keep the partition logs in the workers' memory (default).

        Raises
        ------
        DataError, UnknownStageError
            A bad row (in strict validation), naming the partition and the row's index label.
        """
        if not isinstance(frame, dd.DataFrame):
            raise TypeError(f"frame must be a dask DataFrame, got {type(frame).__name__}")
        cols = _ColumnMap(
            opportunity, stage, time, amount, owner, close_date, created, tuple(attributes)
        )
        known = False
        if frame.index.name == opportunity and opportunity not in frame.columns:
            # Known divisions of an index on the opportunity: every id in one partition.
            known = bool(frame.known_divisions)
            frame = frame.reset_index()
        if opportunity not in frame.columns:
            raise _core.DataError(
                f"column {opportunity!r} is not in the frame (columns: {list(map(str, frame.columns))})"
            )
        shuffle = partitioned is False
        if partitioned is None and not known:
            hashes = dask.compute(
                *[_delayed(_id_hashes)(p) for p in frame[opportunity].to_delayed()]
            )
            shared = _shared_ids(hashes)
            if shared:
                warnings.warn(
                    f"{shared:,} opportunities have events in more than one of the "
                    f"{frame.npartitions} partitions: repartitioning by {opportunity!r} (a Dask "
                    f"shuffle). Partition the frame by opportunity first (set_index("
                    f"{opportunity!r}) or shuffle(on={opportunity!r})) to skip this.",
                    PartitioningWarning,
                    stacklevel=2,
                )
                shuffle = True
        if shuffle:
            frame = frame.shuffle(on=opportunity, npartitions=frame.npartitions)
        kwargs = dict(
            opportunity=opportunity,
            stage=stage,
            time=time,
            amount=amount,
            owner=owner,
            close_date=close_date,
            created=created,
            attributes=tuple(attributes),
            validation=validation,
            after_terminal=after_terminal,
        )
        dfunnel = delayed(funnel, pure=True)
        parts = [
            _delayed(_build_partition, pure=True)(p, i, dfunnel, kwargs)
            for i, p in enumerate(frame.to_delayed())
        ]
        if persist:
            parts = list(dask.persist(*parts))
        summaries = list(dask.compute(*[_delayed(_log_summary)(p) for p in parts]))
        return cls(parts, funnel, cols, summaries, shuffle)

    # -- properties ---------------------------------------------------------------------------------
    @property
    def funnel(self) -> _core.Funnel:
        return self._funnel

    def _nonempty(self) -> list[Delayed]:
        """The partition logs with events (an empty partition contributes nothing, and its log
        does not even know which optional columns the frame has)."""
        return [p for p, s in zip(self.partitions, self._summaries) if s["n_events"] > 0]

    @property
    def npartitions(self) -> int:
        return len(self.partitions)

    @property
    def n_events(self) -> int:
        return sum(int(s["n_events"]) for s in self._summaries)

    @property
    def n_opportunities(self) -> int:
        return sum(int(s["n_opportunities"]) for s in self._summaries)

    @property
    def last_time(self) -> pd.Timestamp | None:
        """The last event of the whole log (the default as_of of a fit)."""
        times = [s["last_time"] for s in self._summaries if s["last_time"] is not None]
        return _convert.to_timestamp(max(times)) if times else None

    @property
    def first_time(self) -> pd.Timestamp | None:
        times = [s["first_time"] for s in self._summaries if s["first_time"] is not None]
        return _convert.to_timestamp(min(times)) if times else None

    @property
    def quality(self) -> dict[str, int]:
        """The data-quality report summed over the partitions."""
        out: dict[str, int] = {}
        for s in self._summaries:
            for k, v in s["quality"].items():
                out[k] = out.get(k, 0) + int(v)
        return out

    @property
    def rejected(self) -> pd.DataFrame:
        """Rows rejected in lenient validation, with their partition; indexed by the frame's
        index labels."""
        parts = [s["rejected"] for s in self._summaries if s["rejected"] is not None]
        if not parts:
            return pd.DataFrame(
                {
                    "partition": np.empty(0, np.int64),
                    "row": np.empty(0, np.int64),
                    "source": [],
                    "rejected_column": [],
                    "reason": [],
                }
            )
        return pd.concat(parts)

    def partition_sizes(self) -> pd.DataFrame:
        """Events, opportunities and in-memory bytes of each partition's log."""
        return pd.DataFrame(
            {
                "events": [s["n_events"] for s in self._summaries],
                "opportunities": [s["n_opportunities"] for s in self._summaries],
                "memory_bytes": [s["memory_bytes"] for s in self._summaries],
            },
            index=pd.RangeIndex(self.npartitions, name="partition"),
        )

    def compute(self) -> _LocalEventLog:
        """The whole log in this process (one EventLog from every partition's events)."""
        frames = dask.compute(*[_delayed(_log_frame)(p) for p in self.partitions])
        whole = pd.concat(frames, ignore_index=True)
        return _LocalEventLog.from_frame(self._funnel, whole)

    def __repr__(self) -> str:
        span = (
            f", {self.first_time:%Y-%m-%d} .. {self.last_time:%Y-%m-%d}"
            if self.last_time is not None
            else ""
        )
        return (
            f"dask EventLog({self.n_events:,} events, {self.n_opportunities:,} opportunities in "
            f"{self.npartitions} partitions{span}, funnel {self._funnel.name!r}"
            f"{', repartitioned by opportunity' if self.repartitioned else ''})"
        )

    def _repr_html_(self) -> str:
        sizes = self.partition_sizes().describe().loc[["mean", "min", "max"]]
        return (
            f"<div><strong>dask EventLog</strong> — {self.n_events:,} events, "
            f"{self.n_opportunities:,} opportunities in {self.npartitions} partitions"
            f"{sizes.to_html(float_format=lambda x: f'{x:,.0f}')}</div>"
        )


EventLog = DaskEventLog
"""``smartfunnel.dask.EventLog``: the name mirrors :class:`smartfunnel.EventLog`."""


def _log_frame(log: _LocalEventLog) -> pd.DataFrame:
    return log.to_frame()


# -- fit ------------------------------------------------------------------------------------------------
def _fit_options(
    log: DaskEventLog, options: FitOptions | None, kwargs: dict[str, Any]
) -> tuple[FitOptions, _core.FitOptions]:
    opts = dataclasses.replace(options or FitOptions(), **kwargs)
    core = opts.to_core()
    if core.as_of is None:  # the last event of the whole log, as a local fit would take
        last = [s["last_time"] for s in log._summaries if s["last_time"] is not None]
        if not last:
            raise _core.DataError("the log has no events: nothing to fit")
        core.as_of = int(max(last))
    return opts, core


def _collect(log: _LocalEventLog, options: _core.FitOptions) -> _core.FitStatistics:
    return _core.collect_statistics(log.core, options)


def _merge_statistics(parts: list[_core.FitStatistics]) -> _core.FitStatistics:
    return _core.merge_statistics(parts)


def collect_statistics(
    log: DaskEventLog, options: FitOptions | None = None, *, split_every: int = 8, **kwargs: Any
) -> _core.FitStatistics:
    """The merged sufficient statistics of a fit (what :func:`fit` derives the model from).

    Each partition collects its statistics on its worker; they travel pickled (the library's
    binary archive) and merge in a tree reduction, `split_every` at a time.
    """
    _, core = _fit_options(log, options, kwargs)
    dopts = delayed(core, pure=True)
    parts = [_delayed(_collect, pure=True)(p, dopts) for p in log._nonempty()]
    result: _core.FitStatistics = _tree(parts, _merge_statistics, split_every).compute()
    return result


def fit(
    log: DaskEventLog, options: FitOptions | None = None, *, split_every: int = 8, **kwargs: Any
) -> FunnelModel:
    """Fit the funnel model of a Dask event log: equal (``==``) to :func:`smartfunnel.fit` of the
    same events.

    Parameters
    ----------
    log : DaskEventLog
    options : FitOptions, optional
        Keyword arguments override them, as in :func:`smartfunnel.fit`. The default as_of is the
        last event of the whole log.
    split_every : int, default 8
        Fan-in of the tree reduction of the partial statistics.
    """
    if not isinstance(log, DaskEventLog):
        raise TypeError(f"fit expects a smartfunnel.dask.EventLog, got {type(log).__name__}")
    opts = dataclasses.replace(options or FitOptions(), **kwargs)
    stats = collect_statistics(log, opts, split_every=split_every)
    return FunnelModel(_core.FunnelModel.from_statistics(stats), opts)


_fit_dask = fit


def scorecard(
    log: DaskEventLog, options: FitOptions | None = None, *, split_every: int = 8, **kwargs: Any
) -> pd.DataFrame:
    """The per-rep scorecard of :meth:`smartfunnel.Coaching.scorecard`, from a distributed fit
    grouped by owner (the sums over opportunities are the merged statistics)."""
    opts = dataclasses.replace(options or FitOptions(), **kwargs)
    opts = dataclasses.replace(opts, groups=["owner"])
    return _scorecard(fit(log, opts, split_every=split_every))


# -- forecast --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _PartitionForecast:
    raw: dict[str, Any]
    log: _LocalEventLog
    cents: np.ndarray  # scenario totals in cents, realised wins included


def _moments(amount: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Mean and variance of sum amount_i Bernoulli(p_i), as the core's exact distribution reads
    them (amounts <= 0 and probabilities <= 0 or NaN ignored, p clamped to 1)."""
    q = np.clip(p, 0.0, 1.0)
    use = (amount > 0) & (q > 0)
    mean = float(np.sum(amount[use] * q[use]))
    unc = use & (q < 1)
    var = float(np.sum(amount[unc] ** 2 * q[unc] * (1 - q[unc])))
    return mean, var


def _forecast_partition(
    model: _core.FunnelModel, log: _LocalEventLog, kw: dict[str, Any]
) -> _PartitionForecast:
    raw = _core.forecast(model, log.core, exact=False, include_arrivals=False, threads=1, **kw)
    return _PartitionForecast(raw, log, np.asarray(raw["scenario_cents"], dtype=np.int64))


def _largest(amount: np.ndarray, p: np.ndarray) -> float:
    """The largest amount of a deal with amount > 0 and 0 < p < 1, as the core's lattice_step
    bounds the step by (0 when none)."""
    q = np.clip(np.nan_to_num(p), 0.0, 1.0)
    unc = (amount > 0) & (q > 0) & (q < 1)
    return float(amount[unc].max()) if unc.any() else 0.0


def _largest_draws(amount: np.ndarray, p: np.ndarray) -> np.ndarray:
    """_largest for each column of p (deals x draws)."""
    q = np.clip(np.nan_to_num(p), 0.0, 1.0)
    unc = (amount[:, None] > 0) & (q > 0) & (q < 1)
    return np.where(unc, amount[:, None], 0.0).max(axis=0, initial=0.0)


def _cp_largest(cp: tuple[Any, ...] | None) -> float:
    """The largest amount of positive weight of a compound Poisson part (0 without one)."""
    if cp is None:
        return 0.0
    amt = cp[1][cp[2] > 0]
    return float(amt.max()) if len(amt) else 0.0


def _moments_draws(amount: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_moments for each column of p (deals x draws): means and variances per draw."""
    q = np.clip(p, 0.0, 1.0)
    a = amount[:, None]
    use = (a > 0) & (q > 0)
    mean = np.where(use, a * q, 0.0).sum(axis=0)
    var = np.where(use & (q < 1), a * a * q * (1 - q), 0.0).sum(axis=0)
    return mean, var


def _baseline_partition(
    part: _PartitionForecast, per_stage: np.ndarray, scenarios: int, seed: int
) -> _PartitionForecast:
    """A partition's deals with a baseline's probabilities (as the local forecast's
    _with_baseline): its Monte Carlo on the same streams."""
    raw = dict(part.raw)
    stage = np.asarray(raw["stage"], dtype=np.int64)
    p = np.clip(np.nan_to_num(per_stage[stage]), 0.0, 1.0)
    raw["p_win_period"] = p
    raw["p_win_period_draws"] = np.empty((len(p), 0))
    cents = np.zeros(max(scenarios, 0), dtype=np.int64)
    if scenarios > 0:
        opp = np.asarray(raw["opportunity"], dtype=np.int64)
        ids = part.log.opportunity_ids()[opp].astype(str)
        realised = int(np.round(np.asarray(raw["realised_amount"]) * 100).sum())
        cents = _group_cents(np.asarray(raw["amount"]), p, ids, scenarios, seed) + realised
    return _PartitionForecast(raw, part.log, cents)


def _value_at(
    history: tuple[Any, Any, Any], opp: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The value of a field history in force at t[i] for opportunity opp[i] (the last change at
    or before t[i]), and whether there is one."""
    offset, times, values = (np.asarray(x) for x in history)
    if len(offset) == 0 or len(times) == 0:
        return np.zeros(len(opp)), np.zeros(len(opp), dtype=bool)
    lo = offset[opp].astype(np.int64)
    counts = offset[opp + 1].astype(np.int64) - lo
    group = np.repeat(np.arange(len(opp)), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    seen = times[np.repeat(lo, counts) + within] <= np.repeat(t, counts)
    n_seen = np.bincount(group, weights=seen, minlength=len(opp)).astype(np.int64)
    found = n_seen > 0
    out = values[np.where(found, lo + n_seen - 1, 0)] if len(values) else np.zeros(len(opp))
    return out, found


def _created_in_lookback(
    part: _PartitionForecast, as_of: int, lookback_days: float
) -> pd.DataFrame:
    """What the arrivals model reads of the partition: the deals created in (as_of - lookback,
    as_of] (entry stage, creation time, amount at entry, owner at max(created, entry),
    attributes; ``won_time`` -1), and the deals won in that window as seen at as_of (their won
    stage, amount at the win and ``won_time``, owner and attributes as above), which value a new
    deal's win."""
    core = part.log.core
    offsets = np.asarray(core.offsets, dtype=np.int64)
    created = np.asarray(core.created, dtype=np.int64)
    times = np.asarray(core.times, dtype=np.int64)
    stages = np.asarray(core.stages, dtype=np.int64)
    first = offsets[:-1]
    start = as_of - int(lookback_days * 86400.0)
    new = np.flatnonzero((offsets[1:] > first) & (created > start) & (created <= as_of))
    # The last event at or before as_of, and the entry of its stay (the start of its run).
    seen = np.zeros(len(first), dtype=np.int64)
    if len(times):
        visible = (times <= as_of).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(visible)])
        seen = cum[offsets[1:]] - cum[first]
    names = np.asarray(core.funnel.names, dtype=object)
    won_codes = np.asarray([core.funnel.code_of(w) for w in core.funnel.won], dtype=np.int64)
    last = first + seen - 1
    has = seen > 0
    is_won = has & np.isin(stages[np.where(has, last, 0)] if len(stages) else last, won_codes)
    run_begin = np.ones(len(stages), dtype=bool)
    if len(stages):
        run_begin[1:] = stages[1:] != stages[:-1]
        run_begin[first[offsets[1:] > first]] = True
    run_start = np.maximum.accumulate(np.where(run_begin, np.arange(len(stages)), 0))
    won_at = np.where(is_won, times[run_start[np.where(is_won, last, 0)]] if len(times) else 0, 0)
    won = np.flatnonzero(is_won & (won_at > start))
    sel = np.concatenate([new, won])
    won_time = np.concatenate([np.full(len(new), -1, dtype=np.int64), won_at[won]])
    entry_time = times[first[sel]] if len(sel) else np.zeros(0, dtype=np.int64)
    stage = np.concatenate(
        [stages[first[new]], stages[last[won]]] if len(sel) else [np.zeros(0, dtype=np.int64)]
    )
    out = pd.DataFrame({"stage": names[stage], "created": created[sel], "won_time": won_time})
    amount, found = _value_at(
        core.amount_history, sel, np.where(won_time >= 0, won_time, entry_time)
    )
    out["amount"] = np.where(found, amount, 0.0).astype(np.float64)
    if core.has_owners:
        owner, found = _value_at(core.owner_history, sel, np.maximum(created[sel], entry_time))
        owners = np.asarray(core.owner_names, dtype=object)
        named = owners[np.where(found, owner, 0)] if len(owners) else np.full(len(sel), None)
        out["owner"] = np.where(found, named, np.full(len(sel), None, dtype=object))
    for name, values, codes in core.attributes:
        c = np.asarray(codes)[sel]
        vals = np.asarray([*values, None], dtype=object)
        out[name] = vals[np.where(c < 0, len(values), c)]
    return out


def _forecast_summary(
    part: _PartitionForecast, as_of: int, lookback: float | None
) -> dict[str, Any]:
    raw = part.raw
    amount = np.asarray(raw["amount"], dtype=np.float64)
    p = np.asarray(raw["p_win_period"], dtype=np.float64)
    mean, var = _moments(amount, p)
    p_draws = np.asarray(raw["p_win_period_draws"], dtype=np.float64)
    mean_draws, var_draws = _moments_draws(amount, p_draws)
    return {
        "n_open": len(amount),
        "mean": mean,
        "variance": var,
        "largest": _largest(amount, p),
        "mean_draws": mean_draws,
        "variance_draws": var_draws,
        "largest_draws": _largest_draws(amount, p_draws),
        "realised": float(raw["realised"]),
        "created": None if lookback is None else _created_in_lookback(part, as_of, lookback),
    }


def _sum_cents(parts: list[np.ndarray]) -> np.ndarray:
    return np.sum(np.stack(parts), axis=0) if len(parts) > 1 else parts[0]


def _cents_of(part: _PartitionForecast) -> np.ndarray:
    return part.cents


def _partition_distributions(
    part: _PartitionForecast, steps: dict[str, tuple[float, int | None]], cells: int, sd: float
) -> dict[str, dict[str, Any]]:
    """The partition's distributions on the lattices of the whole: for each name, a step and the
    probabilities it uses (None: the point estimates; d: posterior draw d)."""
    raw = part.raw
    amount = np.ascontiguousarray(raw["amount"], dtype=np.float64)
    draws = np.asarray(raw["p_win_period_draws"], dtype=np.float64)
    out = {}
    for name, (step, column) in steps.items():
        p = np.ascontiguousarray(raw["p_win_period"] if column is None else draws[:, column])
        out[name] = _core.exact_distribution_with_step(
            amount, p, step, float(raw["realised"]), cells=cells, sd=sd
        )
    return out


def _convolve_all(parts: list[dict[Any, dict[str, Any]]], cells: int, sd: float) -> dict[Any, Any]:
    """Convolve dicts of distributions key by key (a key missing from a part adds nothing)."""
    out = dict(parts[0])
    for other in parts[1:]:
        for k, d in other.items():
            out[k] = _core.convolve(out[k], d, cells=cells, sd=sd) if k in out else d
    return out


def _sum_keyed(parts: list[dict[Any, np.ndarray]]) -> dict[Any, np.ndarray]:
    """Add dicts of scenario totals key by key."""
    out = dict(parts[0])
    for other in parts[1:]:
        for k, v in other.items():
            out[k] = out[k] + v if k in out else v
    return out


def _point_mass(mean: float) -> dict[str, Any]:
    """A total without uncertainty, as the core's exact_distribution returns it."""
    return {
        "origin": mean,
        "step": 1.0,
        "mean": mean,
        "variance": 0.0,
        "truncated_mass": 0.0,
        "w1_bound": 0.0,
        "pmf": np.ones(1),
    }


def _arrivals(
    model: FunnelModel,
    funnel: _core.Funnel,
    created: pd.DataFrame,
    columns: _ColumnMap,
    kw: dict[str, Any],
    include: bool,
) -> dict[str, Any] | None:
    """The arrivals part, computed once on the client from the deals created in the lookback and
    those won in it (a log of one event per deal: the arrivals model reads nothing else)."""
    if not include or len(created) == 0:
        return None
    # One event per deal. A created deal's is just after as_of: it stays out of the pipeline
    # (which the partitions forecast), while the arrivals read its creation time, entry stage,
    # and the amount and owner in force from that event on, as in the whole log. A won deal's is
    # its win, with its amount at the win, created at the lookback's start (outside it: not a
    # new deal).
    as_of = int(kw["as_of"])
    won = created["won_time"].to_numpy() >= 0
    start = as_of - int(kw["arrivals_lookback_days"] * 86400.0)
    frame = created.drop(columns="won_time").assign(
        opportunity_id=np.arange(len(created), dtype=np.int64),
        time=np.where(won, created["won_time"].to_numpy(), as_of + 1),
        created=np.where(won, start, created["created"].to_numpy()),
    )
    if not (~won).any():
        return None
    attrs = [
        c
        for c in created.columns
        if c not in ("stage", "time", "created", "amount", "owner", "won_time")
    ]
    log = _LocalEventLog.from_frame(
        funnel,
        frame,
        "opportunity_id",
        "stage",
        "time",
        amount="amount",
        owner="owner" if "owner" in created.columns else None,
        created="created",
        attributes=attrs,
    )
    raw: dict[str, Any] = _core.forecast(
        model.core, log.core, exact=True, include_arrivals=True, threads=1, **kw
    )
    return raw


def forecast(
    model: FunnelModel,
    log: DaskEventLog,
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
    lattice_cells: int = 1 << 12,
    probabilities: str | Mapping[str, float] = "time_bounded",
    parameter_uncertainty: bool = False,
    parameter_draws: int = 50,
    split_every: int = 8,
    grid_days: float | None = None,
) -> DaskForecast:
    """Forecast the revenue won in ``[start, end]`` from a Dask event log: the same result as
    :func:`smartfunnel.forecast` of the same events.

    The parameters are those of :func:`smartfunnel.forecast` (``threads`` and ``progress``
    aside: each partition is one task), plus `split_every`, the fan-in of the tree reductions.
    Three passes: each partition scores its open deals and runs its Monte Carlo (kept on its
    worker); the client gathers the partitions' means and variances (which fix the lattice of
    the whole) and the deals created in the lookback (the arrivals, computed once); each
    partition then computes its exact distribution on that lattice, and the distributions
    convolve, and the scenario totals add, in tree reductions.

    With ``parameter_uncertainty=True`` each partition scores its deals under every posterior
    draw too (the draws are keyed by seed, draw, group and stage, so every partition sees the
    same draws): Monte Carlo scenario s uses draw s % parameter_draws in every partition, and
    the exact distribution is, as locally, the equal-weight mixture of one distribution per draw,
    each the convolution of the partitions' distributions on that draw's lattice of the whole.
    With a baseline in `probabilities`, each partition replaces its deals' probabilities by the
    baseline's (no arrivals, as locally).

    Monte Carlo totals are bit-identical to the local ones; the exact distribution is the local
    one on the same lattice up to floating-point rounding (~1e-12 per lattice point).
    """
    if method not in ("exact", "monte_carlo"):
        raise ValueError(f"method must be 'exact' or 'monte_carlo', got {method!r}")
    if method == "monte_carlo" and scenarios <= 0:
        raise ValueError("method='monte_carlo' needs scenarios > 0")
    if parameter_uncertainty and parameter_draws < 1:
        raise ValueError(f"parameter_uncertainty needs parameter_draws >= 1, got {parameter_draws}")
    if not isinstance(log, DaskEventLog):
        raise TypeError(f"forecast expects a smartfunnel.dask.EventLog, got {type(log).__name__}")
    if not log._funnel == model.funnel:
        raise _core.InvalidOptionsError("the log's funnel is not the model's funnel")
    baseline = not (isinstance(probabilities, str) and probabilities == "time_bounded")
    per_stage = _baseline_per_stage(model, probabilities) if baseline else None
    t0, t1 = _day_bounds(start, end, tz)
    when = int(model.core.as_of) if as_of is None else _convert.timestamp_seconds(as_of, "as_of")
    # A baseline replaces the probabilities (and so the draws) and has no arrivals.
    draws = parameter_draws if parameter_uncertainty and not baseline else 0
    with_arrivals_part = include_arrivals and not baseline
    kw: dict[str, Any] = dict(
        start=t0,
        end=t1,
        as_of=when,
        stale_after_days=stale_after_days,
        use_groups=use_groups,
        lattice_cells=lattice_cells,
        scenarios=scenarios,
        seed=seed,
        arrivals_lookback_days=arrivals_lookback_days,
        arrivals_by=arrivals_by or "",
        parameter_draws=draws,
        grid_days=grid_days,
    )
    sd = 8.0
    # The local baseline's exact distribution is on the core's default lattice.
    cells = (1 << 12) if baseline else lattice_cells
    dmodel = delayed(model.core, pure=True)
    # Pass 1: per-partition scores and Monte Carlo, kept on the workers.
    scored = [_delayed(_forecast_partition)(dmodel, p, kw) for p in log._nonempty()]
    if per_stage is not None:
        scored = [_delayed(_baseline_partition)(p, per_stage, scenarios, seed) for p in scored]
    parts = list(dask.persist(*scored))
    lookback = arrivals_lookback_days if with_arrivals_part else None
    summaries = dask.compute(*[_delayed(_forecast_summary)(p, when, lookback) for p in parts])
    created = (
        pd.concat([s["created"] for s in summaries], ignore_index=True)
        if with_arrivals_part and summaries
        else pd.DataFrame()
    )
    arr = _arrivals(model, log._funnel, created, log._columns, kw, with_arrivals_part)
    if with_arrivals_part and arr is None:  # the core's layout when nothing was created
        arr = _core.forecast(
            model.core, _empty_log(log._funnel).core, exact=True, include_arrivals=True, **kw
        )
    mean = sum(s["mean"] for s in summaries)
    var_pipe = sum(s["variance"] for s in summaries)
    realised = sum(s["realised"] for s in summaries)
    a = arr["arrivals"] if arr is not None else None
    arrivals_cp = (
        _compound_poisson(a["total_rate"], a["total_amount"], a["total_weight"]) if a else None
    )
    # Per posterior draw: the pipeline's mean and variance, and the arrivals' compound Poisson.
    mean_draws = (
        np.sum([s["mean_draws"] for s in summaries], axis=0) if summaries else np.zeros(draws)
    )
    var_draws = (
        np.sum([s["variance_draws"] for s in summaries], axis=0) if summaries else np.zeros(draws)
    )
    cp_draws = (
        [_compound_poisson(c["rate"], c["amount"], c["weight"]) for c in a["total_draws"]]
        if a is not None and include_arrivals
        else [None] * draws
    )
    largest = max((s["largest"] for s in summaries), default=0.0)
    largest_draws = (
        np.max([s["largest_draws"] for s in summaries], axis=0) if summaries else np.zeros(draws)
    )
    # Pass 2: each partition's distributions on the lattices of the whole (the core's
    # lattice_step of the whole's variance and largest uncertain amount), convolved in a tree.
    steps: dict[str, tuple[float, int | None]] = {}
    if var_pipe > 0:
        steps["pipeline"] = (_core.lattice_step(var_pipe, largest, cells, sd), None)
    var_total = var_pipe + (arrivals_cp[3] if arrivals_cp is not None else 0.0)
    if var_total > 0 and draws == 0:  # with draws, the total is the mixture of the draws
        widest = max(largest, _cp_largest(arrivals_cp))
        steps["total"] = (_core.lattice_step(var_total, widest, cells, sd), None)
    widest_draw = 0.0  # of any draw: the floor of the mixture's step, as the local forecast's
    for d in range(draws):
        cp = cp_draws[d]
        var_d = float(var_draws[d]) + (cp[3] if cp is not None else 0.0)
        widest_d = max(float(largest_draws[d]), _cp_largest(cp))
        widest_draw = max(widest_draw, widest_d)
        if var_d > 0:
            steps[f"draw{d}"] = (_core.lattice_step(var_d, widest_d, cells, sd), d)
    dists: dict[str, Any] = {}
    cents_tree = (
        _tree([_delayed(_cents_of)(p) for p in parts], _sum_cents, split_every)
        if scenarios > 0 and parts
        else None
    )
    if steps and parts:
        per_part = [_delayed(_partition_distributions)(p, steps, cells, sd) for p in parts]
        conv = _tree(per_part, _ConvolveAll(cells, sd), split_every)
        dists, cents = dask.compute(conv, cents_tree)
    else:
        (cents,) = dask.compute(cents_tree)

    def whole(name: str, pipeline_mean: float, cp: tuple[Any, ...] | None) -> dict[str, Any]:
        """The distribution of the whole: the partitions' convolution (`name`) with the
        arrivals on the same step, as the local exact_distribution of everything."""
        if cp is None:
            return dists.get(name) or _point_mass(realised + pipeline_mean)
        arrivals_d = _core.exact_distribution_with_step(
            np.empty(0),
            np.empty(0),
            steps[name][0],
            0.0,
            cells=cells,
            sd=sd,
            poisson_rate=cp[0],
            poisson_amount=list(cp[1]),
            poisson_weight=list(cp[2]),
        )
        if name in dists:
            return _core.convolve(dists[name], arrivals_d, cells=cells, sd=sd)
        return arrivals_d

    exact_pipeline = whole("pipeline", mean, None)
    if draws > 0:
        exact = _core.mixture(
            [whole(f"draw{d}", float(mean_draws[d]), cp_draws[d]) for d in range(draws)],
            cells=cells,
            sd=sd,
            min_step=_core.lattice_step(0.0, widest_draw, cells, sd),
        )
    elif include_arrivals and not baseline:
        exact = whole("total", mean, arrivals_cp)
    else:
        exact = exact_pipeline
    scenario_cents = (
        np.zeros(max(scenarios, 0), dtype=np.int64) if cents is None else np.asarray(cents)
    )
    if arr is not None and scenarios > 0:
        scenario_cents = scenario_cents + np.asarray(arr["arrival_cents"], dtype=np.int64)
    raw: dict[str, Any] = {
        "as_of": when,
        "exact": exact,
        "exact_pipeline": exact_pipeline,
        "exact_arrivals": arr["exact_arrivals"] if arr is not None else _point_mass(0.0),
        "scenario_cents": scenario_cents,
        "arrival_cents": (
            np.asarray(arr["arrival_cents"]) if arr is not None else np.zeros(0, np.int64)
        ),
        "realised": realised,
        "arrivals": arr["arrivals"] if arr is not None else {k: [] for k in _ARRIVAL_KEYS},
        "calibration": {
            "method": "none",
            "reason": "a forecast on Dask is not calibrated (the past periods are replayed on a "
            "local log: smartfunnel.forecast); the interval assumes independent deals with known "
            "probabilities",
        },
    }
    return DaskForecast(
        raw,
        model,
        log,
        method,
        include_arrivals and not baseline,
        (t0, t1),
        tz,
        seed,
        parts=parts,
        n_open=[int(s["n_open"]) for s in summaries],
        split_every=split_every,
    )


def _compound_poisson(rate: Any, amount: Any, weight: Any) -> tuple[Any, ...] | None:
    """(rate, amounts, weights, variance) of an arrivals total, or None when it adds nothing
    (the core leaves out a compound Poisson without rate or without mean)."""
    rate = float(rate)
    amt, wgt = np.asarray(amount, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    if not rate > 0:
        return None
    mean = rate * float(np.sum(wgt * amt))
    if not mean > 0:
        return None
    return rate, amt, wgt, rate * float(np.sum(wgt * amt * amt))


_ARRIVAL_KEYS = ("group", "created", "rate_per_day", "expected_wins", "mean_amount", "expected")


class _ConvolveAll:
    """Tree node: convolve a list of per-partition distributions (picklable, with its settings)."""

    def __init__(self, cells: int, sd: float):
        self.cells, self.sd = cells, sd

    def __call__(self, parts: list[dict[Any, dict[str, Any]]]) -> dict[Any, Any]:
        return _convolve_all(parts, self.cells, self.sd)

    def __dask_tokenize__(self) -> Any:
        return ("smartfunnel.dask._ConvolveAll", self.cells, self.sd)


def _empty_log(funnel: _core.Funnel) -> _LocalEventLog:
    return _LocalEventLog.from_frame(
        funnel,
        pd.DataFrame(
            {
                "opportunity_id": np.empty(0, np.int64),
                "stage": pd.Series([], dtype=object),
                "time": np.empty(0, np.int64),
            }
        ),
    )


def _deals_frame(
    part: _PartitionForecast, model: FunnelModel, meta: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The open deals of a partition (in the layout of `meta` when given: an empty partition's
    log knows neither the owners' column nor the ids' type)."""
    f = Forecast(_with_empty_exact(part.raw), model, part.log, "exact", False, (0, 86400), "UTC")
    deals = f.deals
    if meta is None:
        return deals
    if len(deals) == 0:
        return meta
    return deals.reindex(columns=meta.columns).astype(meta.dtypes.to_dict())


def _realised_frame(part: _PartitionForecast, model: FunnelModel) -> pd.DataFrame:
    f = Forecast(_with_empty_exact(part.raw), model, part.log, "exact", False, (0, 86400), "UTC")
    return f.realised_deals


def _with_empty_exact(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    for k in ("exact", "exact_pipeline", "exact_arrivals"):
        out[k] = _point_mass(0.0)
    return out


class DaskForecast(Forecast):
    """A :class:`~smartfunnel.Forecast` computed on Dask: the same distribution, quantiles,
    probabilities and arrivals; the per-deal table is a Dask DataFrame (:attr:`deals`), built
    from the partitions on demand, and :meth:`by` and :meth:`win_date_distribution` run on the
    partitions."""

    def __init__(
        self,
        raw: dict[str, Any],
        model: FunnelModel,
        log: DaskEventLog,
        method: str,
        include_arrivals: bool,
        period: tuple[int, int],
        tz: str,
        seed: int,
        *,
        parts: list[Any],
        n_open: list[int],
        split_every: int = 8,
    ):
        super().__init__(raw, model, log, method, include_arrivals, period, tz, seed)  # type: ignore[arg-type]
        self._parts = parts
        self._n_open_parts = n_open
        self._period = period
        self._split_every = split_every

    @property
    def n_open_deals(self) -> int:
        return sum(self._n_open_parts)

    @property
    def deals(self) -> dd.DataFrame:  # type: ignore[override]
        """Open deals at as_of (the columns of :attr:`smartfunnel.Forecast.deals`), one partition
        per partition of the log."""
        dmodel = delayed(self._model, pure=True)
        first = next((i for i, n in enumerate(self._n_open_parts) if n > 0), 0)
        meta = _delayed(_deals_frame)(self._parts[first], dmodel).compute().iloc[:0]
        return dd.from_delayed(
            [_delayed(_deals_frame)(p, dmodel, meta) for p in self._parts], meta=meta
        )

    @property
    def realised_deals(self) -> pd.DataFrame:
        """The wins already booked between the period start and as_of, gathered to the client
        (they are few)."""
        dmodel = delayed(self._model, pure=True)
        frames = dask.compute(*[_delayed(_realised_frame)(p, dmodel) for p in self._parts])
        return pd.concat(frames, ignore_index=True)

    def by(self, column: str, qs: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
        """Expected revenue and quantiles of the open pipeline per owner or attribute value: the
        rows of :meth:`smartfunnel.Forecast.by`. Each partition groups its deals; per group,
        the Monte Carlo totals add up scenario by scenario (bit-identical), and the exact
        distributions, on the lattice of each group's whole, convolve in a tree."""
        cols = self._log._columns
        if not (column == "owner" and cols.owner is not None) and column not in cols.attributes:
            raise KeyError(f"{column!r} is neither 'owner' nor an attribute of the log")
        dmodel = delayed(self._model, pure=True)
        period, tz = self._period, self.tz
        if self.method == "monte_carlo":
            n = len(self.scenarios)
            sums = _tree(
                [
                    _delayed(_group_scenarios)(p, dmodel, column, period, tz, n, self._seed)
                    for p in self._parts
                ],
                _sum_keyed,
                self._split_every,
            )
            groups = sums.compute() if self._parts else {}
            rows = []
            for k in sorted(groups):
                deals, totals = int(groups[k][0]), groups[k][1:]
                rows.append(
                    [k, deals, float(totals.mean() / 100), *_scenario_quantiles(totals, qs)]
                )
            return _by_frame(rows, column, qs)
        cells, sd = 1 << 12, 8.0  # the local Forecast.by's lattice (the core's default)
        moments = dask.compute(
            *[_delayed(_group_moments)(p, dmodel, column, period, tz) for p in self._parts]
        )
        total: dict[Any, np.ndarray] = {}
        for m in moments:
            for k, v in m.items():
                if k in total:  # counts and moments add, the largest amount is the larger
                    v = np.append(total[k][:3] + v[:3], max(total[k][3], v[3]))
                total[k] = v
        steps = {k: _core.lattice_step(v[2], v[3], cells, sd) for k, v in total.items() if v[2] > 0}
        dists: dict[Any, Any] = {}
        if steps:
            dists = _tree(
                [
                    _delayed(_group_distributions)(p, dmodel, column, period, tz, steps, cells, sd)
                    for p in self._parts
                ],
                _ConvolveAll(cells, sd),
                self._split_every,
            ).compute()
        rows = []
        for k in sorted(total):
            d = _Distribution(dists[k] if k in dists else _point_mass(float(total[k][1])))
            rows.append([k, int(total[k][0]), d.mean, *[d.quantile(q) for q in qs]])
        return _by_frame(rows, column, qs)

    def win_date_distribution(self, opportunity_id: Any) -> pd.Series:
        """P(the open deal is won by the end of each day of the period), as
        :meth:`smartfunnel.Forecast.win_date_distribution`: computed in the deal's partition."""
        dmodel = delayed(self._model, pure=True)
        found = dask.compute(
            *[
                _delayed(_win_dates)(p, dmodel, opportunity_id, self._period, self.tz)
                for p in self._parts
            ]
        )
        for series in found:
            if series is not None:
                return series
        raise _core.UnknownOpportunityError(
            f"opportunity {opportunity_id!r} is not open at {self.as_of:%Y-%m-%d}"
        )


def _partition_view(
    part: _PartitionForecast, model: FunnelModel, period: tuple[int, int], tz: str
) -> Forecast:
    """A local Forecast of the partition's deals (its distributions left empty)."""
    return Forecast(_with_empty_exact(part.raw), model, part.log, "exact", False, period, tz)


def _group_moments(
    part: _PartitionForecast, model: FunnelModel, column: str, period: tuple[int, int], tz: str
) -> dict[Any, np.ndarray]:
    """Per group of the partition's deals: [deals, mean, variance, largest uncertain amount]."""
    keys, amount, p, _ = _partition_view(part, model, period, tz)._group_deals(column)
    out = {}
    for k in set(keys):
        sel = keys == k
        mean, var = _moments(amount[sel], np.nan_to_num(p[sel]))
        out[k] = np.array([float(sel.sum()), mean, var, _largest(amount[sel], p[sel])])
    return out


def _group_distributions(
    part: _PartitionForecast,
    model: FunnelModel,
    column: str,
    period: tuple[int, int],
    tz: str,
    steps: dict[Any, float],
    cells: int,
    sd: float,
) -> dict[Any, dict[str, Any]]:
    """Per group with uncertainty, the distribution of the partition's deals on the step of the
    group's whole."""
    keys, amount, p, _ = _partition_view(part, model, period, tz)._group_deals(column)
    out = {}
    for k in set(keys):
        if k in steps:
            sel = keys == k
            out[k] = _core.exact_distribution_with_step(
                np.ascontiguousarray(amount[sel]),
                np.ascontiguousarray(np.nan_to_num(p[sel])),
                steps[k],
                cells=cells,
                sd=sd,
            )
    return out


def _group_scenarios(
    part: _PartitionForecast,
    model: FunnelModel,
    column: str,
    period: tuple[int, int],
    tz: str,
    scenarios: int,
    seed: int,
) -> dict[Any, np.ndarray]:
    """Per group of the partition's deals: the number of deals, then the Monte Carlo totals in
    cents (so that the parts add up as arrays)."""
    keys, amount, p, ids = _partition_view(part, model, period, tz)._group_deals(column)
    out = {}
    for k in set(keys):
        sel = keys == k
        cents = _group_cents(amount[sel], p[sel], ids[sel], scenarios, seed)
        out[k] = np.concatenate([np.array([sel.sum()], dtype=np.int64), cents])
    return out


def _win_dates(
    part: _PartitionForecast,
    model: FunnelModel,
    opportunity_id: Any,
    period: tuple[int, int],
    tz: str,
) -> pd.Series | None:
    try:
        return _partition_view(part, model, period, tz).win_date_distribution(opportunity_id)
    except _core.UnknownOpportunityError:
        return None


# -- backtest ------------------------------------------------------------------------------------------
def _backtest_partition(
    part: _PartitionForecast, model: _core.FunnelModel, t0: int, t1: int, t: int
) -> dict[str, Any]:
    """One partition's open deals at t with their outcome in [t0, t1), and its realised and
    actual wins."""
    raw = part.raw
    actual = _core.forecast(
        model,
        part.log.core,
        t0,
        t1,
        as_of=max(t, t1 - 1),
        exact=False,
        scenarios=0,
        include_arrivals=False,
    )
    opp = np.asarray(raw["opportunity"], dtype=np.int64)
    won = np.isin(opp, np.asarray(actual["realised_opportunity"], dtype=np.int64))
    return {
        "amount": np.asarray(raw["amount"]),
        "stage": np.asarray(raw["stage"], dtype=np.int64),
        "p": np.asarray(raw["p_win_period"]),
        "won": won.astype(float),
        "realised": float(raw["realised"]),
        "actual": float(actual["realised"]),
    }


def backtest(
    log: DaskEventLog,
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
    split_every: int = 8,
) -> Backtest:
    """:func:`smartfunnel.backtest` on Dask: each date's model is a distributed fit as of that
    date (its statistics merged in a tree) and its forecast a distributed forecast (with
    parameter uncertainty when asked); the open deals' amounts, probabilities and outcomes then
    come to the client, where the baselines' exact distributions and the scores are computed as
    locally. The same table and deal rows as the local backtest without calibration
    (``calibrate=False``): a forecast on Dask is not calibrated."""
    fit_options = fit or FitOptions()
    stages = list(log.funnel.stages)
    ladder_values: list[float] = []
    if ladder is not None:
        missing = [s for s in stages if s not in ladder]
        if missing:
            raise ValueError(f"ladder has no probability for stage(s) {missing}")
        ladder_values = [float(ladder[s]) for s in stages]
    results: list[_core.BacktestResult] = []
    for when in as_of:
        t = _convert.timestamp_seconds(when, "as_of")
        stamp = _convert.to_timestamp(t)
        model = _fit_dask(
            log, dataclasses.replace(fit_options, as_of=stamp), split_every=split_every
        )
        start_day = stamp.tz_convert(tz).normalize()
        end_day = start_day + pd.Timedelta(days=horizon_days - 1)
        t0, t1 = _day_bounds(start_day, end_day, tz)
        fc = forecast(
            model,
            log,
            start_day,
            end_day,
            as_of=stamp,
            scenarios=0,
            include_arrivals=include_arrivals,
            tz=tz,
            stale_after_days=stale_after_days,
            parameter_uncertainty=parameter_uncertainty,
            parameter_draws=parameter_draws,
            grid_days=grid_days,
            split_every=split_every,
        )
        dmodel = delayed(model.core, pure=True)
        parts = dask.compute(
            *[_delayed(_backtest_partition)(p, dmodel, t0, t1, t) for p in fc._parts]
        )

        def cat(key: str, dtype: Any, parts: Sequence[dict[str, Any]] = parts) -> np.ndarray:
            return np.concatenate([p[key] for p in parts]) if parts else np.empty(0, dtype)

        exact = fc.exact
        results.append(
            _core.backtest_score_period(
                model.core,
                t,
                t0,
                t1,
                cat("stage", np.int64).astype(np.uint16),
                cat("amount", np.float64),
                cat("p", np.float64),
                {
                    "origin": exact.origin,
                    "step": exact.step,
                    "mean": exact.mean,
                    "variance": exact.variance,
                    "truncated_mass": exact.truncated_mass,
                    "w1_bound": exact.w1_bound,
                    "pmf": exact.pmf,
                },
                float(sum(p["realised"] for p in parts)),
                cat("won", np.float64),
                float(sum(p["actual"] for p in parts)),
                ladder=ladder_values,
            )
        )
    return Backtest(_core.backtest_combine(results, calibration_bins), horizon_days)


# -- action effectiveness ------------------------------------------------------------------------------
def _ids_frame(log: _LocalEventLog, index: int, opportunity: str) -> pd.DataFrame:
    return pd.DataFrame(
        {opportunity: log.opportunity_ids(), "_sf_partition": np.full(log.n_opportunities, index)}
    )


def _with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(_sf_label=np.asarray(frame.index, dtype=object))


def _build_activities(
    log: _LocalEventLog, frame: pd.DataFrame, index: int, kwargs: dict[str, Any]
) -> ActivityLog:
    """The ActivityLog of one partition; a bad row raises naming the partition and the row's
    label in the activities frame."""
    labels = frame["_sf_label"].to_numpy()
    local = frame.drop(columns=["_sf_label"]).reset_index(drop=True)
    try:
        acts = ActivityLog.from_frame(log, local, **kwargs)
    except _core.DataError as err:
        row = getattr(err, "row", None)
        where = "activities"
        if row is not None and 0 <= row < len(labels):
            where += f", row {labels[row]!r}"
        else:
            where += f" of partition {index}"
        new = type(err)(f"{where}: {_ROW_PREFIX.sub('', str(err))}")
        new.row, new.column = row, getattr(err, "column", None)
        new.partition = index  # type: ignore[attr-defined]
        raise new from None
    if len(acts.rejected):
        rejected = acts.rejected.copy()
        rejected.index = pd.Index(labels[rejected["row"].to_numpy()], name="label")
        rejected.insert(0, "partition", index)
        acts._rejected = rejected
    return acts


def _kinds_of(
    log: _LocalEventLog, frame: pd.DataFrame, index: int, kwargs: dict[str, Any]
) -> tuple[list[str], pd.DataFrame | None]:
    acts = _build_activities(log, frame, index, kwargs)
    return list(acts.core.kind_names), acts.rejected if len(acts.rejected) else None


def _action_cells(
    log: _LocalEventLog,
    frame: pd.DataFrame,
    index: int,
    kwargs: dict[str, Any],
    model: FunnelModel,
    landmarks: dict[str, float],
    kinds: list[str],
) -> pd.DataFrame:
    acts = _build_activities(log, frame, index, kwargs)
    coach = Coaching(model, log, acts, 28.0, 180.0)
    return coach._action_cells(landmarks, kinds)


def _sum_cell_parts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return _sum_cells(parts)


def action_effectiveness(
    log: DaskEventLog,
    activities: dd.DataFrame,
    opportunity: str = "opportunity_id",
    time: str = "time",
    kind: str = "kind",
    owner: str | None = None,
    buyer: str | None = None,
    validation: str = "strict",
    *,
    model: FunnelModel | None = None,
    landmark_days: Mapping[str, float] | float | None = None,
    split_every: int = 8,
) -> pd.DataFrame:
    """:meth:`smartfunnel.Coaching.action_effectiveness` on Dask: the same rows (kinds in sorted
    order) as ``sf.coaching(model, log, activities).action_effectiveness(landmark_days)``.

    The activities (a Dask DataFrame with the columns of :meth:`smartfunnel.ActivityLog.from_frame`)
    are moved to the partitions of their opportunities (a join with the log's ids and a shuffle),
    each partition counts its stays at risk at every stage's landmark by owner, kind, exposure and
    duration, and the counts add up in a tree; the client computes the rates, risk ratios and
    q-values from the sums, exactly as locally.

    Parameters
    ----------
    log : DaskEventLog
    activities : dask.dataframe.DataFrame
    opportunity, time, kind, owner, buyer, validation
        As in :meth:`smartfunnel.ActivityLog.from_frame`. With ``validation="lenient"`` the rows
        left out are in ``result.attrs["rejected"]``, with their partition and index label.
    model : FunnelModel, optional
        As for :func:`smartfunnel.coaching`: refitted grouped by owner (on Dask) when it is not;
        default: a fit of the log grouped by owner.
    landmark_days : float or mapping, optional
        Default: each stage's median time in stage.
    """
    if model is None:
        model = fit(log, FitOptions(groups=["owner"]), split_every=split_every)
    else:
        groups = model.options.groups
        if ([groups] if isinstance(groups, str) else list(groups)) != ["owner"]:
            opts = dataclasses.replace(model.options, groups=["owner"], as_of=model.as_of)
            model = fit(log, opts, split_every=split_every)
    parts = log._nonempty()
    if not parts:
        raise _core.DataError("the log has no events: no stays to count")
    landmarks = _landmarks(model, landmark_days)
    # Each activity to the partition of its opportunity (unknown ones go to partition 0, where
    # the activity log reports them as it would locally).
    meta = _delayed(_ids_frame)(parts[0], 0, opportunity).compute().iloc[:0]
    mapping = dd.from_delayed(
        [_delayed(_ids_frame)(p, i, opportunity) for i, p in enumerate(parts)], meta=meta
    )
    if opportunity not in activities.columns:
        raise _core.DataError(
            f"activities: column {opportunity!r} is not in the frame "
            f"(columns: {list(map(str, activities.columns))})"
        )
    acts = activities.map_partitions(_with_labels).merge(mapping, on=opportunity, how="left")
    acts["_sf_partition"] = acts["_sf_partition"].fillna(0).astype("int64")
    n = len(parts)
    acts = acts.set_index("_sf_partition", divisions=[*range(n), n])
    kwargs = dict(
        opportunity=opportunity,
        time=time,
        kind=kind,
        owner=owner,
        buyer=buyer,
        validation=validation,
    )
    # The co-partitioned activity frames are kept on the workers; each pass builds the partition's
    # ActivityLog next to its event log (the compiled activity log does not travel).
    frames = list(dask.persist(*acts.to_delayed()))
    found = dask.compute(
        *[_delayed(_kinds_of)(p, a, i, kwargs) for i, (p, a) in enumerate(zip(parts, frames))]
    )
    kinds = sorted({k for names, _ in found for k in names})
    dmodel = delayed(model, pure=True)
    cells = [
        _delayed(_action_cells)(p, a, i, kwargs, dmodel, landmarks, kinds)
        for i, (p, a) in enumerate(zip(parts, frames))
    ]
    total = _tree(cells, _sum_cell_parts, split_every).compute()
    out = _effectiveness(total, list(log.funnel.stages), kinds, landmarks)
    rejected = [r for _, r in found if r is not None]
    out.attrs["rejected"] = pd.concat(rejected) if rejected else pd.DataFrame()
    return out
