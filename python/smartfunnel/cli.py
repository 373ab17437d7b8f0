"""The `smartfunnel` command: a funnel report on the terminal, and as a self-contained HTML file."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

import pandas as pd

from . import __version__, datasets, imports
from ._core import DataError, Funnel, InvalidOptionsError, UnknownStageError
from .model import FitOptions
from .progress import Progress
from .report import build_report


def _read(args: argparse.Namespace, bar: Progress) -> imports.Imported:
    """INPUT files through :func:`smartfunnel.imports.read` (the format is recognised from the
    columns), or, when column names are given, long CSV files through ``from_long``."""
    funnel = None
    if args.stages:
        funnel = Funnel(args.stages.split(","), won=args.won.split(","), lost=args.lost.split(","))
    named = {k: getattr(args, k) for k in ("opportunity", "stage", "time", "amount", "owner")}
    if not any(named.values()):
        return imports.read(
            args.input, funnel=funnel, as_of=args.as_of, progress=bar.part(0.0, 0.2, "reading")
        )
    frames = []
    for i, path in enumerate(args.input):
        bar.update(0.2 * i / len(args.input), f"reading {pathlib.Path(path).name}")
        frames.append(pd.read_csv(path, low_memory=False))
    frame = pd.concat(frames, ignore_index=True)
    return imports.from_long(
        frame,
        funnel,
        opportunity=named["opportunity"] or "opportunity_id",
        stage=named["stage"] or "stage",
        time=named["time"] or "time",
        amount=named["amount"],
        owner=named["owner"],
        table=", ".join(pathlib.Path(p).name for p in args.input),
    )


class _UsageError(Exception):
    pass


def _report(args: argparse.Namespace) -> int:
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    bar = Progress("smartfunnel report", enabled=enabled)
    try:
        with bar:
            activities, issues, as_of = None, None, args.as_of
            if args.sample:
                log = datasets.sample().log
                title = "bundled sample (simulated, 2,000 opportunities)"
            elif not args.input:
                raise _UsageError("give INPUT files or --sample")
            else:
                imp = _read(args, bar)
                log, activities, issues = imp.log, imp.activities, imp.quality
                as_of = args.as_of if args.as_of is not None else imp.as_of
                names = ", ".join(pathlib.Path(p).name for p in args.input)
                title = f"{imp.source}: {names}"
                if log.n_events == 0:
                    rejected = issues[issues["action"] == "rejected"]
                    reasons = "; ".join(dict.fromkeys(rejected["reason"].astype(str)))
                    raise DataError(
                        f"no usable events in {', '.join(args.input)}: {len(rejected):,} rows "
                        f"rejected ({reasons or 'no rows'})"
                    )
            report = build_report(
                log,
                activities=activities,
                issues=issues,
                options=FitOptions(as_of=as_of, prior=args.prior, level=args.level),
                period=tuple(args.period) if args.period else None,
                target=args.target,
                title=title,
                scenarios=args.scenarios,
                seed=args.seed,
                backtest_periods=args.backtest,
                stale_after_days=args.stale_after,
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
    rep.add_argument(
        "input",
        nargs="*",
        help="CRM export files or folders, format recognised from the columns: long CSV (one row "
        "per stage change, optional activities file), Salesforce, HubSpot, Maven, Olist...",
    )
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
        "--backtest",
        type=int,
        default=0,
        metavar="N",
        help="replay the forecast over the N past periods of the same length and compare with "
        "what was won (default 0: none)",
    )
    rep.add_argument(
        "--stale-after",
        dest="stale_after",
        type=float,
        default=None,
        metavar="DAYS",
        help="count a deal as lost once it has been DAYS days in a stage (default: none; deals "
        "older than every stay that left their stage are then scored by extrapolation)",
    )
    rep.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: only when stderr is a terminal)",
    )
    rep.add_argument(
        "--stages",
        help="comma-separated open stages, in order (default: the export's, or inferred)",
    )
    rep.add_argument("--won", default="Won", help="comma-separated won names (with --stages)")
    rep.add_argument("--lost", default="Lost", help="comma-separated lost names (with --stages)")
    long_csv = rep.add_argument_group(
        "long CSV with other column names (default: recognised by their usual names)"
    )
    long_csv.add_argument("--opportunity", help="opportunity id column")
    long_csv.add_argument("--stage", help="stage column")
    long_csv.add_argument("--time", help="time column")
    long_csv.add_argument("--amount", help="amount column")
    long_csv.add_argument("--owner", help="owner (rep) column")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
