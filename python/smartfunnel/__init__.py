"""smartfunnel: censoring-aware B2B sales funnel models.

Turn a CRM's stage history into honest stage conversion probabilities (with intervals, per rep and
segment), win probabilities and time in stage; forecasts and coaching build on the same model.

>>> import smartfunnel as sf
>>> sample = sf.datasets.sample()
>>> model = sf.fit(sample.log)
>>> round(float(model.win_probability()["Negotiation"]), 1) > 0
True
"""

from __future__ import annotations

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - only without a built extension
    raise ImportError(
        "smartfunnel's compiled module smartfunnel._core is missing or failed to load "
        f"({exc}). Install the package with `pip install .` from a source checkout "
        "(it builds the C++ extension), not by putting python/ on sys.path."
    ) from exc

from . import datasets, imports
from ._core import (
    ArchiveError,
    CancelledError,
    CorruptArchiveError,
    DataError,
    Funnel,
    IncompatibleMergeError,
    InvalidFunnelError,
    InvalidOptionsError,
    NewerArchiveFormatError,
    SingularChainError,
    UnknownOpportunityError,
    UnknownStageError,
    WrongArchiveTypeError,
)
from .backtesting import Backtest, backtest
from .coaching import ActivityLog, Coaching, coaching
from .event_log import EventLog
from .flow import pipeline_flow
from .forecasting import Calibration, Forecast, forecast
from .model import FitOptions, FunnelModel, fit, merge
from .persistence import load
from .planning import plan
from .report import Report, build_report

__version__: str = _core.__version__

__all__ = [
    "ActivityLog",
    "ArchiveError",
    "Backtest",
    "Calibration",
    "CancelledError",
    "Coaching",
    "CorruptArchiveError",
    "DataError",
    "EventLog",
    "FitOptions",
    "Forecast",
    "Funnel",
    "FunnelModel",
    "IncompatibleMergeError",
    "InvalidFunnelError",
    "InvalidOptionsError",
    "NewerArchiveFormatError",
    "Report",
    "SingularChainError",
    "UnknownOpportunityError",
    "UnknownStageError",
    "WrongArchiveTypeError",
    "__version__",
    "backtest",
    "build_report",
    "coaching",
    "datasets",
    "fit",
    "forecast",
    "imports",
    "load",
    "merge",
    "pipeline_flow",
    "plan",
]
