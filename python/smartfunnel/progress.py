"""A tiny, dependency-free progress bar for long work on a terminal.

``Progress`` draws one line on a stream (standard error by default) when that stream is a terminal,
and stays silent otherwise (pipes, files, CI logs), so output captured by other programs is clean.
An instance is callable with the fraction done and returns True, which is the signature of the
``progress`` callbacks of :func:`smartfunnel.forecast` and :func:`smartfunnel.backtest`::

    with Progress("forecast") as bar:
        sf.forecast(model, log, start, end, scenarios=100_000, progress=bar)

:meth:`Progress.part` maps a sub-task's fractions onto a share of the bar, so one bar can follow a
job made of several steps (reading, fitting, forecasting, ...).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TextIO


class Progress:
    """A one-line progress bar: ``label [#########.........]  45% step``.

    Parameters
    ----------
    label : str
        Printed before the bar.
    stream : file-like, optional
        A text stream to draw on (default: ``sys.stderr`` at the time of each draw).
    enabled : bool, optional
        Draw or not; default: only when `stream` is a terminal (``stream.isatty()``).
    width : int
        Characters of the bar itself.

    Notes
    -----
    Redraws only when the shown percentage or step changes (no timers, no threads), so a callback
    called millions of times costs a comparison each. Safe to call from several threads.
    """

    def __init__(
        self,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 30,
    ):
        self.label = label
        self._stream = stream
        self.width = max(1, int(width))
        if enabled is None:
            enabled = _isatty(self.stream)
        self.enabled = bool(enabled)
        self.fraction = 0.0
        self.step = ""
        self._shown: tuple[int, str] | None = None
        self._drawn = False
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def update(self, fraction: float, step: str | None = None) -> None:
        """Set the fraction done (clipped to [0, 1]) and optionally the current step's name."""
        with self._lock:
            f = float(fraction)
            self.fraction = min(1.0, max(0.0, f)) if f == f else self.fraction
            if step is not None:
                self.step = step
            if not self.enabled:
                return
            shown = (int(self.fraction * 100), self.step)
            if shown == self._shown:
                return
            self._shown = shown
            filled = round(self.fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"{self.label} [{bar}] {shown[0]:3d}%"
            if self.step:
                text += f" {self.step}"
            # \r back to the line's start, \x1b[K clears what a longer previous line left.
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()
            self._drawn = True

    def __call__(self, fraction: float) -> bool:
        """Callback form: update and return True (continue); usable as a ``progress=`` argument."""
        self.update(fraction)
        return True

    def part(self, start: float, end: float, step: str | None = None) -> Callable[[float], bool]:
        """A callback for a sub-task covering ``[start, end]`` of the bar (sets the step name)."""
        if step is not None:
            self.update(start, step)

        def callback(fraction: float) -> bool:
            self.update(start + (end - start) * min(1.0, max(0.0, float(fraction))))
            return True

        return callback

    def section(self, start: float, end: float) -> ProgressSection:
        """A view of ``[start, end]`` of this bar with the same ``part`` / callback interface, for
        handing to a function that reports its own progress from 0 to 1."""
        return ProgressSection(self, start, end)

    def close(self) -> None:
        """End the line (only when something was drawn)."""
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.update(1.0)
        self.close()

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "silent"
        return f"Progress({self.label!r}, {self.fraction:.0%}, {state})"


class ProgressSection:
    """A share ``[start, end]`` of a :class:`Progress`, addressed from 0 to 1; made by
    :meth:`Progress.section`. Same ``part`` and callback interface as the bar."""

    def __init__(self, bar: Progress, start: float, end: float):
        self.bar, self.start, self.end = bar, start, end

    def _at(self, fraction: float) -> float:
        return self.start + (self.end - self.start) * min(1.0, max(0.0, float(fraction)))

    def part(self, start: float, end: float, step: str | None = None) -> Callable[[float], bool]:
        return self.bar.part(self._at(start), self._at(end), step)

    def __call__(self, fraction: float) -> bool:
        self.bar.update(self._at(fraction))
        return True


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False
