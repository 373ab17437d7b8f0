"""Loading what ``save`` wrote: ``sf.load(path)``.

Every public object saves with ``obj.save(path, format="binary")`` ("binary", "text" or "xml")
and pickles through the same archives, so objects travel to worker processes. A file of another
kind, a newer format, a truncated or damaged file raises an :class:`ArchiveError` subclass; a
missing file raises :class:`FileNotFoundError`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Union

from . import _core
from .event_log import EventLog
from .model import FitOptions, FunnelModel, _options_from_archive

Persistent = Union[_core.Funnel, EventLog, FitOptions, FunnelModel, _core.FitStatistics]


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
        is not a smartfunnel archive, truncated or damaged (all are :class:`ArchiveError`).
    FileNotFoundError, OSError
        The file cannot be read.
    """
    obj, metadata = _core.load(path)
    meta = _metadata(metadata)
    if isinstance(obj, _core.EventLog):
        return EventLog._from_archive(obj, meta)
    if isinstance(obj, _core.FunnelModel):
        return FunnelModel(obj, _options_from_archive(obj.options, meta))
    if isinstance(obj, _core.FitOptions):
        return _options_from_archive(obj, meta)
    if isinstance(obj, _core.FitStatistics):
        return obj
    assert isinstance(obj, _core.Funnel)
    return obj


def _metadata(text: str) -> dict[str, Any]:
    """The Python package's metadata (JSON); anything else (a C++ caller's note) is ignored."""
    try:
        meta = json.loads(text) if text else {}
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}
