"""The `smartfunnel` command: a funnel report on the terminal, and as a self-contained HTML file."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

import pandas as pd

from . import __version__, datasets
from ._core import DataError, Funnel, InvalidOptionsError, UnknownStageError
from .event_log import EventLog
from .model import FitOptions
from .progress import Progress
from .report import build_report


def _read_long_csv(args: argparse.Namespace, bar: Progress) -> tuple[EventLog, str]:
    """Long CSV files (one row per stage event) with the column options of the command."""
    if not args.stages:
        raise _UsageError("--stages is required for a CSV input (e.g. --stages A,B,C)")
    funnel = Funnel(args.stages.split(","), won=args.won.split(","), lost=args.lost.split(","))
    frames = []
    for i, path in enumerate(args.input):
        bar.update(0.2 * i / len(args.input), f"reading {pathlib.Path(path).name}")
        frames.append(pd.read_csv(path))
    frame = pd.concat(frames, ignore_index=True)
    log = EventLog.from_frame(
        funnel, frame, opportunity=args.opportunity, stage=args.stage, time=args.time
    )
    return log, ", ".join(args.input)


class _UsageError(Exception):
    pass


def _report(args: argparse.Namespace) -> int:
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    bar = Progress("smartfunnel report", enabled=enabled)
    try:
        with bar:
            if args.sample:
                log = datasets.sample().log
                title = "bundled sample (simulated, 2,000 opportunities)"
            elif not args.input:
                raise _UsageError("give INPUT files or --sample")
            else:
                log, title = _read_long_csv(args, bar)
            report = build_report(
                log,
                options=FitOptions(as_of=args.as_of, prior=args.prior, level=args.level),
                period=tuple(args.period) if args.period else None,
                target=args.target,
                title=title,
                scenarios=args.scenarios,
                seed=args.seed,
                progress=bar.section(0.2, 0.9),
            )
            if args.output:
                bar.update(0.9, "writing HTML")
                report.save(args.output)
    except _UsageError as err:
        print(f"smartfunnel report: {err}", file=sys.stderr)
        return 2
    except (DataError, UnknownStageError, InvalidOptionsError, FileNotFoundError) as err:
        print(f"smartfunnel report: {err}", file=sys.stderr)
        return 1
    print(report.to_text())
    if args.output:
        print(f"\nHTML report: {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="smartfunnel", description="Censoring-aware sales funnel models."
    )
    parser.add_argument("--version", action="version", version=f"smartfunnel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "report",
        help="fit a funnel, forecast and coach; print a summary and optionally write HTML",
    )
    rep.add_argument("input", nargs="*", help="CSV files in long format (one row per stage event)")
    rep.add_argument("--sample", action="store_true", help="use the bundled sample data")
    rep.add_argument(
        "-o",
        "--output",
        metavar="REPORT.html",
        help="write a self-contained HTML report (charts inline, viewable offline)",
    )
    rep.add_argument(
        "--as-of", dest="as_of", default=None, help="analysis date (default: last event)"
    )
    rep.add_argument("--prior", type=float, default=1.0, help="Dirichlet prior concentration")
    rep.add_argument("--level", type=float, default=0.9, help="interval level (default 0.9)")
    rep.add_argument(
        "--period",
        nargs=2,
        metavar=("START", "END"),
        help="forecast period, whole days, end inclusive (default: the 90 days after as-of)",
    )
    rep.add_argument(
        "--target", type=float, default=None, help="revenue target: report P(revenue >= target)"
    )
    rep.add_argument(
        "--scenarios",
        type=int,
        default=0,
        help="Monte Carlo scenarios beside the exact forecast (default 0: exact only)",
    )
    rep.add_argument("--seed", type=int, default=0, help="Monte Carlo seed")
    rep.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: only when stderr is a terminal)",
    )
    rep.add_argument("--stages", help="comma-separated open stages, in order (CSV input)")
    rep.add_argument("--won", default="Won", help="comma-separated won names")
    rep.add_argument("--lost", default="Lost", help="comma-separated lost names")
    rep.add_argument("--opportunity", default="opportunity_id", help="opportunity id column")
    rep.add_argument("--stage", default="stage", help="stage column")
    rep.add_argument("--time", default="time", help="time column")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
