"""The `smartfunnel` command: a funnel report on the terminal, and as a self-contained HTML file.

Every user error (an option out of range, a date that is none, a file that cannot be read, data
that cannot be used) is one line on standard error naming what was wrong and what was expected,
with exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import pandas as pd

from . import __version__, datasets, imports
from ._core import DataError, Funnel, InvalidOptionsError, UnknownStageError
from .model import FitOptions
from .progress import Progress
from .report import build_report

USAGE_ERROR = 2
"""Exit status of every user error (bad option, unreadable file, unusable data)."""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


# -- option values: each checked where it is parsed, named in the message -------------------------


def _number(
    what: str, *, low: float | None = 0.0, high: float | None = None, open_low: bool = False
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number (expected {what})"
            ) from None
        bad = not math.isfinite(x)
        bad |= low is not None and (x <= low if open_low else x < low)
        bad |= high is not None and x > high
        if bad:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range (expected {what})")
        return x

    return parse


def _integer(what: str, *, low: int = 0, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number (expected {what})"
            ) from None
        if n < low or (high is not None and n > high):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range (expected {what})")
        return n

    return parse


def _date(text: str) -> str:
    try:
        when = pd.Timestamp(text)
    except (ValueError, OverflowError, TypeError):
        when = None
    if when is None or pd.isna(when):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (expected e.g. 2024-03-31 or 2024-03-31T18:00)"
        )
    low, high = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31")  # periods stay in range
    naive = when.tz_convert(None) if when.tzinfo is not None else when
    if not low <= naive <= high:
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range (expected a date from {low:%Y-%m-%d} to {high:%Y-%m-%d})"
        )
    return text


def _mark(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        mark = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "dot": "."}.get(
            text, text
        )
        if len(mark) != 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not one character (expected {what})")
        return mark

    return parse


def _stage_pair(text: str) -> tuple[str, str]:
    old, eq, new = text.partition("=")
    if not eq or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not OLD=NEW (expected e.g. 'Discovery=Demo')"
        )
    return old.strip(), new.strip()


def _time_format(text: str) -> str:
    if text not in ("mixed", "ISO8601") and "%" not in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is no strptime format (expected e.g. '%d/%m/%Y', '%m/%d/%Y %H:%M' or "
            "'mixed')"
        )
    return text


def _utc(text: str) -> pd.Timestamp:
    when = pd.Timestamp(text)
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


# -- reading -------------------------------------------------------------------------------------


def _check_inputs(paths: Sequence[str]) -> None:
    """Each INPUT exists and is a non-empty file or a folder, before anything is parsed."""
    for p in map(pathlib.Path, paths):
        if p.is_symlink() and not p.exists():
            raise _UsageError(
                f"INPUT {str(p)!r}: a symbolic link to nothing (or in a loop); expected a CSV "
                "export or a folder"
            )
        if not p.exists():
            hint = "" if p.parent.exists() else f" (folder {str(p.parent)!r} does not exist)"
            raise _UsageError(f"INPUT {str(p)!r}: no such file or folder{hint}")
        if p.is_dir():
            continue
        if not p.is_file():
            raise _UsageError(f"INPUT {str(p)!r}: not a regular file (expected a CSV export)")
        if p.stat().st_size == 0:
            raise _UsageError(
                f"INPUT {str(p)!r}: the file is empty (0 bytes; expected a CSV export)"
            )
        if not os.access(p, os.R_OK):
            raise _UsageError(f"INPUT {str(p)!r}: not readable (permission denied)")


def _read(args: argparse.Namespace, bar: Progress) -> imports.Imported:
    """INPUT files through :func:`smartfunnel.imports.read` (the format is recognised from the
    columns), or, when column names are given, long CSV files through ``from_long``."""
    funnel = None
    if args.stages:
        funnel = Funnel(args.stages.split(","), won=args.won.split(","), lost=args.lost.split(","))
    stage_map = dict(args.stage_map) if args.stage_map else None
    named = {k: getattr(args, k) for k in ("opportunity", "stage", "time", "amount", "owner")}
    if not any(named.values()):
        return imports.read(
            args.input,
            funnel=funnel,
            as_of=args.as_of,
            progress=bar.part(0.0, 0.2, "reading"),
            sep=args.sep,
            decimal=args.decimal,
            dayfirst=args.dayfirst,
            time_format=args.time_format,
            stage_map=stage_map,
            after_terminal=args.after_terminal,
            pipeline=args.pipeline,
        )
    frames = []
    files = [f for p in args.input for f in _csv_files(p)]
    notes = []
    for i, path in enumerate(files):
        bar.update(0.2 * i / len(files), f"reading {path.name}")
        sep, decimal = imports.sniff_csv(path, args.sep)
        decimal = args.decimal or decimal
        if (args.sep is None and sep != ",") or (args.decimal is None and decimal != "."):
            notes.append(
                (
                    path.name,
                    f"read with separator {sep!r} and decimal mark {decimal!r} (sniffed "
                    "from the file; --sep / --decimal to choose)",
                )
            )
        frames.append(imports._read_csv(path, sep=sep, decimal=decimal))  # ids as text
    frame = pd.concat(frames, ignore_index=True)
    imp = imports.from_long(
        frame,
        funnel,
        opportunity=named["opportunity"] or "opportunity_id",
        stage=named["stage"] or "stage",
        time=named["time"] or "time",
        amount=named["amount"],
        owner=named["owner"],
        table=", ".join(p.name for p in files),
        stage_map=stage_map,
        time_format=args.time_format,
        dayfirst=args.dayfirst,
        after_terminal="reopen" if args.after_terminal == "reopen" else "error",
    )
    if notes:
        extra = pd.DataFrame(
            [
                {"table": t, "row": None, "id": None, "column": None, "value": None}
                | {"action": "note", "reason": why}
                for t, why in notes
            ],
            columns=imports.QUALITY_COLUMNS,
        )
        quality = pd.concat([extra.astype(object), imp.quality.astype(object)], ignore_index=True)
        quality["row"] = quality["row"].astype("Int64")
        imp = dataclasses.replace(imp, quality=quality)
    return imp


def _csv_files(path: str) -> list[pathlib.Path]:
    p = pathlib.Path(path)
    if not p.is_dir():
        return [p]
    found = sorted(p.glob("*.csv"))
    if not found:
        raise _UsageError(f"INPUT {path!r}: no CSV files in the folder")
    return found


def _check_dates(args: argparse.Namespace, log: Any, as_of: Any) -> None:
    """--as-of and --period against the data: no analysis before the first event."""
    if log.n_events == 0:
        return
    first, last = log.first_time, log.last_time
    if args.as_of is not None and _utc(args.as_of) < first:
        raise _UsageError(
            f"--as-of {args.as_of} is before the data (first event {first:%Y-%m-%d}, last "
            f"{last:%Y-%m-%d}): nothing would be known then; expected a date from "
            f"{first:%Y-%m-%d} on"
        )
    if args.period:
        start, end = (_utc(d) for d in args.period)
        if end < start:
            raise _UsageError(
                f"--period {args.period[0]} {args.period[1]}: the end is before the start "
                "(expected START END, end inclusive)"
            )


def _check_groups(groups: Sequence[str], log: Any) -> None:
    names = [str(a[0]) for a in log.core.attributes]
    for g in groups:
        if g not in names:
            raise _UsageError(
                f"--groups {g!r} is no attribute of the data (attributes: "
                f"{', '.join(names) or 'none'}; expected comma-separated attribute names)"
            )


# -- the command ---------------------------------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    bar = Progress("smartfunnel report", enabled=enabled)
    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else []
    with bar:
        activities, issues, as_of = None, None, args.as_of
        if args.sample:
            if args.input:
                raise _UsageError("give INPUT files or --sample, not both")
            log = datasets.sample().log
            title = "bundled sample (simulated, 2,000 opportunities)"
        elif not args.input:
            raise _UsageError("give INPUT files or folders, or --sample")
        else:
            _check_inputs(args.input)
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
        _check_dates(args, log, as_of)
        if groups:
            _check_groups(groups, log)
        report = build_report(
            log,
            activities=activities,
            issues=issues,
            options=FitOptions(as_of=as_of, prior=args.prior, level=args.level, groups=groups),
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
    print(report.to_text())
    if args.output:
        print(f"\nHTML report: {args.output}")
    return 0


def _one_line(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    if isinstance(err, OSError) and err.filename is not None:
        text = f"{err.filename}: {err.strerror or text}"
    if isinstance(err, UnicodeDecodeError):
        text = f"a file is not UTF-8 text ({err.reason} at byte {err.start}; expected a CSV export)"
    if isinstance(err, pd.errors.EmptyDataError):
        text = f"a file has no columns ({text}; expected a CSV export with a header line)"
    return " ".join(text.split()) or type(err).__name__


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="smartfunnel", description="Censoring-aware sales funnel models.")
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
        "--as-of",
        dest="as_of",
        type=_date,
        default=None,
        help="analysis date (default: last event)",
    )
    rep.add_argument(
        "--prior",
        type=_number("a prior concentration >= 0"),
        default=1.0,
        help="Dirichlet prior concentration",
    )
    rep.add_argument(
        "--level",
        type=_number("an interval level between 0 and 1, e.g. 0.9", open_low=True, high=0.999999),
        default=0.9,
        help="interval level (default 0.9)",
    )
    rep.add_argument(
        "--period",
        nargs=2,
        type=_date,
        metavar=("START", "END"),
        help="forecast period, whole days, end inclusive (default: the 90 days after as-of)",
    )
    rep.add_argument(
        "--target",
        type=_number("a revenue target >= 0, e.g. 1.5e6"),
        default=None,
        help="revenue target: report P(revenue >= target)",
    )
    rep.add_argument(
        "--scenarios",
        type=_integer("a number of scenarios >= 0"),
        default=0,
        help="Monte Carlo scenarios beside the exact forecast (default 0: exact only)",
    )
    rep.add_argument(
        "--seed",
        type=_integer("a seed from 0 to 2**64 - 1", high=2**64 - 1),
        default=0,
        help="Monte Carlo seed",
    )
    rep.add_argument(
        "--backtest",
        type=_integer("a number of past periods >= 0"),
        default=0,
        metavar="N",
        help="replay the forecast over the N past periods of the same length and compare with "
        "what was won (default 0: none)",
    )
    rep.add_argument(
        "--stale-after",
        dest="stale_after",
        type=_number("a number of days > 0", open_low=True),
        default=None,
        metavar="DAYS",
        help="count a deal as lost once it has been DAYS days in a stage (default: none; deals "
        "older than every stay that left their stage are then scored by extrapolation)",
    )
    rep.add_argument(
        "--groups",
        metavar="A,B",
        help="fit by these attributes (comma-separated, e.g. regional_office), each group's rates "
        "shrunk toward the whole funnel",
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
    reading = rep.add_argument_group("reading the export")
    reading.add_argument(
        "--sep",
        type=_mark("one character, e.g. ';' or tab"),
        metavar="CHAR",
        help="column separator (default: sniffed per file among , ; tab |, said in a note)",
    )
    reading.add_argument(
        "--decimal",
        type=_mark("'.' or ','"),
        choices=[".", ","],
        metavar="MARK",
        help="decimal mark of numbers (default: sniffed, a comma only with another separator)",
    )
    reading.add_argument(
        "--time-format",
        dest="time_format",
        type=_time_format,
        metavar="FORMAT",
        help="strptime format of the times, e.g. '%%m/%%d/%%Y' (US) or '%%d.%%m.%%Y %%H:%%M', or "
        "'mixed' (default: ISO 8601)",
    )
    reading.add_argument(
        "--dayfirst",
        action="store_true",
        help="times are day-first (01/02/2024 is 1 February); the format is taken from the data",
    )
    reading.add_argument(
        "--stage-map",
        dest="stage_map",
        type=_stage_pair,
        action="append",
        metavar="OLD=NEW",
        help="rename a stage (repeatable); names are trimmed of surrounding spaces first",
    )
    reading.add_argument(
        "--after-terminal",
        dest="after_terminal",
        choices=["reopen", "reject"],
        default=None,
        help="a stage event after Won/Lost reopens the deal, or is rejected (default: the "
        "format's rule; long CSV: reject, Salesforce: reopen)",
    )
    reading.add_argument(
        "--pipeline", help="the HubSpot pipeline to read when the export has several"
    )
    long_csv = rep.add_argument_group(
        "long CSV with other column names (default: recognised by their usual names)"
    )
    long_csv.add_argument("--opportunity", help="opportunity id column")
    long_csv.add_argument("--stage", help="stage column")
    long_csv.add_argument("--time", help="time column")
    long_csv.add_argument("--amount", help="amount column")
    long_csv.add_argument("--owner", help="owner (rep) column")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, or 2 for a user error)."""
    args = _parser().parse_args(argv)
    if args.command != "report":  # pragma: no cover - argparse requires a known command
        return USAGE_ERROR
    try:
        return _report(args)
    except (UnicodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        names = ", ".join(map(str, args.input)) or "the input"
        print(f"smartfunnel report: reading {names}: {_one_line(err)}", file=sys.stderr)
        return USAGE_ERROR
    except (
        _UsageError,
        DataError,
        UnknownStageError,
        InvalidOptionsError,
        OSError,
        ValueError,
        KeyError,
        OverflowError,
    ) as err:
        print(f"smartfunnel report: {_one_line(err)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("smartfunnel report: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
