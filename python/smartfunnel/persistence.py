"""Loading what ``save`` wrote: ``sf.load(path)``.

Every public object saves with ``obj.save(path, format="binary")`` ("binary", "text" or "xml")
and pickles through the same archives, so objects travel to worker processes. A file of another
kind, a newer format, a truncated or damaged file raises an :class:`ArchiveError` subclass; a
missing file raises :class:`FileNotFoundError`.

The archive's payload is the truth: the Python package's metadata beside it (the options as given,
a log's column names) is used only where it agrees with what the payload holds, and a forged or
damaged note that disagrees is a :class:`CorruptArchiveError`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Union

from . import _core
from .event_log import EventLog
from .model import FitOptions, FunnelModel, _options_from_archive

Persistent = Union[_core.Funnel, EventLog, FitOptions, FunnelModel, _core.FitStatistics]

#: The compiled options a FitOptions field becomes (the others keep their names).
_CORE_NAME = {"tick": "tick_seconds", "half_life": "half_life_seconds"}


def load(path: str | os.PathLike[str]) -> Persistent:
    """Load the object a file holds (its type comes from the file).

    Parameters
    ----------
    path : str or path-like
        A file written by ``save`` of a :class:`Funnel`, :class:`EventLog`, :class:`FitOptions`,
        :class:`FunnelModel` or ``FitStatistics`` (from Python or C++).

    Returns
    -------
    Funnel, EventLog, FitOptions, FunnelModel or FitStatistics

    Raises
    ------
    WrongArchiveTypeError, NewerArchiveFormatError, CorruptArchiveError
        The file holds an object Python has no class for, was written by a newer smartfunnel, or
        is not a smartfunnel archive, truncated or damaged (all are :class:`ArchiveError`); also
        CorruptArchiveError when a name in it is not UTF-8 text, its options are invalid, or the
        metadata disagrees with the object (options, column names).
    FileNotFoundError, OSError
        The file cannot be read.
    """
    obj, metadata = _core.load(path)
    meta = _metadata(metadata)
    where = os.fspath(path)
    if isinstance(obj, _core.EventLog):
        _check_class(meta, "EventLog", where)
        _check_columns(obj, meta, where)
        return EventLog._from_archive(obj, meta)
    if isinstance(obj, _core.FunnelModel):
        _check_class(meta, "FunnelModel", where)
        return FunnelModel(obj, _checked_options(obj.options, meta, where))
    if isinstance(obj, _core.FitOptions):
        _check_class(meta, "FitOptions", where)
        return _checked_options(obj, meta, where)
    if isinstance(obj, _core.FitStatistics):
        return obj
    assert isinstance(obj, _core.Funnel)
    return obj


def _metadata(raw: bytes) -> dict[str, Any]:
    """The Python package's metadata (a JSON object in UTF-8); anything else is a C++ caller's note,
    ignored (the object is then described by its payload alone)."""
    try:
        meta = json.loads(raw.decode("utf-8")) if raw else {}
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both
        return {}
    return meta if isinstance(meta, dict) else {}


def _corrupt(where: str, what: str) -> _core.CorruptArchiveError:
    return _core.CorruptArchiveError(f"corrupt archive {where!r}: {what}")


def _check_class(meta: dict[str, Any], expected: str, where: str) -> None:
    cls = meta.get("class", expected)
    if cls != expected:
        raise _corrupt(
            where, f"the metadata describes a {cls!r} but the archive holds a {expected}"
        )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _checked_options(core: _core.FitOptions, meta: dict[str, Any], where: str) -> FitOptions:
    """The FitOptions of a loaded archive, from the compiled options in its payload: valid, and
    the options as given (the metadata) only where they compile to exactly these."""
    try:
        core.validate()
    except _core.InvalidOptionsError as err:
        raise _corrupt(where, f"its fit options are invalid: {err}") from None
    options = _options_from_archive(core, meta)
    try:
        compiled = options.to_core()
    except (ValueError, TypeError, OverflowError) as err:
        raise _corrupt(where, f"the fit options in its metadata do not compile: {err}") from None
    for field in FitOptions.__dataclass_fields__:
        name = _CORE_NAME.get(field, field)
        given, stored = getattr(compiled, name), getattr(core, name)
        if field == "as_of" and getattr(options, field) is None:
            continue  # None is "the end of the log": the payload holds the time it resolved to
        if not _same(given, stored):
            raise _corrupt(
                where,
                f"the metadata gives fit option {field}={getattr(options, field)!r} "
                f"({name}={given!r}) but the options in the archive have {name}={stored!r}",
            )
    return options


def _check_columns(core: _core.EventLog, meta: dict[str, Any], where: str) -> None:
    """A log's column names in the metadata must be names (str) and agree with the log itself:
    the same attributes in the same order, and a column for amounts, owners and close dates the
    log holds."""
    if "columns" not in meta:
        return
    cols = meta["columns"]
    if not isinstance(cols, dict):
        raise _corrupt(where, f"the metadata's columns are not a mapping: {cols!r}")
    for key in ("opportunity", "stage", "time"):
        if not isinstance(cols.get(key), str):
            raise _corrupt(where, f"the metadata's {key} column is not a name: {cols.get(key)!r}")
    for key in ("amount", "owner", "close_date", "created"):
        if not (cols.get(key) is None or isinstance(cols[key], str)):
            raise _corrupt(where, f"the metadata's {key} column is not a name: {cols[key]!r}")
    held = {
        "amount": core.has_amounts,
        "owner": core.has_owners,
        "close_date": len(core.close_date_history[1]) > 0,
    }
    for key, has in held.items():
        if has and cols.get(key) is None:
            raise _corrupt(
                where, f"the log holds {key} values but the metadata names no {key} column"
            )
    attributes = [str(a[0]) for a in core.attributes]
    given = cols.get("attributes", [])
    if not isinstance(given, list) or given != attributes:
        raise _corrupt(
            where,
            f"the metadata names attribute columns {given!r} but the log holds {attributes!r}",
        )
