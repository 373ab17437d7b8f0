"""EventLog: the stage history of every opportunity, from pandas frames or columns."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import _convert, _core, _html


@dataclass(frozen=True)
class _ColumnMap:
    opportunity: str
    stage: str
    time: str
    amount: str | None = None
    owner: str | None = None
    close_date: str | None = None
    created: str | None = None
    attributes: tuple[str, ...] = field(default_factory=tuple)


def _columns(frame: pd.DataFrame, cols: _ColumnMap) -> dict[str, Any]:
    needed = [cols.opportunity, cols.stage, cols.time]
    needed += [c for c in (cols.amount, cols.owner, cols.close_date, cols.created) if c is not None]
    needed += list(cols.attributes)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise _convert.data_error(
            f"column {missing[0]!r} is not in the frame (columns: {list(map(str, frame.columns))})",
            None,
            missing[0],
        )
    # Cells that cannot be parsed go to the core with the rows ("unparsed"): strict raises for
    # the first bad row whatever made it bad, lenient rejects every such row and keeps the rest.
    bad: _convert.Problems = []
    opp, opp_names = _convert.ids(frame[cols.opportunity], cols.opportunity, bad, "opportunity")
    stage, stage_names = _convert.codes_and_names(frame[cols.stage], cols.stage, bad, "stage")
    kwargs: dict[str, Any] = dict(
        opportunity=opp,
        opportunity_names=opp_names,
        stage=stage,
        stage_names=stage_names,
        time=_convert.to_seconds(frame[cols.time], cols.time, bad, "time"),
    )
    if cols.amount is not None:
        kwargs["amount"] = _convert.to_amounts(frame[cols.amount], cols.amount, bad, "amount")
    if cols.owner is not None:
        kwargs["owner"], kwargs["owner_names"] = _convert.codes_and_names(
            frame[cols.owner], cols.owner, bad, "owner"
        )
    if cols.close_date is not None:
        kwargs["close_date"] = _convert.to_seconds(
            frame[cols.close_date], cols.close_date, bad, "close_date"
        )
    if cols.created is not None:
        kwargs["created"] = _convert.to_seconds(frame[cols.created], cols.created, bad, "created")
    kwargs["attributes"] = [
        (name, *_convert.codes_and_names(frame[name], name, bad)) for name in cols.attributes
    ]
    kwargs["unparsed"] = bad
    return kwargs


def _changes(changes: pd.DataFrame, cols: _ColumnMap, string_ids: bool) -> dict[str, Any]:
    """The changes table as core columns; NaN / NaT / None mean "not changed in this row"."""
    for required in (cols.opportunity, cols.time):
        if required not in changes.columns:
            raise _convert.data_error(
                f"changes: column {required!r} is not in the frame (columns: {list(map(str, changes.columns))})",
                None,
                f"changes.{required}",
            )
    out: dict[str, Any] = {}
    ids = changes[cols.opportunity]
    if string_ids:
        codes, names = _convert.codes_and_names(ids.astype("string"), cols.opportunity)
        out["opportunity"], out["opportunity_names"] = codes.astype(np.int64), names
    else:
        if not pd.api.types.is_integer_dtype(ids.dtype):
            raise _convert.data_error(
                f"changes: column {cols.opportunity!r} must hold integer ids like the events, got {ids.dtype}",
                None,
                f"changes.{cols.opportunity}",
            )
        out["opportunity"] = ids.to_numpy(dtype=np.int64)
    out["time"] = _convert.to_seconds(changes[cols.time], f"changes.{cols.time}")
    if cols.amount is not None and cols.amount in changes.columns:
        amount = pd.to_numeric(changes[cols.amount], errors="raise").to_numpy(dtype=np.float64)
        out["amount"] = np.nan_to_num(amount, nan=0.0)
        out["amount_given"] = (~np.isnan(amount)).astype(np.uint8)
    if cols.owner is not None and cols.owner in changes.columns:
        codes, names = _convert.codes_and_names(changes[cols.owner], cols.owner)
        out["owner"], out["owner_names"] = codes, names
        out["owner_given"] = (codes >= 0).astype(np.uint8)
    if cols.close_date is not None and cols.close_date in changes.columns:
        out["close_date"] = _convert.to_seconds(
            changes[cols.close_date], f"changes.{cols.close_date}"
        )
    return out


def _user_column(cols: _ColumnMap, column: str | None) -> str | None:
    """The caller's column name for the core's generic one ("stage" -> "StageName")."""
    if column is None:
        return None
    prefix, _, name = column.rpartition(".")
    mapped = {
        "opportunity": cols.opportunity,
        "stage": cols.stage,
        "time": cols.time,
        "amount": cols.amount,
        "owner": cols.owner,
        "close_date": cols.close_date,
        "created": cols.created,
    }.get(name) or name
    return f"{prefix}.{mapped}" if prefix else mapped


def _relabel(err: Exception, cols: _ColumnMap, frame: pd.DataFrame | None) -> Exception:
    """Names the caller's column, and adds the frame's index label when it is not the default."""
    if hasattr(err, "column"):
        err.column = _user_column(cols, err.column)
    return err if frame is None else _with_index_label(err, frame)


def _with_index_label(err: Exception, frame: pd.DataFrame) -> Exception:
    """Adds the frame's index label to a row error when the index is not the default one."""
    row = getattr(err, "row", None)
    if row is None or (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0):
        return err
    if 0 <= row < len(frame):
        new = type(err)(f"{err} (index label {frame.index[row]!r})")
        new.row, new.column = row, getattr(err, "column", None)  # type: ignore[attr-defined]
        return new
    return err


class EventLog:
    """The validated, sorted, interned stage history of a set of opportunities.

    Build one with :meth:`from_frame` (one row per stage entry). Deals may skip stages, move
    backwards and re-enter stages; a deal without a Won or Lost event is open, and its current stay
    is censored at the analysis time, never dropped and never counted as lost.

    Amount, owner and expected close date are kept as time-stamped histories (changes only), so an
    analysis as of a past date sees the values in force then.
    """

    def __init__(
        self, core: _core.EventLog, columns: _ColumnMap, rejected: pd.DataFrame | None = None
    ):
        self._log = core
        self._columns = columns
        self._rejected = rejected

    @classmethod
    def from_frame(
        cls,
        funnel: _core.Funnel,
        frame: pd.DataFrame,
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
        changes: pd.DataFrame | None = None,
    ) -> EventLog:
        """Build a log from a frame with one row per stage event.

        Parameters
        ----------
        funnel : Funnel
        frame : pandas.DataFrame
        opportunity, stage, time : str
            Column names. Ids may be integers or strings; times may be datetime64 (naive taken as
            UTC, tz-aware converted to UTC), ISO 8601 strings or epoch seconds.
        amount, owner, close_date : str, optional
            Columns whose values are in force from each row on (kept as histories of changes).
        created : str, optional
            When each opportunity was created (constant per opportunity). Default: its first event.
        attributes : sequence of str
            Static categorical columns (segment, product, team...), constant per opportunity.
        validation : {"strict", "lenient"}
            strict raises DataError on the first bad row; lenient keeps every valid row and
            returns the bad ones in :attr:`rejected` with reasons.
        after_terminal : {"error", "reopen"}
            What an event after Won/Lost means.
        changes : pandas.DataFrame, optional
            Field changes between stage events (a CRM's field-history table), with the same
            column names: opportunity, time, and any of amount, owner, close_date. A missing
            value means "not changed in this row". At equal times a change wins over an event.

        Raises
        ------
        DataError, UnknownStageError
            Naming the row (0-based position), the column and the value.
        """
        cols = _ColumnMap(
            opportunity, stage, time, amount, owner, close_date, created, tuple(attributes)
        )
        try:
            kwargs = _columns(frame, cols)
            if changes is not None:
                kwargs["changes"] = _changes(changes, cols, kwargs["opportunity_names"] is not None)
            core = _core.EventLog.from_columns(
                funnel, **kwargs, validation=validation, after_terminal=after_terminal
            )
        except _core.DataError as err:
            where = changes if str(getattr(err, "column", "")).startswith("changes.") else frame
            raise _relabel(err, cols, where) from None
        return cls(core, cols, cls._rejected_frame(core, cols, frame, changes))

    @staticmethod
    def _rejected_frame(
        core: _core.EventLog,
        cols: _ColumnMap,
        frame: pd.DataFrame | None,
        changes: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Rejected input rows with `row`, `source`, `rejected_column` and `reason`.

        ``source`` is "events" (a row of the frame), "changes" (a row of the changes table) or
        "existing" (after append: an event or change of the log that the new rows made invalid,
        with a negative row). Without the frame (a log loaded from a file) only those four
        columns remain.
        """
        rep = core.report
        rows = np.asarray(rep["rejected_rows"], dtype=np.int64)
        columns = np.asarray([_user_column(cols, c) for c in rep["rejected_columns"]], dtype=object)
        reasons = np.asarray(rep["rejected_reasons"], dtype=object)
        is_change = np.array([str(c).startswith("changes.") for c in columns], dtype=bool)
        parts = []
        for source, table, select in (
            ("events", frame, ~is_change & (rows >= 0)),
            ("changes", changes, is_change & (rows >= 0)),
            ("existing", None, rows < 0),
        ):
            if table is not None:
                part = table.iloc[rows[select]].copy()
            elif select.any():
                part = pd.DataFrame(index=pd.RangeIndex(int(select.sum())))
            else:
                continue
            part.insert(0, "row", rows[select])
            part.insert(1, "source", source)
            part["rejected_column"] = columns[select]
            part["reason"] = reasons[select]
            parts.append(part)
        if not parts:
            return pd.DataFrame(
                {"row": np.empty(0, np.int64), "source": [], "rejected_column": [], "reason": []}
            )
        return pd.concat(parts) if len(parts) > 1 else parts[0]

    def append(
        self,
        frame: pd.DataFrame,
        validation: str = "strict",
        after_terminal: str = "error",
        changes: pd.DataFrame | None = None,
    ) -> EventLog:
        """A new log with this log's events and the rows of `frame` (same column names).

        Errors and :attr:`rejected` number the rows of `frame` (and of `changes`) from 0.
        """
        try:
            kwargs = _columns(frame, self._columns)
            if changes is not None:
                kwargs["changes"] = _changes(changes, self._columns, bool(self._log.string_ids))
            core = self._log.append(**kwargs, validation=validation, after_terminal=after_terminal)
        except _core.DataError as err:
            where = changes if str(getattr(err, "column", "")).startswith("changes.") else frame
            raise _relabel(err, self._columns, where) from None
        return EventLog(
            core, self._columns, self._rejected_frame(core, self._columns, frame, changes)
        )

    # -- properties ---------------------------------------------------------------------------
    @property
    def funnel(self) -> _core.Funnel:
        return self._log.funnel

    @property
    def n_events(self) -> int:
        return int(self._log.n_events)

    @property
    def n_opportunities(self) -> int:
        return int(self._log.n_opportunities)

    @property
    def first_time(self) -> pd.Timestamp:
        return _convert.to_timestamp(self._log.first_time)

    @property
    def last_time(self) -> pd.Timestamp:
        return _convert.to_timestamp(self._log.last_time)

    @property
    def quality(self) -> dict[str, int]:
        """The data-quality report (rows read and kept, duplicates collapsed, reopenings, rejections)."""
        rep = self._log.report
        return {
            "rows_read": int(rep["rows_read"]),
            "rows_kept": int(rep["rows_kept"]),
            "duplicates_collapsed": int(rep["duplicates_collapsed"]),
            "reopened": int(rep["reopened"]),
            "rejected": len(rep["rejected_rows"]),
        }

    @property
    def rejected(self) -> pd.DataFrame:
        """The rows rejected in lenient mode, as input rows with `row`, `rejected_column` and `reason`.

        After :meth:`append`, rows number the appended frame; an existing event that the new rows
        made invalid has a negative row (-1 is the log's last event).
        """
        assert self._rejected is not None
        return self._rejected

    @property
    def memory_bytes(self) -> int:
        return int(self._log.memory_bytes)

    @property
    def core(self) -> _core.EventLog:
        """The compiled log (for advanced use and the C++-level API)."""
        return self._log

    def save(self, path: str | os.PathLike[str], format: str = "binary") -> None:
        """Save the log to a file, atomically; :func:`smartfunnel.load` reads it back.

        Parameters
        ----------
        path : str or path-like
        format : {"binary", "text", "xml"}
            binary is fastest but stays on one platform; text and xml move between machines.

        Notes
        -----
        The column names given to :meth:`from_frame` travel with it (so :meth:`append` works on
        the loaded log); the rows of :attr:`rejected` keep their reasons but not the input values.
        Pickling uses the same archive (binary), so logs travel to worker processes.
        """
        meta = {"class": "EventLog", "columns": dataclasses.asdict(self._columns)}
        self._log.save(path, format, json.dumps(meta))

    @classmethod
    def _from_archive(cls, core: _core.EventLog, meta: dict[str, Any]) -> EventLog:
        """The wrapper of a loaded log: its column names from the metadata, else the defaults."""
        try:
            given = dict(meta["columns"])
            given["attributes"] = tuple(given.get("attributes", ()))
            cols = _ColumnMap(**given)
        except (KeyError, TypeError, ValueError):
            cols = _ColumnMap(
                "opportunity_id",
                "stage",
                "time",
                amount="amount" if core.has_amounts else None,
                owner="owner" if core.has_owners else None,
                close_date="close_date" if len(core.close_date_history[1]) else None,
                attributes=tuple(str(a[0]) for a in core.attributes),
            )
        return cls(core, cols, cls._rejected_frame(core, cols, None))

    def opportunity_ids(self) -> np.ndarray:
        """Opportunity ids by dense index, as given (int64 array or object array of str)."""
        ids = self._log.ids
        return np.asarray(ids, dtype=object) if self._log.string_ids else np.asarray(ids)

    def to_frame(self) -> pd.DataFrame:
        """The events, sorted by opportunity and time: opportunity_id, stage, time (UTC)."""
        offsets = np.asarray(self._log.offsets)
        counts = np.diff(offsets).astype(np.int64)
        opp = np.repeat(self.opportunity_ids(), counts)
        names = np.asarray(self.funnel.names, dtype=object)
        return pd.DataFrame(
            {
                "opportunity_id": opp,
                "stage": pd.Categorical.from_codes(
                    np.asarray(self._log.stages, dtype=np.int64), pd.Index(names)
                ),
                "time": pd.to_datetime(np.asarray(self._log.times), unit="s", utc=True),
            }
        )

    def __len__(self) -> int:
        return self.n_events

    def __repr__(self) -> str:
        q = self.quality
        span = f", {self.first_time:%Y-%m-%d} .. {self.last_time:%Y-%m-%d}" if self.n_events else ""
        return (
            f"EventLog({self.n_events:,} events, {self.n_opportunities:,} opportunities{span}, "
            f"funnel {self.funnel.name!r}; duplicates collapsed {q['duplicates_collapsed']}, "
            f"rejected {q['rejected']})"
        )

    def _repr_html_(self) -> str:
        span = f", {self.first_time:%Y-%m-%d} .. {self.last_time:%Y-%m-%d}" if self.n_events else ""
        return _html.box(
            "EventLog",
            f"{self.n_events:,} events, {self.n_opportunities:,} opportunities{span}, "
            f"funnel {self.funnel.name!r}",
            _html.fields(self.quality.items()),
        )
