"""Conversions between pandas/numpy columns and the compiled core's columns."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Union

import numpy as np
import pandas as pd

from . import _core

MISSING_TIME = np.iinfo(np.int64).min
#: Cells that could not be parsed: (row, core column, reason), handed to the core as ``unparsed``
#: (strict raises for the first bad row, lenient rejects the rows and keeps the others).
Problems = list[tuple[int, str, str]]
TimeLike = Union[str, _dt.datetime, _dt.date, pd.Timestamp, np.datetime64, int, float]
DurationLike = Union[str, _dt.timedelta, pd.Timedelta, np.timedelta64, int, float]


def data_error(message: str, row: int | None = None, column: str | None = None) -> _core.DataError:
    """A DataError with .row and .column set, like the ones the core raises."""
    err = _core.DataError(message)
    err.row = row
    err.column = column
    return err


def _int64(s: pd.Series, column: str) -> np.ndarray:
    """An integer column as int64; unsigned values above int64 max raise DataError (never wrap)."""
    if pd.api.types.is_unsigned_integer_dtype(s.dtype):
        arr = s.to_numpy()
        too_big = arr > np.iinfo(np.int64).max
        if too_big.any():
            row = int(np.flatnonzero(too_big)[0])
            raise data_error(
                f"row {row}: {column} value {int(arr[row])} does not fit in a signed 64-bit integer",
                row,
                column,
            )
    return s.to_numpy(dtype=np.int64)


def _report(
    bad: np.ndarray,
    s: pd.Series,
    column: str,
    what: str,
    problems: Problems | None,
    key: str | None,
) -> None:
    """Rows flagged in `bad` ("{column} value {v!r} {what}"): into `problems`, or raise the first."""
    rows = np.flatnonzero(bad)
    if not len(rows):
        return
    if problems is None:
        row = int(rows[0])
        raise data_error(f"row {row}: {column} value {s.iloc[row]!r} {what}", row, column)
    values = s.iloc[rows]
    problems.extend(
        (int(r), key or column, f"{column} value {v!r} {what}") for r, v in zip(rows, values)
    )


def to_seconds(
    values: Any, column: str, problems: Problems | None = None, key: str | None = None
) -> np.ndarray:
    """Seconds since the epoch (UTC) as int64, MISSING_TIME where missing.

    Accepts datetime64 columns (naive ones are taken as UTC, tz-aware ones are converted to UTC),
    ISO 8601 strings, datetime objects and integer epoch seconds. A value that is present but
    cannot be parsed raises DataError naming the row, or with `problems` is listed there (under
    the core's column name `key`) and read as missing.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
        # The values are UTC instants in the array's own unit (tz-aware arrays store UTC too):
        # read them as integers without converting the frame.
        dt = s.array
        ticks = np.asarray(dt.asi8)  # type: ignore[attr-defined]
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[dt.unit]  # type: ignore[attr-defined]
        out = ticks if per_second == 1 else np.floor_divide(ticks, per_second)
        missing = ticks == np.iinfo(np.int64).min
        if missing.any():
            out = out.copy() if out is ticks else out
            out[missing] = MISSING_TIME
        return out.astype(np.int64, copy=False)
    if pd.api.types.is_integer_dtype(s.dtype):
        return _int64(s, column)
    if pd.api.types.is_float_dtype(s.dtype):
        arr = s.to_numpy(dtype=np.float64)
        out = np.full(arr.shape, MISSING_TIME, dtype=np.int64)
        ok = np.isfinite(arr)
        # Beyond int64 the cast is undefined: such times become int64 max, which ingestion rejects
        # as outside the supported range (instead of a wrapped, plausible-looking time).
        huge = ok & (np.abs(arr) >= 2.0**63)
        ok &= ~huge
        out[ok] = np.floor(arr[ok]).astype(np.int64)
        out[huge] = np.iinfo(np.int64).max
        return out
    present = s.notna().to_numpy()
    parsed = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    bad = present & parsed.isna().to_numpy()
    what = "is not a time (expected ISO 8601 text, datetime64 or epoch seconds)"
    _report(bad, s, column, what, problems, key)
    return to_seconds(parsed, column)


def to_amounts(
    values: Any, column: str, problems: Problems | None = None, key: str | None = None
) -> np.ndarray:
    """Amounts as float64 (NaN where missing); text that is not a number ('n/a', '5,000', a
    list) raises DataError naming the row, or with `problems` is listed there."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_bool_dtype(s.dtype):
        raise data_error(
            f"{column} is a True/False column, expected amounts of money (numbers)", None, column
        )
    if not pd.api.types.is_numeric_dtype(s.dtype):
        flags = s.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        _report(flags, s, column, "is True/False, not an amount", problems, key)
        s = s.mask(flags)
        converted = pd.to_numeric(s, errors="coerce")
        bad = s.notna().to_numpy() & converted.isna().to_numpy()
        _report(bad, s, column, "is not a number", problems, key)
        s = converted
    return s.to_numpy(dtype=np.float64)


def timestamp_seconds(value: TimeLike, what: str = "time") -> int:
    """One time value as epoch seconds (UTC), floored; years 1 to 9999 (beyond pandas'
    nanosecond range too)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if value is None:
        raise _core.InvalidOptionsError(f"{what} must be a time, got None")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise _core.InvalidOptionsError(f"{what} must be a time, got {value!r} ({err})") from None
    if ts is pd.NaT:
        raise _core.InvalidOptionsError(f"{what} must be a time, got {value!r}")
    return instant_seconds(ts)


def instant_seconds(ts: pd.Timestamp) -> int:
    """A Timestamp as epoch seconds (UTC; naive ones are UTC), floored, in its own unit: no
    nanosecond overflow for years beyond 2262."""
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    dt64 = ts.to_datetime64()
    unit = np.datetime_data(dt64.dtype)[0]
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    return int(dt64.astype(np.int64)) // per_second


def option_float(value: Any, name: str) -> float:
    """A real-number option (its range is checked by the core), or InvalidOptionsError naming it."""
    if isinstance(value, (bool, np.bool_)):
        raise _core.InvalidOptionsError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _core.InvalidOptionsError(f"{name} must be a number, got {value!r}") from None


def option_int(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer option in [lo, hi], or InvalidOptionsError naming it and the range."""
    whole_float = isinstance(value, (float, np.floating)) and float(value).is_integer()
    if isinstance(value, (bool, np.bool_)) or not (
        isinstance(value, (int, np.integer)) or whole_float
    ):
        raise _core.InvalidOptionsError(
            f"{name} must be an integer in [{lo:,}, {hi:,}], got {value!r}"
        )
    v = int(value)
    if not lo <= v <= hi:
        raise _core.InvalidOptionsError(f"{name} must be an integer in [{lo:,}, {hi:,}], got {v:,}")
    return v


def duration_seconds(value: DurationLike, what: str, numbers_are: str = "seconds") -> float:
    """A duration as seconds; bare numbers are taken in the unit `numbers_are` (seconds or days)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value) * (86400.0 if numbers_are == "days" else 1.0)
    td = pd.Timedelta(value)
    if td is pd.NaT:
        raise ValueError(f"{what} must be a duration, got {value!r}")
    return td.total_seconds()


def to_timestamp(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(int(seconds), unit="s", tz="UTC")


def _unhashable(s: pd.Series) -> np.ndarray:
    """Cells that cannot be a label (a list, dict or set in a cell): a mask."""
    return np.fromiter(
        (isinstance(v, (list, dict, set, np.ndarray)) for v in s.array), dtype=bool, count=len(s)
    )


_ARROW_TEXT = ("string", "large_string")


def _arrow_chunks(s: pd.Series) -> list[tuple[Any, ...]] | None:
    """The (offsets, data, validity, offset, length) buffers of an Arrow-backed text column (the
    pandas 3 default string dtype with pyarrow, or ``pd.ArrowDtype(pa.string())``), read without
    a copy; None when the column is not one."""
    dtype = s.dtype
    arrow = (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow") or (
        isinstance(dtype, pd.ArrowDtype) and str(dtype.pyarrow_dtype) in _ARROW_TEXT
    )
    if not arrow:
        return None
    chunked = s.array.__arrow_array__()
    if str(chunked.type) not in _ARROW_TEXT:
        return None
    wide = str(chunked.type) == "large_string"
    out = []
    for chunk in chunked.chunks:
        validity, offsets, data = chunk.buffers()
        out.append(
            (
                np.frombuffer(offsets, dtype=np.int64 if wide else np.int32),
                np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8),
                None
                if validity is None or chunk.null_count == 0
                else np.frombuffer(validity, dtype=np.uint8),
                chunk.offset,
                len(chunk),
            )
        )
    return out


def _intern_text(s: pd.Series) -> tuple[np.ndarray, list[str]] | None:
    """Codes and names of a text column, interned in C++ (equal to pandas.factorize), or None
    for a column that is not text (numbers, mixed objects): the caller factorizes it."""
    chunks = _arrow_chunks(s)
    if chunks is not None:
        codes, names = _core.intern_arrow(chunks)
        return np.asarray(codes), list(names)
    if s.dtype == object or (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "python"):
        found = _core.intern_objects(s.to_numpy(), pd.NA)  # the object array itself, no copy
        if found is not None:
            codes, names = found
            return np.asarray(codes), list(names)
    return None


def codes_and_names(
    values: Any, column: str, problems: Problems | None = None, key: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """Dense int32 codes (-1 for missing) and the names they index, in order of appearance.

    A cell that cannot be a label (a list in a cell) raises DataError naming the row, or with
    `problems` is listed there and read as missing.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy(dtype=np.int32)
        names = [str(c) for c in s.cat.categories]
    elif (text := _intern_text(s)) is not None:
        codes, names = text  # valid UTF-8 by construction
        return codes, names
    else:
        try:
            raw, uniques = pd.factorize(s, use_na_sentinel=True)
        except TypeError:  # unhashable cells
            bad = _unhashable(s)
            _report(bad, s, column, "is not a label (expected text or a number)", problems, key)
            raw, uniques = pd.factorize(s.mask(bad), use_na_sentinel=True)
        codes, names = raw.astype(np.int32, copy=False), [str(u) for u in uniques]
    _check_utf8(codes, names, column)
    return codes, names


def _check_utf8(codes: np.ndarray, names: list[str], column: str) -> None:
    """Names go to C++ as UTF-8: a str that cannot be encoded (lone surrogates, as from bytes
    decoded with surrogateescape) raises DataError naming its first row."""
    for i, name in enumerate(names):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            row = int(np.flatnonzero(codes == i)[0])
            raise data_error(
                f"row {row}: {column} value {name!r} is not valid Unicode text (cannot be encoded as UTF-8)",
                row,
                column,
            ) from None


def ids(
    values: Any, column: str, problems: Problems | None = None, key: str | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """Opportunity ids: int64 ids kept as given, anything else factorized to codes + names.

    True/False are not ids (DataError). A float column (pandas' reading of integer ids with a
    blank cell) is read back as integers; ids at or beyond 2**53 have lost digits in it
    (DataError: read the column as text).
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_bool_dtype(s.dtype) or (
        s.dtype == object and len(s) and isinstance(s.iloc[0], (bool, np.bool_))
    ):
        raise data_error(
            f"{column} holds True/False, expected opportunity ids (text or integers)", None, column
        )
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64)
        present = ~np.isnan(v)
        if present.any() and np.all(np.floor(v[present]) == v[present]):
            big = present & (np.abs(np.where(present, v, 0.0)) >= 2.0**53)
            if big.any():
                r = int(np.flatnonzero(big)[0])
                raise data_error(
                    f"row {r}: {column} value {v[r]:.17g} is a float beyond 2**53: ids this long "
                    "have lost digits (read the column as text, e.g. dtype=str in read_csv)",
                    r,
                    column,
                )
            if present.all():
                return v.astype(np.int64), None
            s = pd.Series(
                [str(int(x)) if p else None for x, p in zip(v, present)], index=s.index, dtype="str"
            )
    if pd.api.types.is_integer_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        missing = s.isna().to_numpy()
        if missing.any():  # a nullable integer column with <NA>
            rows = np.flatnonzero(missing)
            if problems is None:
                raise data_error(f"row {int(rows[0])}: {column} is missing", int(rows[0]), column)
            problems.extend((int(r), key or column, f"{column} is missing") for r in rows)
            s = s.fillna(0)
        return _int64(s, column), None
    codes, names = codes_and_names(s, column, problems, key)
    return codes.astype(np.int64), names
