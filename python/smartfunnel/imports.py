"""Imports of CRM exports into event logs, with a report of what the import found.

Every import returns the data-quality information to the caller: rows that were rejected or
changed, events that were inferred, each with its table, row, opportunity id, column, value and
reason (:attr:`Imported.quality`). Nothing is dropped silently. :func:`read` recognises the
format of a set of files from their columns (the ``smartfunnel report`` command uses it).

Snapshot-only exports (one row per opportunity with its current stage and a few dates, like the
public "CRM Sales Opportunities" data) become partial histories. The assumptions are stated here
and every row that cannot be placed is reported, never silently dropped:

- a deal entered each stage whose entry date the export gives, on that date;
- a Won or Lost deal closed on its close date;
- nothing is known of stages the export gives no date for (a deal first seen in a later stage
  simply starts there);
- a row with no usable date at all cannot be placed in time and is reported as undated;
- a missing amount counts as 0 and is reported.
"""

from __future__ import annotations

import contextvars
import dataclasses
import html
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _convert, _core
from .coaching import ActivityLog
from .event_log import EventLog


def from_snapshot(
    funnel: _core.Funnel,
    frame: pd.DataFrame,
    *,
    opportunity: str,
    stage: str,
    entered: Mapping[str, str],
    closed: str,
    amount: str | None = None,
    owner: str | None = None,
    attributes: Sequence[str] = (),
    open_amount: str | None = None,
) -> tuple[EventLog, pd.DataFrame]:
    """Turn a snapshot export into an event log of partial histories.

    Parameters
    ----------
    funnel : Funnel
    frame : DataFrame
        One row per opportunity.
    opportunity, stage : str
        Id and current stage columns.
    entered : mapping
        ``{stage name: column}`` of stage entry dates the export has (e.g.
        ``{"Engaging": "engage_date"}``).
    closed : str
        Close date column (used for Won and Lost rows).
    amount, owner : str, optional
    attributes : sequence of str
    open_amount : str, optional
        The deal's value while it was open, at its stage entries (the amount column is then its
        value at the close). Exports that record what a deal closed at (lost deals at 0) would
        otherwise value a deal replayed as of a past date by its outcome: a look-ahead that
        makes every backtest under-forecast. Missing cells fall back to the amount.

    Returns
    -------
    log : EventLog
        The partial histories.
    report : DataFrame
        The rows that could not be placed or were changed, with the reason.
    """
    for col in [
        opportunity,
        stage,
        closed,
        *entered.values(),
        *(c for c in (amount, owner, open_amount) if c),
        *attributes,
    ]:
        if col not in frame.columns:
            raise _core.DataError(
                f"column {col!r} is not in the snapshot (columns: {list(map(str, frame.columns))})"
            )
    terminal = set(funnel.won) | set(funnel.lost)
    order = {name: i for i, name in enumerate(funnel.stages)}
    rows, notes = [], []
    cur = frame[stage].astype(str).to_numpy()
    close = _snapshot_times(frame[closed])
    dates = {s: _snapshot_times(frame[c]) for s, c in entered.items()}
    amounts = (
        pd.to_numeric(frame[amount], errors="coerce").astype(float)
        if amount
        else pd.Series(0.0, index=frame.index)
    )
    unreadable = frame[amount].notna() & amounts.isna() if amount else amounts.isna()
    while_open = (
        pd.to_numeric(frame[open_amount], errors="coerce").astype(float).to_numpy()
        if open_amount
        else np.full(len(frame), np.nan)
    )
    for i in range(len(frame)):
        events = []
        for s, series in dates.items():
            when = series.iloc[i]
            reached = cur[i] in terminal or (cur[i] in order and order[cur[i]] >= order.get(s, 0))
            if pd.notna(when) and reached:
                events.append((s, when))
        if cur[i] in terminal:
            if pd.notna(close.iloc[i]):
                events.append((cur[i], close.iloc[i]))
            else:
                notes.append(
                    (
                        i,
                        "no close date for a closed deal: its outcome is kept only if a stage is dated",
                    )
                )
        if not events:
            notes.append(
                (i, f"undated: stage {cur[i]!r} without any date, cannot be placed in time")
            )
            continue
        value = amounts.iloc[i]
        if not np.isfinite(value) and unreadable.iloc[i]:
            notes.append((i, f"amount {frame[amount].iloc[i]!r} is not a number: counted as 0"))
            value = 0.0
        elif not np.isfinite(value):
            what = (  # "amount..." (the quality report files it as a changed amount)
                f"amount missing on a {cur[i]} deal: counted as 0 (its outcome is kept, its "
                "value adds nothing to revenue)"
                if cur[i] in terminal
                else f"amount missing on an open deal ({cur[i]}): counted as 0"
            )
            notes.append((i, what))
            value = 0.0
        value_open = while_open[i] if np.isfinite(while_open[i]) else value
        for s, when in events:
            rows.append(
                {
                    "opportunity_id": frame[opportunity].iloc[i],
                    "stage": s,
                    "time": when,
                    "amount": value if s in terminal else value_open,
                    **({"owner": frame[owner].iloc[i]} if owner else {}),
                    **{a: frame[a].iloc[i] for a in attributes},
                }
            )
    events_df = pd.DataFrame(rows)
    log = EventLog.from_frame(
        funnel,
        events_df,
        amount="amount",
        owner="owner" if owner else None,
        attributes=list(attributes),
    )
    report = frame.iloc[[i for i, _ in notes]].copy()
    report.insert(0, "row", [i for i, _ in notes])
    report["reason"] = [why for _, why in notes]
    return log, report


def _snapshot_times(values: pd.Series) -> pd.Series:
    """A snapshot's dates: as pandas reads them, or by the time_format / dayfirst given to
    :func:`read`."""
    given = _time_options.get() or {}
    if given.get("time_format") or given.get("dayfirst"):
        return _parse_times(values)[0]
    return pd.to_datetime(values, utc=True, errors="coerce")


# -- the result of an import and its quality report ----------------------------------------------

UNASSIGNED = "(unassigned)"
"""The owner given to opportunities whose export names none."""

QUALITY_COLUMNS = ["table", "row", "id", "column", "value", "action", "reason"]
"""Columns of :attr:`Imported.quality`: where (table, 0-based row, opportunity id, column), the
offending value as text, what was done (``rejected``, ``changed``, ``added`` or ``note``) and why."""


class _Issues:
    """Accumulates quality records; one per rejected/changed cell or row, or per note."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._chunks: list[pd.DataFrame] = []  # many records at once (add_many, extend)

    def add(
        self,
        table: str,
        row: int | np.integer | None,
        id: Any,
        column: str | None,
        value: Any,
        action: str,
        reason: str,
    ) -> None:
        self._records.append(
            {
                "table": table,
                "row": None if row is None else int(row),
                "id": None if id is None or _isna(id) else str(id),
                "column": column,
                "value": None if value is None or _isna(value) else str(value),
                "action": action,
                "reason": reason,
            }
        )

    def add_many(
        self,
        table: str,
        rows: np.ndarray,
        ids: Any,
        column: str | None,
        values: Any,
        action: str,
        reason: str | Sequence[str] | np.ndarray,
    ) -> None:
        """One record per row of `rows` (positions), with the ids and values of those rows."""
        n = len(rows)
        if not n:
            return
        self._chunks.append(
            pd.DataFrame(
                {
                    "table": table,
                    "row": np.asarray(rows, dtype=np.int64),
                    "id": _texts(ids),
                    "column": column,
                    "value": _texts(values) if values is not None else np.full(n, None),
                    "action": action,
                    "reason": reason if isinstance(reason, str) else np.asarray(reason, object),
                }
            )
        )

    def extend(self, other: pd.DataFrame) -> None:
        self._chunks.append(other[QUALITY_COLUMNS].copy())

    def reasons(self, action: str) -> pd.Series:
        """The reasons of the records with this action."""
        q = self.frame()
        return q.loc[q["action"] == action, "reason"]

    def frame(self) -> pd.DataFrame:
        parts = [pd.DataFrame(self._records, columns=QUALITY_COLUMNS)]
        parts += [c.astype({"row": "Int64"}) for c in self._chunks]
        parts = [p for p in parts if len(p)] or parts[:1]
        out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        out["row"] = out["row"].astype("Int64")
        if len(out):  # by table (first seen first), then row; table-level notes first
            tables = {t: i for i, t in enumerate(dict.fromkeys(out["table"]))}
            key = pd.DataFrame({"t": out["table"].map(tables), "r": out["row"].fillna(-1)})
            out = out.iloc[np.lexsort((key["r"].to_numpy(), key["t"].to_numpy()))]
            out = out.reset_index(drop=True)
        for c in ("table", "id", "column", "value", "action", "reason"):
            out[c] = out[c].astype(object)
        return out


def _texts(values: Any) -> np.ndarray:
    """Cells as text for the quality report (None where missing)."""
    arr = (
        values.to_numpy(dtype=object)
        if isinstance(values, pd.Series)
        else np.asarray(values, object)
    )
    if arr.ndim != 1:  # cells holding sequences: one by one
        return np.array([None if v is None or _isna(v) else str(v) for v in values], dtype=object)
    missing = np.asarray(pd.isna(arr), dtype=bool)
    out = pd.Series(arr, dtype=object).astype(str).to_numpy(dtype=object)
    out[missing] = None
    return out


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@dataclass
class Imported:
    """An imported CRM export: the event log, optional activities, and what the import found.

    Attributes
    ----------
    log : EventLog
        The stage history.
    quality : pandas.DataFrame
        One row per issue (columns :data:`QUALITY_COLUMNS`): the table and 0-based row it comes
        from, the opportunity id, the column and the value, the ``action`` taken (``rejected``:
        not used; ``changed``: used with the change the reason states; ``added``: an event the
        import inferred; ``note``: information, e.g. an inferred stage order) and the reason.
    source : str
        The recognised format, human readable.
    activities : ActivityLog or None
    as_of : pandas.Timestamp or None
        The end of the data when the export tells it (open deals are censored there); pass it to
        :func:`smartfunnel.fit` as ``as_of``.
    stages : pandas.DataFrame or None
        The stage metadata the funnel was built from (order, outcome, probability, where from).
    """

    log: EventLog
    quality: pd.DataFrame
    source: str
    activities: ActivityLog | None = None
    as_of: pd.Timestamp | None = None
    stages: pd.DataFrame | None = None
    files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def funnel(self) -> _core.Funnel:
        return self.log.funnel

    @property
    def counts(self) -> pd.DataFrame:
        """Issues per table and action (a row per pair, column ``n``)."""
        q = self.quality
        if q.empty:
            return pd.DataFrame({"table": [], "action": [], "n": []}).astype({"n": np.int64})
        return q.groupby(["table", "action"], sort=True).size().rename("n").reset_index()

    def _action_counts(self) -> dict[str, int]:
        vc = self.quality["action"].value_counts()
        return {a: int(vc.get(a, 0)) for a in ("rejected", "changed", "added", "note")}

    def __repr__(self) -> str:
        c = self._action_counts()
        acts = f", {len(self.activities):,} activities" if self.activities is not None else ""
        return (
            f"Imported({self.source}: {self.log.n_opportunities:,} opportunities, "
            f"{self.log.n_events:,} events{acts}; quality: {c['rejected']} rejected, "
            f"{c['changed']} changed, {c['added']} added, {c['note']} notes)"
        )

    def _repr_html_(self) -> str:
        c = self._action_counts()
        acts = f", {len(self.activities):,} activities" if self.activities is not None else ""
        as_of = f"; data end {self.as_of:%Y-%m-%d}" if self.as_of is not None else ""
        counts = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:,}</td></tr>" for k, v in c.items())
        shown = self.quality.head(20)
        table = shown.to_html(index=False, na_rep="", escape=True) if len(shown) else ""
        more = (
            f"<p>… {len(self.quality) - len(shown):,} more in <code>.quality</code></p>"
            if len(self.quality) > len(shown)
            else ""
        )
        return (
            f"<div><strong>Imported</strong> — {html.escape(self.source)}: "
            f"{self.log.n_opportunities:,} opportunities, {self.log.n_events:,} events{acts}"
            f"{as_of}; funnel <code>{html.escape(' → '.join(self.funnel.stages))}</code>"
            f"<table><caption>quality</caption>{counts}</table>{table}{more}</div>"
        )


# -- shared helpers ------------------------------------------------------------------------------


# Set by read(progress=...): told of each CSV file before and after it is parsed.
_reading: contextvars.ContextVar[Callable[[Path, bool], None] | None] = contextvars.ContextVar(
    "smartfunnel_imports_reading", default=None
)


# Set by read(sep=..., decimal=...): how its CSV files are parsed (None: the pandas default).
_csv_options: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar(
    "smartfunnel_imports_csv", default=None
)


def _read_csv(
    path: str | os.PathLike[str], *, sep: str | None = None, decimal: str | None = None
) -> pd.DataFrame:
    hook = _reading.get()
    if hook is not None:
        hook(Path(path), False)
    given = _csv_options.get() or {}
    given = given.get(Path(path), given)  # read() sniffs each file
    sep, decimal = sep or given.get("sep"), decimal or given.get("decimal")
    try:
        frame = _read_csv_text(path, sep or ",", decimal or ".")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise _convert.data_error(f"{str(path)!r}: {_unreadable_reason(Path(path), e)}") from None
    if hook is not None:
        hook(Path(path), True)
    return frame


# Id columns are read as text: "007", "07" and "7" are three deals, and an 18-digit id survives a
# blank cell (pandas would read the column as float64 and round it).
_ID_COLUMN = re.compile(r"(?:^|[^A-Za-z])(?:id|ID|Id)$|[a-z0-9](?:Id|ID)$")
_ID_NAMES = {
    "opportunity",
    "deal",
    "owner",
    "account",
    "sales_agent",
    "sales_agent_id",
    "record id",
    "hubspot_owner_id",
    "mql_id",
    "seller_id",
    "sdr_id",
    "sr_id",
}


# What pandas reads as missing by default (its STR_NA_VALUES), kept for every column but ids.
_NA_TEXT = [
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"),
    *("<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
]


def _is_id_column(name: str) -> bool:
    """Whether a CSV column holds ids (read as text, never as numbers)."""
    return bool(_ID_COLUMN.search(name.strip())) or name.strip().lower() in _ID_NAMES


def _read_csv_text(path: str | os.PathLike[str], sep: str, decimal: str) -> pd.DataFrame:
    encoding = _encoding(path)
    header = pd.read_csv(path, nrows=0, sep=sep, encoding=encoding)
    ids = [c for c in header.columns if _is_id_column(str(c))]
    # Id cells are missing only when empty: "NA", "null" or "None" can be an id.
    missing: dict[Any, Any] = {c: [""] if c in ids else _NA_TEXT for c in header.columns}
    csv: dict[str, Any] = {
        "sep": sep,
        "encoding": encoding,
        "keep_default_na": False,
        "na_values": missing,
    }
    frame: pd.DataFrame = pd.read_csv(path, low_memory=False, decimal=decimal, **csv)
    # Id columns that read as numbers are read again as text ("007" and "7" are two deals; an
    # 18-digit id is not rounded through float64). Reading them as text up front costs twice as
    # long on text ids, which need nothing.
    numeric = [c for c in ids if not pd.api.types.is_string_dtype(frame[c].dtype)]
    if numeric:
        again = pd.read_csv(path, usecols=numeric, dtype={c: "str" for c in numeric}, **csv)
        for c in numeric:
            frame[c] = again[c]
    return frame


_SEPARATORS = (",", ";", "\t", "|")
_COMMA_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_DOT_NUMBER = re.compile(r"^[+-]?\d*\.\d+$")


def sniff_csv(path: str | os.PathLike[str], sep: str | None = None) -> tuple[str, str]:
    """The separator and decimal mark of a CSV file, from its first 64 kB (what :func:`read`
    uses when it is given neither; with `sep`, only the decimal mark is sniffed).

    The separator is the one of , ; tab | the header line has most often outside quotes (a comma
    when none). The decimal mark is a comma only with another separator, when numbers such as
    28.000,00 or 3,5 appear and none such as 3.5.
    """
    try:
        with open(path, encoding=_encoding(path) or "utf-8", errors="replace", newline="") as fh:
            head = fh.read(65536)
    except OSError:
        return ",", "."
    lines = head.splitlines()
    if not lines:
        return ",", "."
    if sep is None:  # else given: only the decimal mark is sniffed
        header = re.sub(r'"[^"]*"', "", lines[0])
        counts = {c: header.count(c) for c in _SEPARATORS}
        sep = max(_SEPARATORS, key=lambda c: (counts[c], c == ","))
        sep = sep if counts[sep] else ","
    decimal = "."
    if sep != ",":
        cells = [c.strip().strip('"') for line in lines[1:200] for c in line.split(sep)]
        if any(_COMMA_NUMBER.match(c) for c in cells) and not any(
            _DOT_NUMBER.match(c) for c in cells
        ):
            decimal = ","
    return sep, decimal


def _amounts(raw: pd.Series, column: str, decimal: str | None, table: str) -> pd.Series:
    """Amount cells as numbers (NaN where missing or not a number). Text with a decimal comma is
    read as such with `decimal` = ","; without it, a column whose failing cells all read with a
    decimal comma raises a DataError (they would become missing, and revenue 0)."""
    if decimal not in (None, ".", ","):
        raise ValueError(f"decimal must be '.' or ',', got {decimal!r}")
    if pd.api.types.is_bool_dtype(raw.dtype):
        raise _convert.data_error(
            f"{table}: {column} is a True/False column, expected amounts of money", None, column
        )
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw
    flags = raw.map(lambda v: isinstance(v, (bool, np.bool_)))
    if flags.any():
        raw = raw.mask(flags.to_numpy(dtype=bool))
    text = raw.astype("string").str.strip()
    if decimal == ",":
        text = text.str.replace(r"[.\s\u00a0']", "", regex=True).str.replace(",", ".", regex=False)
    elif decimal == ".":  # given: commas are thousands separators
        text = text.str.replace(r"[,\s\u00a0']", "", regex=True)
    try:
        num = pd.to_numeric(text, errors="coerce")
    except TypeError:
        num = pd.Series(np.nan, index=raw.index)
    failed = text[raw.notna().to_numpy() & num.isna().to_numpy()].dropna()
    if decimal is None and len(failed) and failed.str.match(_COMMA_NUMBER.pattern).all():
        n = len(failed)
        raise _convert.data_error(
            f"{table}: {n:,} {column} value{'s' if n > 1 else ''} such as {failed.iloc[0]!r} "
            "are numbers only with a comma: pass decimal=',' where the comma is the decimal mark "
            "(28.000,00), decimal='.' where it separates thousands (5,000); --decimal on the "
            "command line",
            int(np.flatnonzero(text.index.isin(failed.index[:1]))[0]),
            column,
        )
    return num


def _frame(data: pd.DataFrame | str | os.PathLike[str], what: str) -> pd.DataFrame:
    """A DataFrame as given, or read from a CSV path (all columns kept as read)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, os.PathLike)):
        return _read_csv(data)
    raise TypeError(f"{what} must be a DataFrame or a CSV path, got {type(data).__name__}")


def _require(frame: pd.DataFrame, columns: Sequence[str | None], what: str) -> None:
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise _convert.data_error(
            f"{what}: column {missing[0]!r} is missing (columns: {list(map(str, frame.columns))})",
            None,
            missing[0],
        )


def _parse_times(
    values: pd.Series, time_format: str | None = None, dayfirst: bool = False
) -> tuple[pd.Series, np.ndarray]:
    """Times as UTC datetimes (NaT where missing or bad) and the mask of present-but-bad values.

    datetime64 columns are taken as they are (naive = UTC); numbers are epoch seconds; text is
    parsed as ISO 8601 unless `time_format` (a strptime format, or "mixed") is given. `dayfirst`
    alone: the day-first format of the first value that is not ISO 8601 (see _dayfirst_format).
    Without either, the ones :func:`read` was given apply.
    """
    if time_format is None and not dayfirst:
        given = _time_options.get() or {}
        time_format, dayfirst = given.get("time_format"), bool(given.get("dayfirst"))
    s = values
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC"), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.dt.tz_localize("UTC"), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce").astype(np.float64)
        ok = np.isfinite(num.to_numpy()) & (np.abs(num.to_numpy()) < 1e11)
        parsed = pd.to_datetime(num.where(ok), unit="s", utc=True)
        return parsed, (~ok) & num.notna().to_numpy()
    present = s.notna().to_numpy() & (s.astype("string").str.strip() != "").fillna(False).to_numpy()
    text = s.where(present)
    if time_format is None and dayfirst:
        time_format = _dayfirst_format(text)
    parsed = pd.to_datetime(
        text, utc=True, errors="coerce", format=time_format or "ISO8601", dayfirst=dayfirst
    )
    return parsed, present & parsed.isna().to_numpy()


_TIME_HINT = "expected ISO 8601 text such as 2024-03-01 or 2024-03-01T09:30:00Z; pass time_format="

# Set by read(time_format=..., dayfirst=...): how times are parsed where a reader is given none.
_time_options: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "smartfunnel_imports_times", default=None
)

_ISO_START = re.compile(r"^\s*[+-]?\d{4}-\d{1,2}")


def _ordered_format(value: str, dayfirst: bool) -> str | None:
    """The strptime format of `value` with the day before the month (or after, not `dayfirst`),
    whichever order the value itself allows (so an impossible day or month then fails)."""
    from pandas.tseries.api import guess_datetime_format

    with warnings.catch_warnings():  # "Parsing dates in %m/%d/%Y format when dayfirst=True..."
        warnings.simplefilter("ignore", UserWarning)
        fmt = guess_datetime_format(value, dayfirst=dayfirst)
    if fmt is None or "%m" not in fmt or "%d" not in fmt:
        return fmt
    if (fmt.index("%d") < fmt.index("%m")) != dayfirst:
        fmt = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    return fmt


def _dayfirst_format(text: pd.Series) -> str:
    """The day-first format of a text column: ISO 8601 when every value is, else the format of the
    first value that is not, with the day first ("mixed" when no format fits it)."""
    values = text.dropna().astype(str).str.strip()
    other = values[~values.str.match(_ISO_START)]
    if other.empty:
        return "ISO8601"
    return _ordered_format(str(other.iloc[0]), dayfirst=True) or "mixed"


def _impossible(value: str, fmt: str) -> str:
    """'month 25 is impossible' when `value`, read by `fmt`, has a day or month out of range."""
    directives = re.findall(r"%([a-zA-Z])", fmt)
    numbers = re.findall(r"\d+", value)
    if len(directives) != len(numbers):
        return ""
    for d, n in zip(directives, numbers):
        if d == "m" and not 1 <= int(n) <= 12:
            return f"month {n} is impossible"
        if d == "d" and not 1 <= int(n) <= 31:
            return f"day {n} is impossible"
    return ""


def _time_trouble(
    values: pd.Series,
    bad: np.ndarray,
    time_format: str | None,
    dayfirst: bool,
    column: str,
    table: str,
) -> str | None:
    """The message for times that fail as a whole, not row by row: all of them, or every one that
    fails reads in the other day/month order (a US file read day-first, or the reverse)."""
    if not bad.any() or not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return None
    if time_format is None and not dayfirst:
        given = _time_options.get() or {}
        time_format, dayfirst = given.get("time_format"), bool(given.get("dayfirst"))
    text = values.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy(dtype=bool)
    used = time_format or (_dayfirst_format(text[present]) if dayfirst else "ISO8601")
    pos = int(np.flatnonzero(bad)[0])
    example = str(text.iloc[pos])
    alt = None
    for order in (False, True):
        fmt = _ordered_format(example, dayfirst=order)
        if fmt is None or fmt == used:
            continue
        parsed = pd.to_datetime(text[present], format=fmt, errors="coerce", utc=True)
        if parsed.notna().all():
            alt = fmt
            break
    n_bad, n_present = int(bad.sum()), int(present.sum())
    if alt is None and n_bad < n_present:
        return None
    why = _impossible(example, used) if used not in ("ISO8601", "mixed") else ""
    how = "ISO 8601 dates" if used == "ISO8601" else f"dates in the format {used!r}"
    if alt is not None:
        kind = "month-first (US)" if alt.index("%m") < alt.index("%d") else "day-first"
        fix = (
            f"every time reads as a {kind} date ({alt!r}): pass time_format={alt!r} "
            f"(--time-format '{alt}' on the command line)"
        )
    else:
        fix = (
            "pass time_format= a strptime format such as '%d/%m/%Y' (--time-format), or "
            "dayfirst=True (--dayfirst) for day-first dates"
        )
    return (
        f"{table}, column {column!r}: {n_bad:,} of {n_present:,} times ({n_bad / n_present:.0%}) "
        f"are not {how}, e.g. row {pos} {example!r}{': ' + why if why else ''}; {fix}"
    )


def _won_lost(name: str) -> str | None:
    """'won', 'lost' or None from a stage name's wording (Closed Won, closedlost, Disqualified...)."""
    norm = re.sub(r"[^a-z]", "", str(name).lower())
    if norm.endswith("won") or norm in {"win", "signed", "booked"}:
        return "won"
    if norm.endswith("lost") or norm in {"lose", "disqualified", "unqualified", "dead", "churned"}:
        return "lost"
    return None


def infer_funnel(
    frame: pd.DataFrame,
    *,
    opportunity: str = "opportunity_id",
    stage: str = "stage",
    time: str = "time",
    name: str = "inferred",
) -> _core.Funnel:
    """A funnel inferred from a long table of stage events.

    Terminal stages are recognised by their wording (names ending in "won" — Won, Closed Won,
    closedwon — or Signed/Booked are won; names ending in "lost", Disqualified, Dead, Churned are
    lost). The open stages are ordered by how often each is entered before each other one within
    the same opportunity (a Copeland ranking of the pairwise precedences; ties by first-seen
    order). Give the funnel explicitly whenever you know it: a stage every deal skips, or a
    pipeline where deals move backwards often, can be ordered differently from the process.

    Raises
    ------
    DataError
        When no stage name reads as won (the funnel needs an outcome).
    """
    _require(frame, [opportunity, stage, time], "infer_funnel")
    times, _ = _parse_times(frame[time])
    o_codes = pd.factorize(frame[opportunity])[0]
    s_codes, s_names = pd.factorize(frame[stage].astype("string"))
    t_utc = times.dt.tz_convert(None).to_numpy()  # datetime64, not an object array of Timestamps
    df = pd.DataFrame({"o": o_codes, "c": s_codes, "t": t_utc})
    df = df[(df["o"] >= 0) & (df["c"] >= 0) & df["t"].notna()]
    present = np.unique(df["c"].to_numpy())  # in order of first appearance: codes are
    names = [str(s_names[c]) for c in present]
    df["s"] = pd.Categorical.from_codes(
        df["c"].to_numpy(dtype=np.int64), categories=pd.Index([str(x) for x in s_names])
    )
    won = [n for n in names if _won_lost(n) == "won"]
    lost = [n for n in names if _won_lost(n) == "lost"]
    if not won:
        raise _convert.data_error(
            f"cannot infer the funnel: no stage reads as won among {names} "
            "(give the funnel, e.g. Funnel([...], won='Closed Won', lost='Closed Lost'))",
            None,
            stage,
        )
    open_ = [n for n in names if _won_lost(n) is None]
    if not open_:
        raise _convert.data_error(
            f"cannot infer the funnel: every stage among {names} reads as won or lost, none is "
            "open (give the funnel, e.g. Funnel(['Discovery', ...], won=..., lost=...))",
            None,
            stage,
        )
    # First entry of each open stage per opportunity, as a dense (opportunity x stage) table,
    # then for each pair of stages how many opportunities entered one before the other.
    col = {n: j for j, n in enumerate(open_)}
    stage_col = np.array([col.get(str(n), -1) for n in s_names], dtype=np.int64)
    j = stage_col[df["c"].to_numpy()]
    sel = j >= 0
    o_idx = df["o"].to_numpy()[sel]
    t = df["t"].to_numpy().astype("datetime64[s]").astype(np.int64)[sel]
    n_opp = int(o_codes.max()) + 1 if len(o_codes) else 0
    first_t = np.full((n_opp, len(open_)), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_t, (o_idx, j[sel]), t)
    seen = first_t != np.iinfo(np.int64).max
    score = {}
    for a, n in enumerate(open_):
        ta, both = first_t[:, a : a + 1], seen & seen[:, a : a + 1]
        # pairs where a was entered before the other stage, minus those where after it
        score[n] = int(((ta < first_t) & both).sum()) - int(((first_t < ta) & both).sum())
    order = {n: i for i, n in enumerate(open_)}
    stages = sorted(open_, key=lambda n: (-score[n], order[n]))
    return _core.Funnel(stages, won=won, lost=lost or ["Lost"], name=name)


def _clean_stages(
    names: pd.Series,
    stage_map: Mapping[str, str] | None,
    issues: _Issues,
    table: str,
    column: str,
) -> pd.Series:
    """Stage names trimmed of surrounding spaces, then renamed by `stage_map`; each a note.

    A trailing space is no new stage: without the trim "Demo " and "Demo" would be two stages.
    An empty name after the trim is missing.
    """
    raw = names.astype("string")
    text = raw.str.strip()
    text = text.mask(text == "")
    trimmed = (raw.notna() & (text != raw).fillna(True)).to_numpy(dtype=bool)
    if trimmed.any():
        pairs = list(dict.fromkeys(zip(raw[trimmed].tolist(), text[trimmed].tolist())))
        shown = ", ".join(
            f"{a!r} → {b!r}" if b is not pd.NA else f"{a!r} → missing" for a, b in pairs[:3]
        )
        issues.add(
            table,
            None,
            None,
            column,
            None,
            "note",
            f"{int(trimmed.sum()):,} stage name{'s' if trimmed.sum() != 1 else ''} trimmed of "
            f"surrounding spaces ({shown}"
            f"{', ...' if len(pairs) > 3 else ''}): the same stage, not a new one",
        )
    if stage_map:
        counts = text.value_counts()
        for old, new in stage_map.items():
            n = int(counts.get(old, 0))
            issues.add(
                table,
                None,
                None,
                column,
                old,
                "note",
                f"stage map: {old!r} renamed {new!r} ({n:,} row{'s' if n != 1 else ''})"
                if n
                else f"stage map: {old!r} is no stage in the data (stages: "
                f"{sorted(map(str, counts.index))[:12]}): nothing renamed",
            )
        text = text.replace(dict(stage_map)).astype("string")  # vectorised, exact names
    return text


# -- generic long format -------------------------------------------------------------------------


def from_long(
    frame: pd.DataFrame | str | os.PathLike[str],
    funnel: _core.Funnel | None = None,
    *,
    opportunity: str = "opportunity_id",
    stage: str = "stage",
    time: str = "time",
    amount: str | None = None,
    owner: str | None = None,
    close_date: str | None = None,
    created: str | None = None,
    attributes: Sequence[str] = (),
    stage_map: Mapping[str, str] | None = None,
    time_format: str | None = None,
    dayfirst: bool = False,
    errors: str = "report",
    after_terminal: str = "error",
    table: str = "events",
    decimal: str | None = None,
) -> Imported:
    """Import a long table, one row per stage change, with a quality report.

    A thin layer over :meth:`EventLog.from_frame` adding what an import needs: dates parsed with
    a clear message, stage names mapped, the funnel inferred when not given, and every row that
    cannot be used reported in :attr:`Imported.quality` instead of stopping at the first one.

    Parameters
    ----------
    frame : DataFrame or path-like
        The table, or the path of a CSV file.
    funnel : Funnel, optional
        Default: inferred by :func:`infer_funnel` (reported as a note).
    opportunity, stage, time : str
        Column names. Times: datetime64, ISO 8601 text, or epoch seconds.
    amount, owner, close_date, created : str, optional
        As in :meth:`EventLog.from_frame`. A bad amount or date cell is treated as missing and
        reported (``changed``); the row is kept.
    attributes : sequence of str
        Static columns (segment, product...).
    stage_map : mapping, optional
        ``{name in the file: name in the funnel}``; names not in it are kept as they are. Stage
        names are trimmed of surrounding spaces first ("Demo " is "Demo"); the trim and each
        renaming are notes.
    time_format : str, optional
        A strptime format (``"%d/%m/%Y"``) or ``"mixed"``, for times that are not ISO 8601.
    dayfirst : bool
        Read 01/02/2024 as 1 February: alone, the format is that of the first time that is not
        ISO 8601, day before month; with ``time_format="mixed"``, each time is guessed. Times
        that fail as a whole (all of them, or every failing one reads in the other day/month
        order) raise a DataError naming the column, the share that failed, an example with the
        impossible day or month, and the format to pass.
    errors : {"report", "raise"}
        report (default) keeps every usable row and reports the others; raise stops with a
        DataError at the first unusable row, naming the row, the column, the id and the value.
    after_terminal : {"error", "reopen"}
        What an event after Won/Lost means (see :meth:`EventLog.from_frame`): "error" (default)
        rejects it, reported; "reopen" reopens the deal.
    table : str
        The table name used in the quality report.
    decimal : {".", ","}, optional
        The decimal mark of amounts given as text: "," reads ``28.000,00`` as 28000 (dots and
        spaces separate thousands), "." reads ``5,000.50`` as 5000.5 (commas separate
        thousands). Default: plain numbers only, and amounts that are numbers only with a comma
        raise a DataError saying which to pass, rather than becoming missing (and revenue 0).

    Returns
    -------
    Imported
        ``source`` is "long format".
    """
    if errors not in ("report", "raise"):
        raise ValueError(f"errors must be 'report' or 'raise', got {errors!r}")
    frame = _frame(frame, "frame")
    _require(
        frame, [opportunity, stage, time, amount, owner, close_date, created, *attributes], table
    )
    issues = _Issues()
    ids = frame[opportunity]

    def ids_at(rows: np.ndarray) -> np.ndarray:
        return ids.iloc[rows].to_numpy(dtype=object)

    def bad(mask: np.ndarray, column: str, reason: str, action: str = "rejected") -> None:
        rows = np.flatnonzero(mask)
        if len(rows) and errors == "raise" and action == "rejected":
            r = int(rows[0])
            raise _convert.data_error(
                f"row {r}: {column} value {frame[column].iloc[r]!r} of opportunity "
                f"{str(ids.iloc[r])!r}: {reason}",
                r,
                column,
            )
        cells = frame[column].iloc[rows].to_numpy(dtype=object)
        issues.add_many(table, rows, ids_at(rows), column, cells, action, reason)

    keep = np.ones(len(frame), dtype=bool)
    no_id = ids.isna().to_numpy()
    bad(no_id, opportunity, "no opportunity id: the row cannot be attributed")
    keep &= ~no_id
    stages = _clean_stages(frame[stage], stage_map, issues, table, stage)
    no_stage = stages.isna().to_numpy() & keep
    bad(no_stage, stage, "no stage name")
    keep &= ~no_stage
    times, bad_time = _parse_times(frame[time], time_format, dayfirst)
    trouble = _time_trouble(frame[time], bad_time & keep, time_format, dayfirst, time, table)
    if trouble:
        raise _convert.data_error(trouble, None, time)
    if time_format is None and dayfirst and not pd.api.types.is_numeric_dtype(frame[time].dtype):
        chosen = _dayfirst_format(frame[time].astype("string")[keep])
        issues.add(
            table,
            None,
            None,
            time,
            None,
            "note",
            f"times read day-first as {chosen!r} "
            "(the format of the first time that is not ISO 8601)",
        )
    bad(bad_time & keep, time, f"not a time ({_TIME_HINT}'%d/%m/%Y' or 'mixed')")
    keep &= ~bad_time
    no_time = times.isna().to_numpy() & keep
    bad(no_time, time, "no time: the event cannot be placed")
    keep &= ~no_time

    events = pd.DataFrame(
        {
            "opportunity_id": ids.array,  # text stays Arrow-backed: interned in C++
            "stage": stages.array,
            "time": times,
            "_row": np.arange(len(frame)),
        },
        index=frame.index,
    )
    cols: dict[str, Any] = {}
    if amount is not None:
        raw = frame[amount]
        num = _amounts(raw, amount, decimal, table)
        bad_amount = raw.notna().to_numpy() & num.isna().to_numpy() & keep
        bad(bad_amount, amount, "amount is not a number: treated as missing", "changed")
        num = num.astype(np.float64).where(keep)
        # A missing amount means "not changed": the opportunity's amount in force is kept (the
        # nearest earlier row's, else the nearest later one's); none at all counts as 0.
        values = num.to_numpy(dtype=np.float64).copy()
        values[~keep] = np.nan
        gaps = np.isnan(values) & keep
        if gaps.any():  # only the opportunities with a gap are filled
            codes = pd.factorize(ids)[0]
            some = np.isin(codes, np.unique(codes[gaps])) & keep
            t_utc = times.dt.tz_convert(None).to_numpy()[some]
            by_time = pd.DataFrame({"o": codes[some], "t": t_utc, "a": values[some]})
            by_time.index = np.flatnonzero(some)
            by_time = by_time.sort_values(["t"], kind="stable")
            # Grouped ffill then bfill (cythonised; a per-group lambda took 97% of an import).
            forward = by_time.groupby("o", sort=False)["a"].ffill()
            filled = forward.groupby(by_time["o"].to_numpy(), sort=False).bfill()
            values[by_time.index.to_numpy()] = filled.to_numpy()
        full = pd.Series(values)
        n_filled = int((num.isna().to_numpy() & full.notna().to_numpy() & keep).sum())
        if n_filled:
            issues.add(
                table,
                None,
                None,
                amount,
                None,
                "note",
                f"{n_filled} rows without an amount keep the opportunity's amount in "
                "force (the nearest earlier row's, else the next one's)",
            )
        none = np.flatnonzero(full.isna().to_numpy() & keep)
        issues.add_many(
            table,
            none,
            ids_at(none),
            amount,
            raw.iloc[none].to_numpy(dtype=object),
            "changed",
            "the opportunity has no amount in any row: counted as 0",
        )
        events["amount"] = full.fillna(0.0).to_numpy()
        cols["amount"] = "amount"
    for key, col in (("close_date", close_date), ("created", created)):
        if col is not None:
            parsed, bad_t = _parse_times(frame[col], time_format, dayfirst)
            bad(bad_t & keep, col, f"not a time ({_TIME_HINT}): treated as missing", "changed")
            events[key] = parsed
            cols[key] = key
    if created is not None:
        # The core wants one creation time per opportunity, not after its first event.
        first = events["time"].where(keep).groupby(events["opportunity_id"]).transform("min")
        given = events["created"].groupby(events["opportunity_id"]).transform("min")
        late = (given > first).to_numpy() & keep
        rows = np.flatnonzero(late)
        issues.add_many(
            table,
            rows,
            ids_at(rows),
            created,
            frame[created].iloc[rows].to_numpy(dtype=object),
            "changed",
            "created after the opportunity's first event: creation taken as the first event",
        )
        events["created"] = given.where(~(given > first), first)
    if owner is not None:
        events["owner"] = frame[owner].array
        cols["owner"] = "owner"
    for a in attributes:
        events[a] = frame[a].array
    events = events[keep]
    if funnel is None and not keep.any() and len(frame):  # nothing to infer the funnel from
        why = issues.reasons("rejected")
        counts = "; ".join(f"{n:,} {r}" for r, n in why.value_counts().items())
        raise _convert.data_error(f"{table}: none of the {len(frame):,} rows is usable ({counts})")
    if funnel is None and not len(frame):
        raise _convert.data_error(
            f"{table}: no rows (only a header: {list(map(str, frame.columns))})"
        )

    if funnel is None:
        try:
            funnel = infer_funnel(events, opportunity="opportunity_id", stage="stage", time="time")
        except _core.DataError as e:  # name the file: a folder holds several
            raise _convert.data_error(f"{table}: {e}", None, stage) from None
        issues.add(
            table,
            None,
            None,
            stage,
            None,
            "note",
            f"funnel inferred from the data: {' → '.join(funnel.stages)}; won {funnel.won}, "
            f"lost {funnel.lost} (pass a Funnel to fix it)",
        )
    log = EventLog.from_frame(
        funnel,
        events.reset_index(drop=True),
        opportunity="opportunity_id",
        stage="stage",
        time="time",
        amount=cols.get("amount"),
        owner=cols.get("owner"),
        close_date=cols.get("close_date"),
        created=cols.get("created"),
        attributes=list(attributes),
        validation="lenient",
        after_terminal=after_terminal,
    )
    _user = {"opportunity_id": opportunity, "stage": stage, "time": time, "amount": amount}
    _user.update({"owner": owner, "close_date": close_date, "created": created})
    rej = log.rejected
    if len(rej):
        orig = events["_row"].to_numpy()[rej["row"].to_numpy(dtype=np.int64)]
        if errors == "raise":
            first_row = int(orig[0])
            col = _user.get(str(rej["rejected_column"].iloc[0])) or str(
                rej["rejected_column"].iloc[0]
            )
            raise _convert.data_error(f"row {first_row}: {rej['reason'].iloc[0]}", first_row, col)
        rej_cols = rej["rejected_column"].astype(str).to_numpy(dtype=object)
        reasons = rej["reason"].astype(str).to_numpy(dtype=object)
        for rc in dict.fromkeys(rej_cols):  # one chunk per column of the caller's frame
            at = rej_cols == rc
            c = _user.get(str(rc)) or str(rc)
            rows = orig[at]
            cells = frame[c].iloc[rows].to_numpy(dtype=object) if c in frame.columns else None
            said = reasons[at]
            if c != rc:  # the reason names the caller's column, not the internal one
                said = np.array([r.replace(f"{rc} value", f"{c} value", 1) for r in said], object)
            issues.add_many(table, rows, ids_at(rows), c, cells, "rejected", said)
    return Imported(log=log, quality=issues.frame(), source="long format")


# -- snapshots: Maven "CRM Sales Opportunities" and the sparklesquad crm-dataset -----------------


def _snapshot_quality(
    frame: pd.DataFrame,
    report: pd.DataFrame,
    id_col: str,
    table: str,
    amount: str | None,
    closed: str,
) -> pd.DataFrame:
    issues = _Issues()
    for r, why in zip(report["row"], report["reason"]):
        r = int(r)
        if why.startswith("amount"):
            col, action = amount, "changed"
        elif why.startswith("no close date"):
            col, action = closed, "changed"
        else:
            col, action = None, "rejected"
        issues.add(
            table, r, frame[id_col].iloc[r], col, frame[col].iloc[r] if col else None, action, why
        )
    return issues.frame()


def _name_key(name: Any) -> str:
    """Product names compared without spaces or case ("GTXPro" is "GTX Pro")."""
    return re.sub(r"\s+", "", str(name)).lower()


_OPEN_VALUE = "__smartfunnel_open_value"


def _fill_list_prices(
    frame: pd.DataFrame,
    products: pd.DataFrame | str | os.PathLike[str] | None,
    *,
    id_col: str,
    stage_col: str,
    product_col: str,
    amount_col: str,
    terminal: set[str],
    table: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Open deals without an amount take their product's list price, each one reported.

    Closed deals are left alone (a won deal's value is a fact the export should have); a product
    the price list does not name keeps the deal's amount missing, reported by the snapshot import.
    """
    issues = _Issues()
    if products is None:
        return frame, issues.frame()
    prices = _frame(products, "products")
    name = _pick([str(c) for c in prices.columns], ("product",))
    price = _pick([str(c) for c in prices.columns], ("sales_price", "list_price", "price"))
    if name is None or price is None:
        raise _convert.data_error(
            f"the price list needs product and sales_price columns "
            f"(columns: {list(map(str, prices.columns))})"
        )
    values = pd.to_numeric(prices[price], errors="coerce")
    lookup = {_name_key(n): float(v) for n, v in zip(prices[name], values) if pd.notna(v)}
    amounts = pd.to_numeric(frame[amount_col], errors="coerce")
    open_ = ~frame[stage_col].astype(str).isin(terminal).to_numpy()
    listed = frame[product_col].map(lambda n: lookup.get(_name_key(n), np.nan))
    frame = frame.copy()
    # Every deal's value while open: its list price (a closed deal's close value is its outcome).
    frame[_OPEN_VALUE] = listed.astype(float).to_numpy()
    fill = open_ & amounts.isna().to_numpy() & listed.notna().to_numpy()
    if not fill.any():
        return frame, issues.frame()
    frame[amount_col] = amounts.where(~fill, listed)
    for r in np.flatnonzero(fill):
        issues.add(
            table,
            int(r),
            frame[id_col].iloc[r],
            amount_col,
            None,
            "changed",
            f"open deal without an amount: the list price of {frame[product_col].iloc[r]} "
            f"({listed.iloc[r]:,.2f}, from the price list) is its amount",
        )
    return frame, issues.frame()


def _with_prices(priced: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """The snapshot's issues and the priced rows, but for rows the snapshot rejected anyway."""
    rejected = set(quality.loc[quality["action"] == "rejected", "row"])
    issues = _Issues()
    issues.extend(priced[~priced["row"].isin(rejected)])
    issues.extend(quality)
    return issues.frame()


@dataclasses.dataclass(frozen=True)
class _SnapshotColumns:
    opportunity: str
    stage: str
    entered: Mapping[str, str]
    closed: str
    amount: str
    owner: str
    product: str
    attributes: tuple[str, ...]


def _snapshot_dataset(
    frame: pd.DataFrame,
    funnel: _core.Funnel,
    products: pd.DataFrame | str | os.PathLike[str] | None,
    cols: _SnapshotColumns,
    *,
    table: str,
    source: str,
    teams: pd.DataFrame | str | os.PathLike[str] | None = None,
) -> Imported:
    """A public snapshot dataset: open deals priced from the price list, the agents' teams
    joined, then from_snapshot, with the data's end (the last date in the file) as as_of."""
    team_quality = None
    if teams is not None:
        teams_table = Path(teams).name if isinstance(teams, (str, os.PathLike)) else "teams"
        frame, names, team_quality = _join_teams(
            frame,
            teams,
            agent=cols.owner,
            id_col=cols.opportunity,
            table=table,
            teams_table=teams_table,
        )
        cols = dataclasses.replace(cols, attributes=(*cols.attributes, *names))
    frame, priced = _fill_list_prices(
        frame,
        products,
        id_col=cols.opportunity,
        stage_col=cols.stage,
        product_col=cols.product,
        amount_col=cols.amount,
        terminal={*funnel.won, *funnel.lost},
        table=table,
    )
    log, report = from_snapshot(
        funnel,
        frame,
        opportunity=cols.opportunity,
        stage=cols.stage,
        entered=cols.entered,
        closed=cols.closed,
        amount=cols.amount,
        owner=cols.owner,
        attributes=cols.attributes,
        open_amount=_OPEN_VALUE if _OPEN_VALUE in frame.columns else None,
    )
    if _OPEN_VALUE in frame.columns:
        closed = frame[cols.stage].astype(str).isin({*funnel.won, *funnel.lost})
        valued = int((closed & frame[_OPEN_VALUE].notna()).sum())
        if valued:
            note = _Issues()
            note.add(
                table,
                None,
                None,
                cols.amount,
                None,
                "note",
                f"{valued:,} closed deals are valued at their product's list price while open and "
                f"at their {cols.amount} at the close (the export records what a deal closed at, "
                "lost deals at 0: replayed as of a past date, a deal is not valued by its outcome)",
            )
            priced = pd.concat([note.frame(), priced], ignore_index=True)
    quality = _with_prices(
        priced,
        _snapshot_quality(frame, report, cols.opportunity, table, cols.amount, cols.closed),
    )
    if team_quality is not None:
        both = _Issues()
        both.extend(quality)
        both.extend(team_quality)
        quality = both.frame()
    dates = [*cols.entered.values(), cols.closed]
    end = pd.concat([_snapshot_times(frame[c]) for c in dates]).max()
    return Imported(log=log, quality=quality, source=source, as_of=end)


_TEAM_COLUMNS = ("manager", "regional_office")


def _join_teams(
    frame: pd.DataFrame,
    teams: pd.DataFrame | str | os.PathLike[str],
    *,
    agent: str,
    id_col: str,
    table: str,
    teams_table: str,
) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """The snapshot with each agent's team columns (the dataset's sales_teams: sales_agent,
    manager, regional_office) as attributes, the attribute names, and the notes; an agent the
    team table does not list gets "(no team)", each such row reported."""
    issues = _Issues()
    team = _frame(teams, "teams")
    cols = {str(c).lower(): c for c in team.columns}
    who = cols.get("sales_agent")
    extra = [cols[c] for c in _TEAM_COLUMNS if c in cols]
    if who is None or not extra:
        raise _convert.data_error(
            f"{teams_table}: expected columns sales_agent, manager, regional_office "
            f"(columns: {list(map(str, team.columns))})"
        )
    dup = team[who].duplicated(keep="first")
    for r in np.flatnonzero(dup.to_numpy()).tolist():
        issues.add(
            teams_table, r, None, str(who), team[who].iloc[r], "rejected", "agent listed twice"
        )
    lookup = team[~dup].set_index(who)
    out = frame.copy()
    names: list[str] = []
    for c in extra:
        name = str(c)
        if name in out.columns:
            name = f"{name}_team"
        values = out[agent].map(lookup[c])
        missing = values.isna().to_numpy() & out[agent].notna().to_numpy()
        for r in np.flatnonzero(missing).tolist():
            why = f"agent not in {teams_table}: {name} is '(no team)'"
            issues.add(table, r, out[id_col].iloc[r], agent, out[agent].iloc[r], "changed", why)
        out[name] = values.astype("string").fillna("(no team)").astype(object)
        names.append(name)
    issues.add(
        teams_table,
        None,
        None,
        None,
        None,
        "note",
        f"{', '.join(names)} of each deal's {agent} joined from {teams_table} as attributes "
        f"({len(lookup):,} agents; fit or report by them with groups=, --groups)",
    )
    return out, names, issues.frame()


def from_maven(
    pipeline: pd.DataFrame | str | os.PathLike[str],
    funnel: _core.Funnel | None = None,
    *,
    products: pd.DataFrame | str | os.PathLike[str] | None = None,
    teams: pd.DataFrame | str | os.PathLike[str] | None = None,
) -> Imported:
    """The Maven Analytics "CRM Sales Opportunities" snapshot (``sales_pipeline.csv``).

    Columns: opportunity_id, sales_agent, product, account, deal_stage (Prospecting, Engaging,
    Won, Lost), engage_date, close_date, close_value. Through :func:`from_snapshot` with the
    funnel Prospecting → Engaging → Won / Lost: a deal entered Engaging on its engage_date and
    closed on its close_date; Prospecting rows have no date at all and are reported (rejected);
    a missing close_value (open deals) counts as 0 and is reported. Owner: sales_agent;
    attributes: product, account. ``as_of`` is the last date in the file.

    With ``products`` (the dataset's ``products.csv``: product, sales_price), an open deal without
    a close_value takes its product's list price as its amount (names compared without spaces or
    case, so ``GTXPro`` is ``GTX Pro``), each such row reported as changed: the forecast then
    values the open pipeline at list prices instead of 0. :func:`read` passes the file when it is
    in the folder.

    With ``teams`` (the dataset's ``sales_teams.csv``: sales_agent, manager, regional_office),
    each deal's agent's manager and regional office become attributes ``manager`` and
    ``regional_office`` (fit or report by them with ``groups=``); an agent the table does not
    list gets "(no team)", reported as changed. :func:`read` passes the file when it is in the
    folder.
    """
    funnel = funnel or _core.Funnel(
        ["Prospecting", "Engaging"], won="Won", lost="Lost", name="maven"
    )
    return _snapshot_dataset(
        _frame(pipeline, "pipeline"),
        funnel,
        products,
        _SnapshotColumns(
            opportunity="opportunity_id",
            stage="deal_stage",
            entered={"Engaging": "engage_date"},
            closed="close_date",
            amount="close_value",
            owner="sales_agent",
            product="product",
            attributes=("product", "account"),
        ),
        table="sales_pipeline",
        teams=teams,
        source="Maven CRM Sales Opportunities snapshot (sales_pipeline)",
    )


def from_sparklesquad(
    pipeline: pd.DataFrame | str | os.PathLike[str],
    funnel: _core.Funnel | None = None,
    *,
    products: pd.DataFrame | str | os.PathLike[str] | None = None,
    teams: pd.DataFrame | str | os.PathLike[str] | None = None,
) -> Imported:
    """The data.world sparklesquad "crm-dataset" snapshot (``sales-pipeline.csv``).

    Columns: Account, Opportunity_ID, Sales_Agent, Deal_Stage (In_Progress, Won, Lost),
    Product, Close_Date, Close_Value, Created_On. Through :func:`from_snapshot` with the funnel
    In_Progress → Won / Lost: every deal entered In_Progress when created (Created_On) and a
    closed deal closed on its Close_Date; open deals are censored at the data's end (the last
    date in the file, ``as_of``). A missing Close_Value (open deals, and a few Won rows) counts
    as 0 and is reported. Owner: Sales_Agent; attributes: Product, Account.

    ``products`` (the dataset's ``products.csv``: Product, Sales_Price) values open deals without
    a Close_Value at their product's list price, and ``teams`` (``sales-teams.csv``:
    Sales_Agent, Manager, Regional_Office) adds the agent's team as attributes, as in
    :func:`from_maven`.
    """
    funnel = funnel or _core.Funnel(["In_Progress"], won="Won", lost="Lost", name="sparklesquad")
    return _snapshot_dataset(
        _frame(pipeline, "pipeline"),
        funnel,
        products,
        _SnapshotColumns(
            opportunity="Opportunity_ID",
            stage="Deal_Stage",
            entered={funnel.stages[0]: "Created_On"},
            closed="Close_Date",
            amount="Close_Value",
            owner="Sales_Agent",
            product="Product",
            attributes=("Product", "Account"),
        ),
        table="sales-pipeline",
        teams=teams,
        source="sparklesquad crm-dataset snapshot (sales-pipeline)",
    )


# -- Salesforce: Opportunity + OpportunityHistory ------------------------------------------------


def _truthy(values: pd.Series) -> np.ndarray:
    """Salesforce booleans: 1/0, true/false, True/False."""
    text = values.astype("string").str.strip().str.lower()
    return text.isin(["1", "true", "1.0", "yes"]).fillna(False).to_numpy(dtype=bool)


_TRUE_TEXT = ("1", "true", "1.0", "yes", "t", "y")
_FALSE_TEXT = ("0", "false", "0.0", "no", "f", "n")


def _clean_typed(
    frame: pd.DataFrame,
    table: str,
    id_column: str,
    numbers: Sequence[str],
    booleans: Sequence[str],
    issues: _Issues,
) -> pd.DataFrame:
    """The frame with each present cell of its number and boolean columns that cannot be read
    (``Amount="abc"``, ``IsWon="maybe"``) made missing, each one reported as changed."""
    out = frame
    for col, ok_text, expected in [
        *((c, None, "not a number") for c in numbers),
        *((c, _TRUE_TEXT + _FALSE_TEXT, "not true/false (1/0, yes/no)") for c in booleans),
    ]:
        if col not in frame.columns:
            continue
        raw = frame[col]
        if pd.api.types.is_bool_dtype(raw.dtype) or (
            ok_text is None and pd.api.types.is_numeric_dtype(raw.dtype)
        ):
            continue
        if ok_text is None:
            try:
                bad = raw.notna().to_numpy() & pd.to_numeric(raw, errors="coerce").isna().to_numpy()
            except TypeError:  # unhashable or nested cells
                bad = (
                    raw.notna().to_numpy()
                    & ~raw.map(lambda v: isinstance(v, (int, float))).to_numpy()
                )
        else:
            text = raw.astype("string").str.strip().str.lower()
            bad = (raw.notna() & ~text.isin(ok_text).fillna(False)).to_numpy(dtype=bool)
        if not bad.any():
            continue
        if out is frame:
            out = frame.copy()
        how = "treated as missing" if ok_text is None else "treated as false"
        for r in np.flatnonzero(bad).tolist():
            issues.add(
                table,
                r,
                frame[id_column].iloc[r],
                col,
                raw.iloc[r],
                "changed",
                f"{expected}: {how}",
            )
        out[col] = raw.where(~bad, None)
    return out


def _salesforce_stages(opps: pd.DataFrame, history: pd.DataFrame, issues: _Issues) -> pd.DataFrame:
    """Stage metadata from the exports: order, outcome and probability, and where each came from."""
    info: dict[str, dict[str, Any]] = {}
    for name, g in opps.groupby("StageName", sort=False):
        won = _truthy(g["IsWon"]) if "IsWon" in g else np.zeros(len(g), bool)
        closed = _truthy(g["IsClosed"]) if "IsClosed" in g else won
        if (won.any() and not won.all()) or (closed.any() and not closed.all()):
            issues.add(
                "Opportunity",
                None,
                None,
                "IsWon",
                None,
                "note",
                f"stage {name!r} is won/closed on some rows and not others: the majority is used",
            )
        order = (
            pd.to_numeric(g["StageSortOrder"], errors="coerce") if "StageSortOrder" in g else None
        )
        info[str(name)] = {
            "order": float(order.median()) if order is not None and order.notna().any() else np.nan,
            "probability": float(pd.to_numeric(g["Probability"], errors="coerce").median())
            if "Probability" in g
            else np.nan,
            "outcome": "won" if won.mean() > 0.5 else "lost" if closed.mean() > 0.5 else "open",
            "from": "Opportunity (StageSortOrder, IsWon, IsClosed)",
        }
    for name, g in history.groupby("StageName", sort=False):
        if str(name) in info:
            continue
        prob = (
            float(pd.to_numeric(g["Probability"], errors="coerce").median())
            if "Probability" in g
            else np.nan
        )
        fc = (
            g["ForecastCategory"].mode() if "ForecastCategory" in g else pd.Series([], dtype=object)
        )
        fc_name = str(fc.iloc[0]) if len(fc) else ""
        worded = _won_lost(str(name))
        outcome = (
            "won"
            if fc_name == "Closed"
            else "lost"
            if fc_name == "Omitted" and prob == 0
            else worded or "open"
        )
        info[str(name)] = {
            "order": np.nan,
            "probability": prob,
            "outcome": outcome,
            "from": "OpportunityHistory (ForecastCategory, Probability, name)",
        }
        issues.add(
            "OpportunityHistory",
            None,
            None,
            "StageName",
            name,
            "note",
            f"stage {name!r} is no opportunity's current stage: taken as {outcome}, "
            + (
                "placed by its probability (no StageSortOrder)"
                if np.isfinite(prob)
                else "placed after the ordered stages (no StageSortOrder, no Probability)"
            ),
        )
    if not info:
        raise _convert.data_error(
            "Salesforce export: no usable StageName in Opportunity or OpportunityHistory",
            None,
            "StageName",
        )
    table = pd.DataFrame.from_dict(info, orient="index")
    table.index.name = "stage"
    open_ = table[table["outcome"] == "open"]
    known = open_[open_["order"].notna()].sort_values(["order", "probability"])
    ordered: list[Any] = list(known.index)
    for sname, row in open_[open_["order"].isna()].sort_values("probability").iterrows():
        probs = [table.loc[n, "probability"] for n in ordered]
        at = (
            sum(1 for p in probs if p <= row["probability"])
            if np.isfinite(row["probability"])
            else len(ordered)
        )
        ordered.insert(at, str(sname))
    terminal = table[table["outcome"] != "open"].sort_values(
        ["order", "probability"], na_position="last"
    )
    table = pd.concat([table.loc[ordered], terminal])
    table.insert(0, "position", np.arange(len(table)))
    return table.reset_index()


def from_salesforce(
    history: pd.DataFrame | str | os.PathLike[str],
    opportunities: pd.DataFrame | str | os.PathLike[str],
    funnel: _core.Funnel | None = None,
    *,
    stage_map: Mapping[str, str] | None = None,
    close_at: str = "close_date",
    owner: str | None = "OwnerId",
    attributes: Sequence[str] | None = None,
    after_terminal: str = "reopen",
) -> Imported:
    """Import a Salesforce ``OpportunityHistory`` export with its ``Opportunity`` export.

    Parameters
    ----------
    history : DataFrame or path-like
        OpportunityHistory: OpportunityId, CreatedDate (when the row was written, i.e. when the
        stage was entered or the field changed), StageName; optional Amount, CloseDate,
        Probability, ForecastCategory, IsDeleted, Id.
    opportunities : DataFrame or path-like
        Opportunity: Id, StageName, CreatedDate; optional StageSortOrder, Probability, IsWon,
        IsClosed, Amount, CloseDate, OwnerId, LastStageChangeDate, LastModifiedDate,
        SystemModstamp, IsDeleted and attribute columns.
    funnel : Funnel, optional
        Default: built from the export. Open stages are ordered by StageSortOrder; a stage that
        is no opportunity's current stage (so has no sort order) is placed by its Probability;
        won/lost come from IsWon/IsClosed, else from the ForecastCategory (Closed = won,
        Omitted with probability 0 = lost), else from the name. :attr:`Imported.stages` shows
        the result and its sources.
    stage_map : mapping, optional
        ``{Salesforce stage name: funnel name}`` applied to both exports.
    close_at : {"close_date", "history"}
        When a closed deal closes. "close_date" (default): on the Opportunity's CloseDate (the
        date Salesforce reports its revenue in), unless that day is before the deal's previous
        stage entry or creation, or after the export (a stale or backdated CloseDate): then at
        the history row that closed it, reported as changed. "history": always at the history
        row (when the rep moved the deal).
    owner : str or None
        The Opportunity column of the owner (OwnerId; the history has no owner).
    attributes : sequence of str, optional
        Opportunity columns kept as static attributes. Default: Type and LeadSource when present.
    after_terminal : {"reopen", "error"}
        A stage event after Won/Lost: "reopen" (default) reopens the deal, "error" rejects the
        event (reported).

    Returns
    -------
    Imported
        With :attr:`~Imported.stages` and ``as_of`` = the export's end (the latest
        LastModifiedDate / SystemModstamp / history time).

    Notes
    -----
    Rules, all reported in :attr:`Imported.quality`:

    - A history row starts a stage event when its StageName differs from the opportunity's
      previous row (rows ordered by CreatedDate, then Id); other rows are field changes (Amount,
      CloseDate), kept as the amount and close-date histories. A missing Amount means "not
      changed".
    - When the history does not end in the opportunity's current stage (history tracking
      turned on late, or purged), or there is no history, the current stage is added (action
      ``added``): a closed deal on its CloseDate (``close_at="close_date"``), an open one on
      its LastStageChangeDate, else (no history at all) its CreatedDate, else its
      LastModifiedDate; never before the last history row.
    - History before the opportunity's CreatedDate is kept and creation moved to the first
      history row (``changed``). History rows of unknown or deleted opportunities, deleted
      rows, and rows without a usable time or stage are ``rejected``.
    - A deal moved out of a closed stage is reopened (``after_terminal="reopen"``, the default;
      ``"error"`` rejects the stage events after Won/Lost, each one reported).
    """
    if close_at not in ("close_date", "history"):
        raise ValueError(f"close_at must be 'close_date' or 'history', got {close_at!r}")
    hist, raw = _frame(history, "history"), _frame(opportunities, "opportunities")
    _require(hist, ["OpportunityId", "StageName", "CreatedDate"], "OpportunityHistory")
    _require(raw, ["Id", "StageName", "CreatedDate"], "Opportunity")
    if attributes is None:
        attributes = [a for a in ("Type", "LeadSource") if a in raw.columns]
    owner = owner if owner is None or owner in raw.columns or owner != "OwnerId" else None
    _require(raw, [owner, *attributes], "Opportunity")
    issues = _Issues()
    # Cells of typed columns that cannot be read are missing, each one reported.
    numbers = ("Amount", "Probability", "ExpectedRevenue", "StageSortOrder")
    raw = _clean_typed(
        raw, "Opportunity", "Id", numbers, ("IsWon", "IsClosed", "IsDeleted"), issues
    )
    hist = _clean_typed(
        hist, "OpportunityHistory", "OpportunityId", numbers, ("IsDeleted",), issues
    )

    def rename(names: pd.Series, where: str = "Opportunity") -> pd.Series:
        # Trimmed in both tables; the map's notes once, on the history (it has every stage).
        clean = _clean_stages(
            names, stage_map if where != "Opportunity" else None, issues, where, "StageName"
        )
        if stage_map and where == "Opportunity":
            clean = clean.map(lambda v: stage_map.get(v, v) if isinstance(v, str) else v)
        return clean.astype(object).where(clean.notna(), None)

    # Opportunities.
    ok = np.ones(len(raw), dtype=bool)
    ids = raw["Id"]
    for mask, col, why in (
        (ids.isna().to_numpy(), "Id", "no Id"),
        (
            _truthy(raw["IsDeleted"]) if "IsDeleted" in raw else np.zeros(len(raw), bool),
            "IsDeleted",
            "deleted record: the opportunity and its history are not imported",
        ),
        (ids.duplicated().to_numpy(), "Id", "duplicate Id: the first row is used"),
        (
            raw["StageName"].isna().to_numpy(),
            "StageName",
            "no StageName: the current stage is unknown",
        ),
    ):
        for r in np.flatnonzero(mask & ok).tolist():
            issues.add("Opportunity", int(r), ids.iloc[r], col, raw[col].iloc[r], "rejected", why)
        ok &= ~mask
    deleted_ids = set(ids[~ok & ids.notna().to_numpy()]) - set(ids[ok])
    opp = raw[ok].copy()
    opp["_row"] = np.flatnonzero(ok)
    opp["StageName"] = rename(opp["StageName"])
    parsed: dict[str, pd.Series] = {}
    for col in (
        "CreatedDate",
        "CloseDate",
        "LastStageChangeDate",
        "LastModifiedDate",
        "SystemModstamp",
    ):
        if col not in opp:
            parsed[col] = pd.Series(pd.NaT, index=opp.index, dtype="datetime64[s, UTC]")
            continue
        parsed[col], bad_t = _parse_times(opp[col])
        for r in np.flatnonzero(bad_t).tolist():
            issues.add(
                "Opportunity",
                int(opp["_row"].iloc[r]),
                opp["Id"].iloc[r],
                col,
                opp[col].iloc[r],
                "changed",
                f"not a time ({_TIME_HINT}): treated as missing",
            )
    opp = opp.set_index("Id", drop=False)
    for col, series in parsed.items():
        opp["_" + col] = series.array  # tz-aware (to_numpy of an all-missing column is naive)

    # History rows.
    keep = np.ones(len(hist), dtype=bool)
    hid = hist["OpportunityId"]
    times, bad_time = _parse_times(hist["CreatedDate"])
    known = hid.isin(opp.index).to_numpy()
    for mask, col, why in (
        (hid.isna().to_numpy(), "OpportunityId", "no OpportunityId"),
        (
            _truthy(hist["IsDeleted"]) if "IsDeleted" in hist else np.zeros(len(hist), bool),
            "IsDeleted",
            "deleted history row",
        ),
        (
            hid.isin(deleted_ids).to_numpy(),
            "OpportunityId",
            "its opportunity is deleted or rejected",
        ),
        (~known, "OpportunityId", "opportunity not in the Opportunity export"),
        (bad_time, "CreatedDate", f"not a time ({_TIME_HINT})"),
        (times.isna().to_numpy(), "CreatedDate", "no CreatedDate: the row cannot be placed"),
        (hist["StageName"].isna().to_numpy(), "StageName", "no StageName"),
    ):
        for r in np.flatnonzero(mask & keep).tolist():
            issues.add(
                "OpportunityHistory", int(r), hid.iloc[r], col, hist[col].iloc[r], "rejected", why
            )
        keep &= ~mask
    h = pd.DataFrame(
        {
            "opportunity_id": hid.to_numpy(),
            "stage": rename(hist["StageName"], "OpportunityHistory").to_numpy(dtype=object),
            "time": times.to_numpy(),
            "amount": pd.to_numeric(hist["Amount"], errors="coerce").to_numpy(dtype=np.float64)
            if "Amount" in hist
            else np.nan,
            "close_date": _parse_times(hist["CloseDate"])[0].to_numpy()
            if "CloseDate" in hist
            else pd.NaT,
            "_key": hist["Id"].astype(str).to_numpy()
            if "Id" in hist
            else np.arange(len(hist)).astype(str),
            "_table": "OpportunityHistory",
            "_row": np.arange(len(hist)),
        }
    )[keep]
    h = h.sort_values(["opportunity_id", "time", "_key"], kind="stable")
    same_opp = h["opportunity_id"].eq(h["opportunity_id"].shift())
    is_event = ~(same_opp & h["stage"].eq(h["stage"].shift())).to_numpy()

    stage_notes = _Issues()
    stages_table = _salesforce_stages(
        opp.assign(StageName=opp["StageName"]),
        pd.DataFrame(
            {
                "StageName": h["stage"].to_numpy(),
                **(
                    {
                        "Probability": pd.to_numeric(
                            hist["Probability"], errors="coerce"
                        ).to_numpy()[h["_row"].to_numpy()]
                    }
                    if "Probability" in hist
                    else {}
                ),
                **(
                    {"ForecastCategory": hist["ForecastCategory"].to_numpy()[h["_row"].to_numpy()]}
                    if "ForecastCategory" in hist
                    else {}
                ),
            }
        ),
        stage_notes,
    )
    if funnel is None:
        issues.extend(stage_notes.frame())
        kinds = stages_table.set_index("stage")["outcome"]
        funnel = _core.Funnel(
            [s for s in stages_table["stage"] if kinds[s] == "open"],
            won=[s for s in stages_table["stage"] if kinds[s] == "won"] or ["Closed Won"],
            lost=[s for s in stages_table["stage"] if kinds[s] == "lost"] or ["Closed Lost"],
            name="salesforce",
        )
    terminal = set(funnel.won) | set(funnel.lost)

    events = h[is_event].copy()
    changes = h[~is_event][["opportunity_id", "time", "amount", "close_date"]]
    data_end = pd.concat(
        [
            pd.Series(h["time"]),
            opp["_LastModifiedDate"],
            opp["_SystemModstamp"],
            opp["_CreatedDate"],
        ]
    ).max()

    # The current stage where the history does not end in it.
    last = events.groupby("opportunity_id", sort=False).tail(1).set_index("opportunity_id")
    added: list[dict[str, Any]] = []
    for key, o in opp.iterrows():
        oid: Any = key
        current = o["StageName"]
        if oid in last.index and last.loc[oid, "stage"] == current:
            continue
        base = last.loc[oid, "time"] if oid in last.index else o["_CreatedDate"]
        closed = current in terminal
        order = (
            ("CloseDate", "LastStageChangeDate", "LastModifiedDate")
            if closed and close_at == "close_date"
            else ("LastStageChangeDate", "LastModifiedDate", "CloseDate")
            if closed
            else ("LastStageChangeDate", "LastModifiedDate", "SystemModstamp")
            if oid in last.index
            else ("LastStageChangeDate", "CreatedDate")
        )
        source = next((c for c in order if pd.notna(o["_" + c])), None)
        when = o["_" + source] if source else base
        if pd.isna(when):
            issues.add(
                "Opportunity",
                int(o["_row"]),
                oid,
                "StageName",
                current,
                "rejected",
                "no history and no usable date: the opportunity cannot be placed in time",
            )
            continue
        note = f"at its {source}" if source else "at its creation"
        if source and pd.notna(base) and when < base:
            when, note = (
                base,
                f"at the last history row ({source} {o['_' + source]:%Y-%m-%d} is earlier)",
            )
        what = (
            "no history rows"
            if oid not in last.index
            else f"the history ends in {last.loc[oid, 'stage']!r}"
        )
        issues.add(
            "Opportunity",
            int(o["_row"]),
            oid,
            "StageName",
            current,
            "added",
            f"current stage added ({what}) {note}",
        )
        added.append(
            {
                "opportunity_id": oid,
                "stage": current,
                "time": when,
                "amount": pd.to_numeric(pd.Series([o.get("Amount")]), errors="coerce").iloc[0],
                "close_date": o["_CloseDate"],
                "_key": "",
                "_table": "Opportunity",
                "_row": int(o["_row"]),
            }
        )
    if added:
        events = pd.concat([events, pd.DataFrame(added)], ignore_index=True)
    events = events.sort_values(["opportunity_id", "time", "_key"], kind="stable").reset_index(
        drop=True
    )

    # Closing time of the final close.
    if close_at == "close_date":
        prev = events.groupby("opportunity_id")["time"].shift()
        created = events["opportunity_id"].map(opp["_CreatedDate"])
        lower = prev.where(prev.notna(), created)
        is_last = ~events["opportunity_id"].duplicated(keep="last")
        for i in np.flatnonzero(
            (
                events["stage"].isin(terminal)
                & is_last
                & (events["_table"] == "OpportunityHistory")
            ).to_numpy()
        ):
            e = events.iloc[i]
            o = opp.loc[e["opportunity_id"]]
            cd = o["_CloseDate"]
            if pd.isna(cd) or o["StageName"] != e["stage"]:
                continue
            low = lower.iloc[i]
            if (pd.notna(low) and cd.normalize() < low.normalize()) or cd > data_end:
                why = (
                    f"CloseDate {cd:%Y-%m-%d} is before the deal's previous stage entry or creation ({low:%Y-%m-%d})"
                    if cd <= data_end
                    else f"CloseDate {cd:%Y-%m-%d} is after the export's end ({data_end:%Y-%m-%d})"
                )
                issues.add(
                    "Opportunity",
                    int(o["_row"]),
                    e["opportunity_id"],
                    "CloseDate",
                    o.get("CloseDate"),
                    "changed",
                    f"{why}: closed at the history row that closed it ({e['time']:%Y-%m-%d %H:%M})",
                )
                continue
            events.loc[events.index[int(i)], "time"] = max(cd, low) if pd.notna(low) else cd
        events = events.sort_values(["opportunity_id", "time", "_key"], kind="stable").reset_index(
            drop=True
        )

    # Creation: the Opportunity's CreatedDate, or the first event when the history starts earlier.
    first = events.groupby("opportunity_id")["time"].min()
    created = opp["_CreatedDate"].reindex(first.index)
    early = h[h["time"].to_numpy() < h["opportunity_id"].map(opp["_CreatedDate"]).to_numpy()]
    for _, er in early.iterrows():
        issues.add(
            "OpportunityHistory",
            int(er["_row"]),
            er["opportunity_id"],
            "CreatedDate",
            hist["CreatedDate"].iloc[int(er["_row"])],
            "changed",
            f"history row precedes the opportunity's CreatedDate "
            f"({opp.loc[er['opportunity_id'], '_CreatedDate']:%Y-%m-%d %H:%M}): "
            "the row is kept and creation taken as the first history row",
        )
    # Both as UTC-aware times of one unit (an all-missing column, or one the parser gave in
    # microseconds, would not compare with the history's times).
    first = pd.to_datetime(first, utc=True).dt.as_unit("s")
    created = pd.to_datetime(created, utc=True).dt.as_unit("s")
    created = created.where(created.notna() & (created <= first), first)
    if not len(events):  # nothing usable: every row is in the quality report
        raise _convert.data_error(
            "Salesforce export: no opportunity can be imported (every row is rejected: "
            + "; ".join(f"{n:,} {r}" for r, n in issues.reasons("rejected").value_counts().items())
            + ")"
        )
    events["created"] = events["opportunity_id"].map(created)

    # Amounts: a missing one means "not changed"; the Opportunity's, else 0, when none is known.
    events["amount"] = events.groupby("opportunity_id")["amount"].transform(
        lambda a: a.ffill().bfill()
    )
    fallback = (
        events["opportunity_id"].map(pd.to_numeric(opp["Amount"], errors="coerce"))
        if "Amount" in opp
        else np.nan
    )
    events["amount"] = events["amount"].fillna(fallback)
    for oid in events.loc[events["amount"].isna(), "opportunity_id"].unique():
        issues.add(
            "Opportunity",
            int(opp.loc[oid, "_row"]),
            oid,
            "Amount",
            None,
            "changed",
            "no amount in the history or the Opportunity: counted as 0",
        )
    events["amount"] = events["amount"].fillna(0.0)
    if owner:
        events["owner"] = events["opportunity_id"].map(opp[owner])
    for a in attributes:
        events[a] = events["opportunity_id"].map(opp[a])
    log = EventLog.from_frame(
        funnel,
        events,
        amount="amount",
        owner="owner" if owner else None,
        close_date="close_date",
        created="created",
        attributes=list(attributes),
        validation="lenient",
        after_terminal=after_terminal,
        changes=changes.reset_index(drop=True),
    )
    rej = log.rejected
    for r, src, col, why in zip(rej["row"], rej["source"], rej["rejected_column"], rej["reason"]):
        where: str = "OpportunityHistory"
        at: int | None = None
        oid = None
        column, value = str(col), None
        if src == "events":
            e = events.iloc[int(r)]
            where, at, oid = str(e["_table"]), int(e["_row"]), e["opportunity_id"]
            column = {"stage": "StageName", "time": "CreatedDate"}.get(column, column)
            table = hist if where == "OpportunityHistory" else raw
            value = table[column].iloc[at] if column in table else None
        issues.add(where, at, oid, column, value, "rejected", str(why))
    return Imported(
        log=log,
        quality=issues.frame(),
        source="Salesforce Opportunity + OpportunityHistory",
        as_of=data_end,
        stages=stages_table,
    )


def _owner_names(
    opportunities: pd.DataFrame,
    users: pd.DataFrame | str | os.PathLike[str],
    *,
    owner: str = "OwnerId",
    table: str = "User",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Opportunity export with each OwnerId replaced by the user's Name (a Salesforce
    ``User`` export: Id, Name), and the notes: how many owners were named, and each id the
    User export does not have (kept as the id)."""
    issues = _Issues()
    people = _frame(users, "users")
    _require(people, ["Id", "Name"], table)
    ids = people["Id"].astype("string").str.strip()
    names = people["Name"].astype("string").str.strip()
    known = pd.Series(names.to_numpy(), index=ids.to_numpy()).dropna()
    known = known[~known.index.duplicated()]
    if owner not in opportunities.columns:
        issues.add(table, None, None, None, None, "note", f"no {owner} column: names not used")
        return opportunities, issues.frame()
    given = opportunities[owner].astype("string").str.strip()
    named = given.map(known)
    unknown = given.notna() & named.isna()
    out = opportunities.copy()
    out[owner] = named.where(~unknown, given).astype(object).where(given.notna(), None)
    owners = given.dropna().unique()
    issues.add(
        table,
        None,
        None,
        "Name",
        None,
        "note",
        f"owners named from {table}: {int(pd.Series(owners).isin(known.index).sum()):,} of "
        f"{len(owners):,} OwnerIds",
    )
    for oid in given[unknown].unique():
        r = int(np.flatnonzero((given == oid).fillna(False).to_numpy())[0])
        issues.add(
            "Opportunity",
            r,
            opportunities["Id"].iloc[r] if "Id" in opportunities else None,
            owner,
            oid,
            "note",
            f"OwnerId {oid!r} is not in {table}: the id is the owner's name",
        )
    return out, issues.frame()


# -- HubSpot: deals (wide, date entered/exited per stage) + pipeline stages ----------------------

_HS_DATE = re.compile(r"^hs(_v2)?_date_(entered|exited)_(.+)$")


def _col(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return _pick([str(c) for c in frame.columns], [n.lower() for n in names])


def _hubspot_stages(stages: pd.DataFrame, pipeline: str | None) -> pd.DataFrame:
    """id, label (unique), order, probability, outcome of one pipeline's stages."""
    sid = _col(stages, ("id", "stageId", "stage_id"))
    label = _col(stages, ("label",))
    order = _col(stages, ("displayOrder", "display_order"))
    if sid is None or label is None or order is None:
        raise _convert.data_error(
            "HubSpot stages: expected columns id (or stageId), label and displayOrder, got "
            f"{list(map(str, stages.columns))}"
        )
    pipe = _col(stages, ("pipelineId", "pipeline_id", "pipeline"))
    if pipe is not None:
        pipelines = list(dict.fromkeys(stages[pipe].astype(str)))
        if pipeline is None and len(pipelines) > 1:
            raise _convert.data_error(
                f"HubSpot stages of several pipelines {pipelines}: pass pipeline= to choose one",
                None,
                pipe,
            )
        if pipeline is not None:
            if pipeline not in pipelines:
                raise _convert.data_error(
                    f"pipeline {pipeline!r} is not in the stages (pipelines: {pipelines})",
                    None,
                    pipe,
                )
            stages = stages[stages[pipe].astype(str) == pipeline]
    prob_col = _col(stages, ("probability", "metadata.probability"))
    closed_col = _col(stages, ("isClosed", "metadata.isClosed", "is_closed", "closed"))
    won_col = _col(stages, ("isWon", "is_won", "closedWon", "closed_won"))
    lost_col = _col(stages, ("isLost", "is_lost", "closedLost", "closed_lost"))
    prob = (
        pd.to_numeric(stages[prob_col], errors="coerce")
        if prob_col
        else pd.Series(np.nan, index=stages.index)
    )
    closed = _truthy(stages[closed_col]) if closed_col else np.zeros(len(stages), bool)
    won = _truthy(stages[won_col]) if won_col else closed & (prob.to_numpy() >= 1.0)
    lost = _truthy(stages[lost_col]) if lost_col else closed & ~won
    labels = stages[label].astype(str)
    dup = labels.duplicated(keep=False).to_numpy()
    labels = labels.where(~dup, labels + " (" + stages[sid].astype(str) + ")")
    out = pd.DataFrame(
        {
            "id": stages[sid].astype(str).to_numpy(),
            "stage": labels.to_numpy(),
            "order": pd.to_numeric(stages[order], errors="coerce").to_numpy(),
            "probability": prob.to_numpy(),
            "outcome": np.where(won, "won", np.where(lost | closed, "lost", "open")),
        }
    )
    return out.sort_values("order", kind="stable").reset_index(drop=True)


def from_hubspot(
    deals: pd.DataFrame | str | os.PathLike[str],
    stages: pd.DataFrame | str | os.PathLike[str],
    funnel: _core.Funnel | None = None,
    *,
    id: str = "hs_object_id",
    stage: str = "dealstage",
    amount: str | None = "amount",
    owner: str | None = "hubspot_owner_id",
    created: str | None = "createdate",
    close_date: str | None = "closedate",
    pipeline: str | None = None,
    pipeline_column: str = "pipeline",
    attributes: Sequence[str] = (),
    stage_map: Mapping[str, str] | None = None,
) -> Imported:
    """Import a HubSpot deals export (wide: one row per deal) with the pipeline's stages.

    Parameters
    ----------
    deals : DataFrame or CSV path
        One row per deal with ``hs_v2_date_entered_<stage id>`` and
        ``hs_v2_date_exited_<stage id>`` columns (``hs_date_entered_<id>`` also accepted), the
        current stage id (``dealstage``), and optionally amount, owner, create and close dates.
        Optional columns that are absent are skipped (amount, owner, createdate, closedate).
    stages : DataFrame or CSV path
        The pipeline's stages as the pipelines API gives them: ``id`` (or stageId), ``label``,
        ``displayOrder``, and ``probability`` / ``isClosed`` (or ``metadata.probability`` /
        ``metadata.isClosed``); explicit ``isWon`` / ``isLost`` columns are used when present,
        otherwise a closed stage with probability 1 is won and any other closed stage lost. With
        a ``pipelineId`` column, ``pipeline=`` chooses the pipeline.
    funnel : Funnel, optional
        Default: open stages by displayOrder, won and lost as above, named by label.
    id, stage, amount, owner, created, close_date : str
        Deal columns (HubSpot internal names by default).
    pipeline, pipeline_column : str
        With ``pipeline``, only deals whose ``pipeline_column`` equals it are imported (the others
        are reported).
    attributes : sequence of str
        Static deal columns (dealtype, hs_analytics_source...).
    stage_map : mapping, optional
        ``{label: funnel name}``.

    Returns
    -------
    Imported

    Notes
    -----
    A deal entered each stage whose entry date is given, at that time (stage labels are the
    names). HubSpot keeps one entry date per stage, so re-entries are not visible; exit dates
    only check the entries. Reported in :attr:`Imported.quality`, naming the deal and the
    column: unparseable dates and date columns of stage ids that are not in the pipeline
    (``rejected``), exits before their entry or without one (``rejected``: the exit is not
    used), a current stage without an entry date (``added`` at the latest exit date, or at the
    close date for a closed deal), entries before the create date (``changed``: creation taken
    as the first entry), a missing or non-numeric amount (``changed``: 0).
    """
    dl, st = _frame(deals, "deals"), _frame(stages, "stages")
    _require(dl, [id, stage, *attributes], "HubSpot deals")
    amount, owner, created, close_date = (
        c if c is not None and c in dl.columns else None
        for c in (amount, owner, created, close_date)
    )
    meta = _hubspot_stages(st, pipeline)
    if stage_map:
        meta["stage"] = [stage_map.get(s, s) for s in meta["stage"]]
    label = dict(zip(meta["id"], meta["stage"]))
    if funnel is None:
        funnel = _core.Funnel(
            list(meta.loc[meta["outcome"] == "open", "stage"]),
            won=list(meta.loc[meta["outcome"] == "won", "stage"]) or ["Closed Won"],
            lost=list(meta.loc[meta["outcome"] == "lost", "stage"]) or ["Closed Lost"],
            name="hubspot",
        )
    terminal = set(funnel.won) | set(funnel.lost)
    issues = _Issues()
    table = "deals"
    ids = dl[id]
    keep = np.ones(len(dl), dtype=bool)
    checks = [
        (ids.isna().to_numpy(), id, "no deal id"),
        (
            ids.duplicated().to_numpy() & ids.notna().to_numpy(),
            id,
            "duplicate deal id: first row used",
        ),
    ]
    if pipeline is not None and pipeline_column in dl.columns:
        checks.append(
            (
                dl[pipeline_column].astype(str).to_numpy() != pipeline,
                pipeline_column,
                f"deal of another pipeline (not {pipeline!r}): not imported",
            )
        )
    for mask, col, why in checks:
        for r in np.flatnonzero(mask & keep).tolist():
            issues.add(table, int(r), ids.iloc[r], col, dl[col].iloc[r], "rejected", why)
        keep &= ~mask

    entered: dict[str, pd.Series] = {}
    exited: dict[str, pd.Series] = {}
    columns_of: dict[tuple[str, str], str] = {}
    for col in map(str, dl.columns):
        m = _HS_DATE.match(col)
        if not m:
            continue
        v2, kind, sid = bool(m.group(1)), m.group(2), m.group(3)
        if (kind, sid) in columns_of and not v2:
            continue  # the v2 column of the same stage wins over the legacy one
        values, bad_t = _parse_times(dl[col])
        present = dl[col].notna().to_numpy() & keep
        if sid not in label:
            for r in np.flatnonzero(present).tolist():
                issues.add(
                    table,
                    int(r),
                    ids.iloc[r],
                    col,
                    dl[col].iloc[r],
                    "rejected",
                    f"stage id {sid!r} is not in the pipeline's stages {list(label)}",
                )
            continue
        for r in np.flatnonzero(bad_t & keep).tolist():
            issues.add(
                table,
                int(r),
                ids.iloc[r],
                col,
                dl[col].iloc[r],
                "rejected",
                f"not a time ({_TIME_HINT})",
            )
        (entered if kind == "entered" else exited)[sid] = values.where(~bad_t)
        columns_of[(kind, sid)] = col

    rows: list[dict[str, Any]] = []
    created_t = _parse_times(dl[created])[0] if created else None
    close_t = _parse_times(dl[close_date])[0] if close_date else None
    amounts = pd.to_numeric(dl[amount], errors="coerce") if amount else None
    for pos in np.flatnonzero(keep):
        r = int(pos)
        deal = ids.iloc[r]
        evs: list[tuple[pd.Timestamp, str]] = []
        last_exit = pd.NaT
        for sid, series in entered.items():
            t = series.iloc[r]
            if pd.notna(t):
                evs.append((t, sid))
        for sid, series in exited.items():
            x = series.iloc[r]
            if pd.isna(x):
                continue
            col = columns_of[("exited", sid)]
            t = entered[sid].iloc[r] if sid in entered else pd.NaT
            if pd.isna(t):
                issues.add(
                    table,
                    r,
                    deal,
                    col,
                    dl[col].iloc[r],
                    "rejected",
                    f"exited {label[sid]!r} without an entry date: the stay cannot be placed",
                )
            elif x < t:
                issues.add(
                    table,
                    r,
                    deal,
                    col,
                    dl[col].iloc[r],
                    "rejected",
                    f"exit before entry ({t:%Y-%m-%d %H:%M}) of {label[sid]!r}: the exit "
                    "is not used, the entry is kept",
                )
            else:
                last_exit = x if pd.isna(last_exit) else max(last_exit, x)
        evs.sort(key=lambda e: e[0])
        current = dl[stage].iloc[r]
        cur = str(current) if pd.notna(current) else None
        if cur is not None and cur not in label:
            issues.add(
                table,
                r,
                deal,
                stage,
                current,
                "note",
                f"current stage id {cur!r} is not in the pipeline's stages",
            )
        elif cur is not None and all(s != cur for _, s in evs):
            closed = label[cur] in terminal
            base = evs[-1][0] if evs else pd.NaT
            when: Any = pd.NaT
            source: Any = ""
            if closed and close_t is not None and pd.notna(close_t.iloc[r]):
                when, source = close_t.iloc[r], close_date
            elif pd.notna(last_exit):
                when, source = last_exit, "the latest exit date"
            elif not evs and created_t is not None and pd.notna(created_t.iloc[r]):
                when, source = created_t.iloc[r], created
            if pd.isna(when):
                issues.add(
                    table,
                    r,
                    deal,
                    stage,
                    current,
                    "note" if evs else "rejected",
                    f"current stage {label[cur]!r} has no entry date and no date to place it",
                )
            else:
                if pd.notna(base) and when < base:
                    when = base
                issues.add(
                    table,
                    r,
                    deal,
                    stage,
                    current,
                    "added",
                    f"current stage {label[cur]!r} has no entry date: added at {source}",
                )
                evs.append((when, cur))
        elif cur is not None and evs and evs[-1][1] != cur:
            issues.add(
                table,
                r,
                deal,
                stage,
                current,
                "note",
                f"current stage {label[cur]!r} was entered before {label[evs[-1][1]]!r}: "
                "the deal went back (re-entries are not visible in the export)",
            )
        if not evs:
            if cur is None or cur in label:
                issues.add(
                    table,
                    r,
                    deal,
                    None,
                    None,
                    "rejected",
                    "no stage entry date: the deal cannot be placed in time",
                )
            continue
        value = amounts.iloc[r] if amounts is not None else 0.0
        if amounts is not None and not np.isfinite(value):
            issues.add(
                table,
                r,
                deal,
                amount,
                dl[amount].iloc[r],
                "changed",
                "amount missing or not a number: counted as 0",
            )
            value = 0.0
        first = evs[0][0]
        made = created_t.iloc[r] if created_t is not None else pd.NaT
        if pd.notna(made) and made > first:
            issues.add(
                table,
                r,
                deal,
                created,
                dl[created].iloc[r],
                "changed",
                f"created after its first stage entry ({first:%Y-%m-%d %H:%M}): creation "
                "taken as the first entry",
            )
            made = first
        for t, sid in evs:
            rows.append(
                {
                    "opportunity_id": str(deal),
                    "stage": label[sid],
                    "time": t,
                    "amount": value,
                    "created": made if pd.notna(made) else first,
                    "close_date": close_t.iloc[r] if close_t is not None else pd.NaT,
                    "_row": r,
                    **({"owner": dl[owner].iloc[r]} if owner else {}),
                    **{a: dl[a].iloc[r] for a in attributes},
                }
            )
    events = pd.DataFrame(rows)
    if events.empty:
        raise _convert.data_error(
            "HubSpot deals: no deal has a usable stage entry date", None, stage
        )
    if owner:
        no_owner = events["owner"].isna()
        first_rows = events.loc[no_owner, ["opportunity_id", "_row"]].drop_duplicates()
        for deal, r in first_rows.to_numpy():
            issues.add(table, int(r), deal, owner, None, "changed", f"no owner: {UNASSIGNED!r}")
        events["owner"] = events["owner"].astype("string").fillna(UNASSIGNED)
    log = EventLog.from_frame(
        funnel,
        events,
        amount="amount",
        owner="owner" if owner else None,
        close_date="close_date" if close_date else None,
        created="created",
        attributes=list(attributes),
        validation="lenient",
    )
    rej = log.rejected
    for r, col, why in zip(rej["row"], rej["rejected_column"], rej["reason"]):
        e = events.iloc[int(r)]
        issues.add(table, int(e["_row"]), e["opportunity_id"], str(col), None, "rejected", str(why))
    end_cols = [events["time"].max()]
    return Imported(
        log=log,
        quality=issues.frame(),
        source="HubSpot deals + pipeline stages",
        as_of=None if not end_cols else max(end_cols),
        stages=meta,
    )


# -- HubSpot: the deals export of the web app (Date entered "Stage (Pipeline)" columns) ---------

_HS_UI_DATE = re.compile(r'^Date (entered|exited) "(.+) \(([^()]*)\)"$')
_HS_UI_COLUMNS = {
    "id": ("Record ID", "Deal ID", "Object ID"),
    "stage": ("Deal Stage", "Stage"),
    "pipeline": ("Pipeline",),
    "amount": ("Amount",),
    "owner": ("Deal owner", "Owner"),
    "created": ("Create Date", "Created Date", "Create date"),
    "close_date": ("Close Date", "Close date"),
}


def from_hubspot_export(
    deals: pd.DataFrame | str | os.PathLike[str],
    funnel: _core.Funnel | None = None,
    *,
    stages: pd.DataFrame | str | os.PathLike[str] | None = None,
    pipeline: str | None = None,
    attributes: Sequence[str] = (),
    stage_map: Mapping[str, str] | None = None,
    time_format: str | None = None,
    dayfirst: bool = False,
) -> Imported:
    """Import the deals export of the HubSpot web app (Deals → Export), no API needed.

    The web app names its columns by label: ``Record ID``, ``Deal Stage`` (the stage label),
    ``Pipeline``, ``Amount``, ``Deal owner`` (the owner's name), ``Create Date``, ``Close Date``,
    and one ``Date entered "<stage> (<pipeline>)"`` / ``Date exited "<stage> (<pipeline>)"``
    pair per stage. The rows are then read as :func:`from_hubspot` reads the API export (same
    rules, same quality records, naming the export's own columns).

    Parameters
    ----------
    deals : DataFrame or CSV path
    funnel : Funnel, optional
        Default: the open stages in the order of the export's columns (the web app lists them
        in pipeline order), Won/Lost from the names (Closed Won, Closed Lost...), each a note;
        or, with ``stages``, the pipeline stages' order and outcome, matched by label.
    stages : DataFrame or CSV path, optional
        The pipeline stages (as for :func:`from_hubspot`).
    pipeline : str, optional
        The pipeline's name as in the columns; needed when the export has several.
    attributes : sequence of str
        Static deal columns (``Deal Type``...).
    stage_map : mapping, optional
        ``{label: funnel name}``; labels are trimmed of surrounding spaces first.
    time_format, dayfirst
        As in :func:`from_long`.
    """
    table = Path(deals).name if isinstance(deals, (str, os.PathLike)) else "deals"
    dl = _frame(deals, "deals")
    issues = _Issues()
    found = {k: _col(dl, v) for k, v in _HS_UI_COLUMNS.items()}
    if found["id"] is None:
        raise _convert.data_error(
            f"{table}: no deal id column (expected one of {list(_HS_UI_COLUMNS['id'])}; columns: "
            f"{list(map(str, dl.columns))})"
        )
    _require(dl, list(attributes), table)
    dated = [(c, m) for c in map(str, dl.columns) if (m := _HS_UI_DATE.match(c)) is not None]
    pipelines = list(dict.fromkeys(m.group(3).strip() for _, m in dated))
    if pipeline is None and len(pipelines) > 1:
        raise _convert.data_error(
            f"{table}: stage dates of several pipelines {pipelines}: choose one with pipeline= "
            "(--pipeline on the command line)"
        )
    chosen = pipeline if pipeline is not None else pipelines[0] if pipelines else None
    if chosen not in pipelines:
        raise _convert.data_error(
            f"{table}: pipeline {chosen!r} has no stage date columns (pipelines: {pipelines})"
        )
    dated = [(c, m) for c, m in dated if m.group(3).strip() == chosen]
    labels = list(dict.fromkeys(m.group(2).strip() for _, m in dated if m.group(1) == "entered"))
    if len(pipelines) > 1:
        issues.add(
            table,
            None,
            None,
            found["pipeline"],
            chosen,
            "note",
            f"pipeline {chosen!r} read; the stage dates of {[p for p in pipelines if p != chosen]} "
            "are not",
        )
    with_times = {"time_format": time_format, "dayfirst": dayfirst}
    token = _time_options.set(with_times) if time_format or dayfirst else None
    try:
        # The API's shape: hs_v2_date_entered_<id> columns, the stage's label as its id.
        api = pd.DataFrame({"hs_object_id": dl[found["id"]].to_numpy()}, index=dl.index)
        back: dict[str, str] = {"hs_object_id": found["id"]}
        for c, m in dated:
            label = m.group(2).strip()
            values = dl[c]
            trouble = _time_trouble(
                values, _parse_times(values)[1], time_format, dayfirst, c, table
            )
            if trouble:
                raise _convert.data_error(trouble, None, c)
            name = f"hs_v2_date_{m.group(1)}_{label}"
            api[name], back[name] = values.to_numpy(), c
        current = None
        if found["stage"] is not None:
            current = dl[found["stage"]].astype("string").str.strip()
            suffix = f" ({chosen})"
            current = current.map(
                lambda v: (
                    v[: -len(suffix)].strip() if isinstance(v, str) and v.endswith(suffix) else v
                )
            )
            api["dealstage"], back["dealstage"] = current.to_numpy(dtype=object), found["stage"]
        for key, name in (
            ("amount", "amount"),
            ("owner", "hubspot_owner_id"),
            ("created", "createdate"),
            ("close_date", "closedate"),
            ("pipeline", "pipeline"),
        ):
            column = found[key]
            if column is not None:
                api[name], back[name] = dl[column].to_numpy(), column
        for a in attributes:
            api[a], back[a] = dl[a].to_numpy(), a
        if "dealstage" not in api:
            api["dealstage"] = None
        if stages is not None:
            meta = _hubspot_stages(_frame(stages, "stages"), None)
            meta = meta[meta["stage"].isin(labels)]
            missing = [s for s in labels if s not in set(meta["stage"])]
            if missing:
                raise _convert.data_error(
                    f"{table}: stages {missing} are not in the pipeline stages "
                    f"(labels: {list(meta['stage'])})"
                )
            order = dict(zip(meta["stage"], meta["order"]))
            outcome = dict(zip(meta["stage"], meta["outcome"]))
        else:
            order = {s: i for i, s in enumerate(labels)}
            outcome = {s: _won_lost(s) or "open" for s in labels}
            if "won" not in outcome.values():
                raise _convert.data_error(
                    f"{table}: no stage reads as won among {labels} (give the funnel, or the "
                    "pipeline stages file)",
                    None,
                    found["stage"],
                )
            issues.add(
                table,
                None,
                None,
                None,
                None,
                "note",
                "stages in the order of the export's columns: "
                f"{' → '.join(s for s in labels if outcome[s] == 'open')}; won "
                f"{[s for s in labels if outcome[s] == 'won']}, lost "
                f"{[s for s in labels if outcome[s] == 'lost']} from the names (pass a Funnel "
                "or the pipeline stages to fix it)",
            )
        for old, new in (stage_map or {}).items():
            issues.add(
                table,
                None,
                None,
                None,
                old,
                "note",
                f"stage map: {old!r} renamed {new!r}"
                if old in labels
                else f"stage map: {old!r} is no stage in the export (stages: {labels}): "
                "nothing renamed",
            )
        synthetic = pd.DataFrame(
            {
                "id": labels,
                "label": labels,
                "displayOrder": [order[s] for s in labels],
                "isClosed": [outcome[s] != "open" for s in labels],
                "isWon": [outcome[s] == "won" for s in labels],
                "isLost": [outcome[s] == "lost" for s in labels],
            }
        )
        several = len(pipelines) > 1 and found["pipeline"] is not None
        inner = from_hubspot(
            api,
            synthetic,
            funnel,
            attributes=attributes,
            stage_map=stage_map,
            pipeline=chosen if several else None,
        )
    finally:
        if token is not None:
            _time_options.reset(token)
    quality = inner.quality.copy()
    quality["table"] = quality["table"].replace({"deals": table})
    quality["column"] = quality["column"].map(lambda c: back.get(c, c) if isinstance(c, str) else c)
    quality["reason"] = quality["reason"].str.replace("hubspot_owner_id", found["owner"] or "owner")
    issues.extend(quality)
    return dataclasses.replace(
        inner, quality=issues.frame(), source="HubSpot deals (web app export)"
    )


# -- Olist marketing funnel ----------------------------------------------------------------------


def from_olist(
    leads: pd.DataFrame | str | os.PathLike[str],
    deals: pd.DataFrame | str | os.PathLike[str],
    *,
    owner: str | None = "sr_id",
    attributes: Sequence[str] = ("origin",),
) -> Imported:
    """The Olist marketing funnel: marketing-qualified leads and the deals closed from them.

    A two-step funnel, MQL → Won: each lead (``olist_marketing_qualified_leads_dataset.csv``:
    mql_id, first_contact_date, landing_page_id, origin) enters MQL on its first contact date; a
    closed deal (``olist_closed_deals_dataset.csv``: mql_id, won_date, sdr_id, sr_id, ...) is
    Won on its won date. The data record no losses: a lead never closed stays open, censored at
    the data's end (``as_of``, the last date in the files), never counted as lost.

    Reported in :attr:`Imported.quality`: a closed deal whose won_date precedes its lead's first
    contact (there is one in the public data) is ``rejected`` (the lead is kept, open), as are
    deals of unknown leads and rows with unusable dates.

    Parameters
    ----------
    leads, deals : DataFrame or CSV path
    owner : str or None
        The deals' column used as owner (``sr_id``, the closer; ``sdr_id`` for the SDR). Only
        closed deals name one: open leads get the owner ``"(unassigned)"``, so a rep's row
        counts only the deals they won and the leads' conversion is the "(unassigned)" row's
        complement, not a rep's win rate.
    attributes : sequence of str
        Lead columns kept as static attributes (origin, landing_page_id).
    """
    lf, df = _frame(leads, "leads"), _frame(deals, "deals")
    _require(lf, ["mql_id", "first_contact_date", *attributes], "Olist leads")
    _require(df, ["mql_id", "won_date", owner], "Olist closed deals")
    issues = _Issues()
    contact, bad_c = _parse_times(lf["first_contact_date"])
    ok = np.ones(len(lf), dtype=bool)
    for mask, col, why in (
        (lf["mql_id"].isna().to_numpy(), "mql_id", "no mql_id"),
        (lf["mql_id"].duplicated().to_numpy(), "mql_id", "duplicate mql_id: first row used"),
        (bad_c, "first_contact_date", f"not a time ({_TIME_HINT})"),
        (contact.isna().to_numpy(), "first_contact_date", "no first contact date"),
    ):
        for r in np.flatnonzero(mask & ok).tolist():
            issues.add("leads", int(r), lf["mql_id"].iloc[r], col, lf[col].iloc[r], "rejected", why)
        ok &= ~mask
    first = pd.Series(contact[ok].to_numpy(), index=lf["mql_id"][ok].to_numpy())
    won, bad_w = _parse_times(df["won_date"])
    lead_time = df["mql_id"].map(first)
    dok = np.ones(len(df), dtype=bool)
    for mask, col, why in (
        (~df["mql_id"].isin(first.index).to_numpy(), "mql_id", "lead not among the usable leads"),
        (df["mql_id"].duplicated().to_numpy(), "mql_id", "duplicate closed deal: first row used"),
        (bad_w, "won_date", f"not a time ({_TIME_HINT})"),
        (won.isna().to_numpy(), "won_date", "no won date"),
        (
            (won < lead_time).to_numpy(),
            "won_date",
            "won before the lead's first contact: the deal row is not used, the lead stays open",
        ),
    ):
        for r in np.flatnonzero(mask & dok).tolist():
            detail = ""
            if col == "won_date" and pd.notna(lead_time.iloc[r]):
                detail = f" ({lead_time.iloc[r]:%Y-%m-%d})"
            issues.add(
                "closed_deals",
                int(r),
                df["mql_id"].iloc[r],
                col,
                df[col].iloc[r],
                "rejected",
                why + detail,
            )
        dok &= ~mask
    kept = lf[ok]
    good = df[dok]
    owners = good.set_index("mql_id")[owner] if owner else None
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "opportunity_id": kept["mql_id"].to_numpy(),
                    "stage": "MQL",
                    "time": contact[ok].to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "opportunity_id": good["mql_id"].to_numpy(),
                    "stage": "Won",
                    "time": won[dok].to_numpy(),
                }
            ),
        ],
        ignore_index=True,
    )
    if owners is not None:
        events["owner"] = events["opportunity_id"].map(owners).fillna(UNASSIGNED).astype(str)
    attrs = kept.set_index("mql_id")
    for a in attributes:
        events[a] = events["opportunity_id"].map(attrs[a])
    funnel = _core.Funnel(["MQL"], won="Won", lost="Lost", name="olist")
    log = EventLog.from_frame(
        funnel,
        events,
        owner="owner" if owner else None,
        attributes=list(attributes),
        validation="lenient",
    )
    for r, col, why in zip(
        log.rejected["row"], log.rejected["rejected_column"], log.rejected["reason"]
    ):
        issues.add(
            "events",
            int(r),
            events["opportunity_id"].iloc[int(r)],
            str(col),
            None,
            "rejected",
            str(why),
        )
    return Imported(
        log=log,
        quality=issues.frame(),
        source="Olist marketing funnel (leads + closed deals)",
        as_of=events["time"].max(),
    )


# -- activities ----------------------------------------------------------------------------------


def activities(
    frame: pd.DataFrame | str | os.PathLike[str],
    log: EventLog | Imported,
    *,
    opportunity: str = "opportunity_id",
    time: str = "time",
    kind: str = "kind",
    owner: str | None = None,
    buyer: str | None = None,
    time_format: str | None = None,
    dayfirst: bool = False,
) -> ActivityLog:
    """Import an activity table (one row per task, call, email, meeting...) for a log.

    Rows whose time is missing or cannot be parsed, whose kind is missing, or whose opportunity
    is not in the log are not used and come back in :attr:`ActivityLog.rejected` (the input
    row with ``row``, ``rejected_column`` and ``reason``); every other row is kept.

    Parameters
    ----------
    frame : DataFrame or path-like
        The table, or the path of a CSV file.
    log : EventLog or Imported
    opportunity, time, kind : str
        Column names (a Salesforce Task export: WhatId, ActivityDate, TaskSubtype or Type).
    owner : str, optional
        Who did it.
    buyer : str, optional
        True/False column: the buyer acted.
    time_format, dayfirst
        As in :func:`from_long`.

    Returns
    -------
    ActivityLog
    """
    return _activities(
        frame,
        log,
        opportunity=opportunity,
        time=time,
        kind=kind,
        owner=owner,
        buyer=buyer,
        time_format=time_format,
        dayfirst=dayfirst,
    )[0]


def _activities(
    frame: pd.DataFrame | str | os.PathLike[str],
    log: EventLog | Imported,
    *,
    opportunity: str,
    time: str,
    kind: str,
    owner: str | None = None,
    buyer: str | None = None,
    time_format: str | None = None,
    dayfirst: bool = False,
    table: str = "activities",
) -> tuple[ActivityLog, pd.DataFrame]:
    frame = _frame(frame, "frame")
    event_log = log.log if isinstance(log, Imported) else log
    _require(frame, [opportunity, time, kind, owner, buyer], table)
    times, bad_time = _parse_times(frame[time], time_format, dayfirst)
    reasons = np.full(len(frame), None, dtype=object)
    columns = np.full(len(frame), None, dtype=object)
    for mask, col, why in (
        (frame[opportunity].isna().to_numpy(), opportunity, "no opportunity id"),
        (bad_time, time, f"not a time ({_TIME_HINT}'%d/%m/%Y' or 'mixed')"),
        (times.isna().to_numpy() & ~bad_time, time, "no time: the activity cannot be placed"),
        (frame[kind].isna().to_numpy(), kind, "no kind"),
    ):
        new = mask & (reasons == None)  # noqa: E711 - elementwise on an object array
        reasons[new], columns[new] = why, col
    keep = reasons == None  # noqa: E711
    good = frame[keep].copy()
    good[time] = times[keep]
    if event_log.core.string_ids:
        good[opportunity] = good[opportunity].astype(str)
    acts = ActivityLog.from_frame(
        event_log,
        good.reset_index(drop=True),
        opportunity=opportunity,
        time=time,
        kind=kind,
        owner=owner,
        buyer=buyer,
        validation="lenient",
    )
    kept_rows = np.flatnonzero(keep)
    rej = acts.rejected
    rows = [
        *np.flatnonzero(~keep).tolist(),
        *kept_rows[rej["row"].to_numpy(dtype=np.int64)].tolist(),
    ]
    cols = [*columns[~keep], *rej["rejected_column"]]
    whys = [*reasons[~keep], *rej["reason"]]
    order = np.argsort(rows, kind="stable")
    rows = [int(rows[i]) for i in order]
    cols = [cols[i] for i in order]
    whys = [str(whys[i]) for i in order]
    user = {"opportunity": opportunity, "time": time, "kind": kind, "owner": owner}
    cols = [user.get(str(c)) or str(c) for c in cols]
    rejected = frame.iloc[rows].copy()
    rejected.insert(0, "row", rows)
    rejected["rejected_column"] = cols
    rejected["reason"] = whys
    issues = _Issues()
    for r, c, why in zip(rows, cols, whys):
        value = frame[c].iloc[r] if c in frame.columns else None
        issues.add(table, r, frame[opportunity].iloc[r], c, value, "rejected", why)
    return ActivityLog(acts.core, event_log, rejected), issues.frame()


# -- reading files: recognise the format from the columns ----------------------------------------

_OPP_ALIASES = ("opportunity_id", "opportunity", "deal_id", "deal", "opp_id", "id")
_STAGE_ALIASES = ("stage", "stage_name", "deal_stage", "to_stage")
_TIME_ALIASES = ("time", "timestamp", "date", "entered_at", "changed_at", "event_time")
_KIND_ALIASES = ("kind", "activity", "activity_type", "type")


def _pick(columns: Sequence[str], aliases: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[a] for a in aliases if a in lower), None)


def _classify(columns: Sequence[str], path: Path | None = None) -> str | None:
    cols = set(columns)
    if {"OpportunityId", "StageName", "CreatedDate"} <= cols:
        return "salesforce_history"
    if {"Id", "StageName", "CreatedDate"} <= cols and cols & {"IsWon", "IsClosed"}:
        return "salesforce_opportunity"
    if {"Id", "Name"} <= cols and (
        "Username" in cols or (path is not None and path.stem.lower() in ("user", "users"))
    ):
        return "salesforce_user"
    if any(_HS_UI_DATE.match(c) for c in cols):
        return "hubspot_export"
    if any(c.startswith(("hs_v2_date_entered_", "hs_date_entered_")) for c in cols):
        return "hubspot_deals"
    lower = {c.lower() for c in cols}
    if {"label", "displayorder"} <= lower or {"label", "display_order"} <= lower:
        return "hubspot_stages"
    if {"mql_id", "first_contact_date"} <= cols:
        return "olist_leads"
    if {"mql_id", "won_date"} <= cols:
        return "olist_deals"
    if {"opportunity_id", "deal_stage", "engage_date", "close_date"} <= cols:
        return "maven"
    if {"Opportunity_ID", "Deal_Stage", "Created_On", "Close_Date"} <= cols:
        return "sparklesquad"
    if {"product", "sales_price"} <= lower:
        return "products"
    if {"sales_agent", *_TEAM_COLUMNS} <= lower:
        return "teams"
    opp, time = _pick(columns, _OPP_ALIASES), _pick(columns, _TIME_ALIASES)
    if opp and time and _pick(columns, _STAGE_ALIASES):
        return "long"
    if opp and time and _pick(columns, _KIND_ALIASES):
        return "activities"
    return None


_EXPECTED = """\
  - long format: one row per stage change, columns opportunity_id (or deal_id, opportunity, id),
    stage (or stage_name, deal_stage), time (or timestamp, date, entered_at); optional amount,
    owner, close_date, created; with an optional activities file (opportunity_id, time, kind);
  - Salesforce: OpportunityHistory (OpportunityId, StageName, CreatedDate) + Opportunity (Id,
    StageName, CreatedDate, IsWon/IsClosed);
  - HubSpot: deals with hs_v2_date_entered_<stage id> columns + the pipeline stages (id, label,
    displayOrder, probability, isClosed), or the web app's export (Record ID, Deal Stage,
    Date entered "<stage> (<pipeline>)" columns);
  - Olist marketing funnel: leads (mql_id, first_contact_date) + closed deals (mql_id, won_date);
  - Maven CRM Sales Opportunities (opportunity_id, deal_stage, engage_date, close_date);
  - sparklesquad crm-dataset (Opportunity_ID, Deal_Stage, Created_On, Close_Date)."""


def _encoding(path: str | os.PathLike[str]) -> str | None:
    """The text encoding a file's byte-order mark says (UTF-16 from Excel's "Unicode text",
    UTF-8 with a BOM), else None (UTF-8)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    return None


def _unreadable_reason(path: Path, error: BaseException) -> str:
    """Why a file cannot be read as CSV, in words."""
    if path.is_dir():
        return "a directory, not a file"
    if isinstance(error, pd.errors.EmptyDataError):
        return "empty (no header line)"
    if isinstance(error, UnicodeDecodeError):
        return f"not {error.encoding.upper()} text ({error.reason} in a cell), save it as UTF-8 CSV"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return f"not a CSV file ({str(error).splitlines()[0] if str(error) else type(error).__name__})"


def _expand(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
) -> list[tuple[Path, bool]]:
    """(file, named explicitly) for each path; a directory stands for its CSV files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[tuple[Path, bool]] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [(f, False) for f in sorted(p.glob("*.csv"))]
        elif p.exists():
            out.append((p, True))
        elif p.is_symlink():
            raise _convert.data_error(
                f"{str(p)!r}: cannot be read: a symbolic link to nothing (dangling, or a loop of "
                "symbolic links)"
            )
        else:
            raise FileNotFoundError(f"no such file or directory: {str(p)!r}")
    if not out:
        raise _convert.data_error(f"no CSV files in {[str(p) for p in paths]}")
    return out


def read(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    funnel: _core.Funnel | None = None,
    as_of: Any = None,
    progress: Callable[[float], bool | None] | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    dayfirst: bool = False,
    time_format: str | None = None,
    stage_map: Mapping[str, str] | None = None,
    after_terminal: str | None = None,
    pipeline: str | None = None,
) -> Imported:
    """Read CRM export files, recognising their format from their columns.

    Parameters
    ----------
    paths : path or sequence of paths
        CSV files, or directories (their ``*.csv`` files; files there that no format uses are
        listed as notes in the quality report, while an unrecognised file named explicitly is an
        error). Recognised formats:

        - long format: one row per stage change (opportunity_id, stage, time; optional amount,
          owner, close_date, created), with an optional activities file (opportunity_id, time,
          kind; optional owner);
        - Salesforce ``OpportunityHistory`` + ``Opportunity``;
        - HubSpot deals (``hs_v2_date_entered_<stage id>`` columns) + pipeline stages;
        - Olist marketing funnel: leads + closed deals;
        - Maven "CRM Sales Opportunities" and the sparklesquad "crm-dataset" snapshots.
    funnel : Funnel, optional
        Default: the export's own (Salesforce, HubSpot), the dataset's (Maven, sparklesquad,
        Olist), or inferred from the stage names and order (long format, reported as a note).
    as_of : time-like, optional
        The analysis date. Default: the data's end where the export tells it. Events after it
        are kept (a fit as of that date does not see them) and counted in a note.
    progress : callable, optional
        Called with the fraction done (by bytes of the files parsed so far; building the log is
        the last 10%); returning False cancels (raises CancelledError).
    sep, decimal : str, optional
        The column separator and the decimal mark of the CSV files. Default: sniffed per file
        (the separator of , ; tab | the header has most often; a decimal comma only with another
        separator, when numbers such as 28.000,00 appear and none such as 3.5), with a note in
        the quality report for each file that is not plain comma-separated with decimal points.
    dayfirst, time_format
        How text times are read (see :func:`from_long`), in every file. Default: ISO 8601.
    stage_map : mapping, optional
        ``{name in the export: name in the funnel}`` (long format, Salesforce, HubSpot); each
        renaming is a note, and so is a name the data does not have.
    after_terminal : {"reopen", "reject"}, optional
        A stage event after Won/Lost: ``reopen`` reopens the deal, ``reject`` rejects the event
        (each one reported). Default: the format's own rule (long format: reject; Salesforce:
        reopen). Either way the count is a note.
    pipeline : str, optional
        The HubSpot pipeline to read when the export has several (its id in the API export,
        its name in the web app's).

    Returns
    -------
    Imported

    Raises
    ------
    DataError
        For files no format recognises (listing the formats expected), or an incomplete pair
        (e.g. an OpportunityHistory without its Opportunity export).
    """
    if after_terminal not in (None, "reopen", "reject"):
        raise ValueError(f"after_terminal must be 'reopen' or 'reject', got {after_terminal!r}")
    for name, mark in (("sep", sep), ("decimal", decimal)):
        if mark is not None and (not isinstance(mark, str) or len(mark) != 1):
            raise ValueError(f"{name} must be one character, got {mark!r}")
    if sep is not None and sep == decimal:
        raise ValueError(f"sep and decimal must differ, both are {sep!r}")
    if time_format is not None and not isinstance(time_format, str):
        raise ValueError(f"time_format must be a strptime format or 'mixed', got {time_format!r}")
    files = _expand(paths)
    chosen: dict[Path, dict[str, str]] = {}
    for f, _ in files:
        found = sniff_csv(f, sep) if sep is None or decimal is None else (sep, decimal)
        chosen[f] = {"sep": sep or found[0], "decimal": decimal or found[1]}
        if chosen[f]["sep"] == chosen[f]["decimal"]:
            raise _convert.data_error(
                f"{str(f)!r}: columns separated by {chosen[f]['sep']!r}, the decimal mark given: "
                "pass sep= (--sep) as well"
            )
    tokens = (
        _csv_options.set(dict(chosen)),
        _time_options.set({"time_format": time_format, "dayfirst": dayfirst}),
    )
    try:
        imp = _read(
            files,
            chosen,
            funnel,
            progress,
            _ReadOptions(stage_map, after_terminal, pipeline=pipeline),
        )
    except _core.InvalidFunnelError as e:  # a funnel built from the files' stages
        which = ", ".join(f.name for f, _ in files)
        raise _convert.data_error(f"{which}: the stages give no usable funnel: {e}") from None
    finally:
        _time_options.reset(tokens[1])
        _csv_options.reset(tokens[0])
    issues = _Issues()
    for name in imp.files:
        c = chosen[Path(name)]
        if (sep is None and c["sep"] != ",") or (decimal is None and c["decimal"] != "."):
            names = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
            issues.add(
                Path(name).name,
                None,
                None,
                None,
                None,
                "note",
                f"read with columns separated by {names[c['sep']]} and a decimal "
                f"{'comma' if c['decimal'] == ',' else 'point'} (sniffed from the file; pass "
                "sep= / decimal=, --sep / --decimal, to choose)",
            )
    reopened = int(imp.log.quality.get("reopened", 0))
    after = imp.quality["reason"].astype(str).str.contains("after its terminal stage")
    if reopened or after.any():
        issues.add(
            "events",
            None,
            None,
            None,
            None,
            "note",
            f"events after Won/Lost: {reopened:,} deal{'s' if reopened != 1 else ''} reopened, "
            f"{int(after.sum()):,} event{'s' if after.sum() != 1 else ''} rejected (after_terminal={after_terminal or 'the format default'}; "
            "--after-terminal reopen|reject)",
        )
    issues.extend(imp.quality)
    when = imp.as_of
    if as_of is not None:
        when = pd.Timestamp(as_of)
        when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        later = int((imp.log.to_frame()["time"] > when).sum())
        if later:
            issues.add(
                "events",
                None,
                None,
                None,
                None,
                "note",
                f"{later} events after as_of {when:%Y-%m-%d} are kept; a fit as of that "
                "date does not see them",
            )
    return dataclasses.replace(imp, quality=issues.frame(), as_of=when)


@dataclass(frozen=True)
class _ReadOptions:
    stage_map: Mapping[str, str] | None = None
    after_terminal: str | None = None
    time_format: str | None = None
    dayfirst: bool = False
    pipeline: str | None = None


def _read(
    files: list[tuple[Path, bool]],
    chosen: Mapping[Path, Mapping[str, str]],
    funnel: _core.Funnel | None,
    progress: Callable[[float], bool | None] | None,
    opts: _ReadOptions,
) -> Imported:
    given = _time_options.get() or {}
    opts = dataclasses.replace(
        opts, time_format=given.get("time_format"), dayfirst=bool(given.get("dayfirst"))
    )
    kinds: dict[str, list[Path]] = {}
    unused: list[Path] = []
    unreadable: list[tuple[Path, str]] = []
    for f, explicit in files:
        try:
            header = pd.read_csv(f, nrows=0, sep=chosen[f]["sep"], encoding=_encoding(f))
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            why = _unreadable_reason(f, e)
            if explicit:
                raise _convert.data_error(f"{str(f)!r}: cannot be read: {why}") from None
            unreadable.append((f, why))
            continue
        kind = _classify([str(c) for c in header.columns], f)
        if kind is None:
            if explicit:
                raise _convert.data_error(
                    f"{str(f)!r}: format not recognised from its columns "
                    f"{list(map(str, header.columns))}. Expected one of:\n{_EXPECTED}"
                )
            unused.append(f)
            continue
        kinds.setdefault(kind, []).append(f)
    if "products" in kinds and not kinds.keys() & {"maven", "sparklesquad"}:
        unused += kinds.pop("products")  # a price list only values snapshot deals
    if "teams" in kinds and not kinds.keys() & {"maven", "sparklesquad"}:
        unused += kinds.pop("teams")  # the agents' teams of a snapshot dataset
    if "salesforce_user" in kinds and "salesforce_history" not in kinds:
        unused += kinds.pop("salesforce_user")  # owner names of a Salesforce export
    if progress is None:
        imp = _read_kinds(kinds, funnel, opts)
    else:
        used = [f for fs in kinds.values() for f in fs]
        total = float(sum(f.stat().st_size for f in used)) or 1.0
        parsed: set[Path] = set()

        def tell(fraction: float) -> None:
            if progress(fraction) is False:
                raise _core.CancelledError("import cancelled")

        def hook(path: Path, done: bool) -> None:
            if done:
                parsed.add(path)
            tell(0.9 * sum(f.stat().st_size for f in parsed) / total)

        token = _reading.set(hook)
        try:
            tell(0.0)
            imp = _read_kinds(kinds, funnel, opts)
        finally:
            _reading.reset(token)
        tell(1.0)
    issues = _Issues()
    issues.extend(imp.quality)
    for f in unused:
        issues.add(f.name, None, None, None, None, "note", "file not used: no format reads it")
    for f, why in unreadable:
        issues.add(f.name, None, None, None, None, "note", f"file not used: {why}")
    unused += [f for f, _ in unreadable]
    return dataclasses.replace(
        imp,
        quality=issues.frame(),
        files=tuple(str(f) for f, _ in files if f not in unused),
    )


def _one(kinds: dict[str, list[Path]], kind: str) -> Path:
    found = kinds.pop(kind)
    if len(found) > 1:
        raise _convert.data_error(
            f"several files look like {kind.replace('_', ' ')}: {[str(p) for p in found]} "
            "(give one)"
        )
    return found[0]


_PAIRS = {
    "salesforce_history": (
        "salesforce_opportunity",
        "Salesforce OpportunityHistory",
        "Opportunity",
    ),
    "salesforce_opportunity": (
        "salesforce_history",
        "Salesforce Opportunity",
        "OpportunityHistory",
    ),
    "hubspot_deals": (
        "hubspot_stages",
        "HubSpot deals",
        "the pipeline stages (id, label, displayOrder, ...)",
    ),
    "hubspot_stages": ("hubspot_deals", "HubSpot pipeline stages", "the deals export"),
    "olist_leads": ("olist_deals", "Olist marketing-qualified leads", "the closed deals"),
    "olist_deals": ("olist_leads", "Olist closed deals", "the marketing-qualified leads"),
}


def _read_kinds(
    kinds: dict[str, list[Path]], funnel: _core.Funnel | None, opts: _ReadOptions = _ReadOptions()
) -> Imported:
    hubspot_stages = None
    if "hubspot_export" in kinds and "hubspot_stages" in kinds and "hubspot_deals" not in kinds:
        hubspot_stages = _one(kinds, "hubspot_stages")  # optional beside the web app's export
    if opts.stage_map and kinds.keys() & {"maven", "sparklesquad", "olist_leads"}:
        raise _convert.data_error(
            "stage_map (--stage-map) renames the stages of a stage history (long format, "
            "Salesforce, HubSpot); the funnel of this dataset is fixed"
        )
    reject = {"reject": "error", "reopen": "reopen", None: None}[opts.after_terminal]
    for kind, (partner, what, needs) in _PAIRS.items():
        if kind in kinds and partner not in kinds:
            raise _convert.data_error(
                f"{what} ({[str(p) for p in kinds[kind]]}) needs {needs} as well"
            )
    activities_file = _one(kinds, "activities") if "activities" in kinds else None
    main = [
        k
        for k in kinds
        if k not in ("products", "teams", "salesforce_user")
        and (k not in _PAIRS or k in ("salesforce_history", "hubspot_deals", "olist_leads"))
    ]
    if len(main) != 1:
        found = {k: [str(p) for p in v] for k, v in kinds.items()}
        if not main:
            raise _convert.data_error(
                f"no stage history among the files (found: {found or 'nothing usable'}). "
                f"Expected one of:\n{_EXPECTED}"
            )
        raise _convert.data_error(f"several datasets in one import: {found} (read them separately)")
    kind = main[0]
    if kind == "salesforce_history":
        history = _one(kinds, "salesforce_history")
        opp_file = _one(kinds, "salesforce_opportunity")
        opportunities: pd.DataFrame | Path = opp_file
        named = None
        if "salesforce_user" in kinds:
            users = _one(kinds, "salesforce_user")
            opportunities, named = _owner_names(
                _read_csv(opp_file), _read_csv(users), table=users.name
            )
        imp = from_salesforce(
            history,
            opportunities,
            funnel,
            stage_map=opts.stage_map,
            after_terminal=reject or "reopen",
        )
        if named is not None:
            issues = _Issues()
            issues.extend(named)
            issues.extend(imp.quality)
            imp = dataclasses.replace(imp, quality=issues.frame())
    elif kind == "hubspot_deals":
        imp = from_hubspot(
            _one(kinds, "hubspot_deals"),
            _one(kinds, "hubspot_stages"),
            funnel,
            stage_map=opts.stage_map,
            pipeline=opts.pipeline,
        )
    elif kind == "hubspot_export":
        imp = from_hubspot_export(
            _one(kinds, "hubspot_export"),
            funnel,
            stages=hubspot_stages,
            stage_map=opts.stage_map,
            pipeline=opts.pipeline,
        )
    elif kind == "olist_leads":
        imp = from_olist(_one(kinds, "olist_leads"), _one(kinds, "olist_deals"))
    elif kind == "long":
        path = _one(kinds, "long")
        frame = _read_csv(path)
        cols = [str(c) for c in frame.columns]
        opp, stage, time = (_pick(cols, a) for a in (_OPP_ALIASES, _STAGE_ALIASES, _TIME_ALIASES))
        assert opp and stage and time
        imp = from_long(
            frame,
            funnel,
            opportunity=opp,
            stage=stage,
            time=time,
            amount=_pick(cols, ("amount",)),
            owner=_pick(cols, ("owner",)),
            close_date=_pick(cols, ("close_date",)),
            created=_pick(cols, ("created",)),
            table=path.name,
            stage_map=opts.stage_map,
            time_format=opts.time_format,
            dayfirst=opts.dayfirst,
            after_terminal=reject or "error",
        )
    elif kind in ("maven", "sparklesquad"):
        path = _one(kinds, kind)
        prices = _one(kinds, "products") if "products" in kinds else None
        teams = _one(kinds, "teams") if "teams" in kinds else None
        imp = (from_maven if kind == "maven" else from_sparklesquad)(
            path, funnel, products=prices, teams=teams
        )
    else:  # pragma: no cover - every kind is handled above or below
        raise _convert.data_error(f"unsupported format {kind}")
    if activities_file is not None:
        frame = _read_csv(activities_file)
        cols = [str(c) for c in frame.columns]
        opp, time, kind_col = (_pick(cols, a) for a in (_OPP_ALIASES, _TIME_ALIASES, _KIND_ALIASES))
        assert opp and time and kind_col
        acts, acts_quality = _activities(
            frame,
            imp.log,
            opportunity=opp,
            time=time,
            kind=kind_col,
            owner=_pick(cols, ("owner",)),
            table=activities_file.name,
        )
        issues = _Issues()
        issues.extend(imp.quality)
        issues.extend(acts_quality)
        imp = dataclasses.replace(
            imp, activities=acts, quality=issues.frame(), source=f"{imp.source} + activities"
        )
    return imp
