"""The `smartfunnel` command: a funnel report on the terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

from . import __version__, datasets
from ._core import Funnel
from .event_log import EventLog
from .forecasting import Forecast, forecast
from .model import FitOptions, FunnelModel, fit


def _format_report(model: FunnelModel, title: str) -> str:
    lines = [f"smartfunnel {__version__} — {title}", repr(model), ""]
    summary = model.stage_summary()
    tis = model.time_in_stage()
    table = pd.DataFrame(
        {
            "deals": summary["n"],
            "open": summary["censored"],
            "P(win)": summary["p_win"].map("{:.1%}".format),
            f"{model.options.level:.0%} interval": [
                f"{lo:.1%} – {hi:.1%}"
                for lo, hi in zip(summary["p_win_low"], summary["p_win_high"])
            ],
            "median days": tis["median_days"].map("{:.0f}".format),
            "days to win": summary["days_to_win"].map("{:.0f}".format),
        }
    )
    lines += ["Win probability by stage (censoring-aware, absorbing chain):", table.to_string(), ""]
    tm = model.transition_matrix()
    lines += [
        "Where deals go next (smoothed transition probabilities):",
        tm.to_string(float_format="{:.2f}".format),
        "",
    ]
    s = model.summary.reset_index()
    adv = (
        s[s["outcome"] != "open"]
        .groupby(["stage", "outcome"], sort=False)[["p", "naive"]]
        .sum()
        .unstack()
    )
    lines += [
        "Censoring-aware vs closed-only (naive) outcome rates per stage:",
        adv.to_string(float_format="{:.2f}".format),
    ]
    return "\n".join(lines)


def _format_forecast(fc: Forecast, target: float | None) -> str:
    q = fc.quantiles([0.1, 0.5, 0.9])
    lines = [
        f"Forecast of revenue won {fc.start:%Y-%m-%d} .. {fc.end:%Y-%m-%d} (as of {fc.as_of:%Y-%m-%d}, "
        "time-bounded probabilities, arrivals included):",
        f"  expected {fc.expected:,.0f}   P10 {q[0.1]:,.0f}   P50 {q[0.5]:,.0f}   P90 {q[0.9]:,.0f}",
        f"  realised so far {fc.realised:,.0f}; open pipeline {fc.exact_pipeline.mean - fc.realised:,.0f}; "
        f"new deals {fc.arrivals['expected'].sum():,.0f}",
    ]
    if target is not None:
        lines.append(f"  P(revenue >= {target:,.0f}) = {fc.probability_at_least(target):.1%}")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    options = FitOptions(as_of=args.as_of, prior=args.prior)
    if args.sample:
        sim = datasets.sample()
        log, title = sim.log, "bundled sample (simulated, 2,000 opportunities)"
    else:
        if not args.input:
            print("smartfunnel report: give INPUT files or --sample", file=sys.stderr)
            return 2
        if not args.stages:
            print(
                "smartfunnel report: --stages is required for a CSV input (e.g. --stages A,B,C)",
                file=sys.stderr,
            )
            return 2
        funnel = Funnel(args.stages.split(","), won=args.won.split(","), lost=args.lost.split(","))
        frame = pd.concat([pd.read_csv(p) for p in args.input], ignore_index=True)
        log = EventLog.from_frame(
            funnel, frame, opportunity=args.opportunity, stage=args.stage, time=args.time
        )
        title = ", ".join(args.input)
    model = fit(log, options)
    print(_format_report(model, title))
    if args.period:
        start, end = args.period
    else:  # the 90 days after the analysis date
        start = model.as_of.normalize() + pd.Timedelta(days=1)
        end = start + pd.Timedelta(days=89)
    fc = forecast(model, log, start=start, end=end, scenarios=0)
    print()
    print(_format_forecast(fc, args.target))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="smartfunnel", description="Censoring-aware sales funnel models."
    )
    parser.add_argument("--version", action="version", version=f"smartfunnel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="fit a funnel and print its summary")
    rep.add_argument("input", nargs="*", help="CSV files in long format (one row per stage event)")
    rep.add_argument("--sample", action="store_true", help="use the bundled sample data")
    rep.add_argument(
        "--as-of", dest="as_of", default=None, help="analysis date (default: last event)"
    )
    rep.add_argument("--prior", type=float, default=1.0, help="Dirichlet prior concentration")
    rep.add_argument(
        "--period",
        nargs=2,
        metavar=("START", "END"),
        help="forecast period (default: next 90 days)",
    )
    rep.add_argument(
        "--target", type=float, default=None, help="revenue target: report P(revenue >= target)"
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
