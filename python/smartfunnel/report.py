"""The funnel report: one call from an event log to a terminal summary and a self-contained HTML page.

:func:`build_report` fits the model, forecasts a period and computes the coaching views;
the :class:`Report` it returns holds every table as a DataFrame, prints a concise summary
(:meth:`Report.to_text`), and renders a self-contained HTML file (:meth:`Report.to_html`,
:meth:`Report.save`, :func:`render_html`): charts are inline SVG drawn by matplotlib, styles are
inline, nothing is fetched from the network, and every section, chart and table carries a stable
``id`` and ``data-*`` attributes (numbers in ``data-value``) so other programs can read it back.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from . import _convert, _core
from .backtesting import Backtest, backtest
from .coaching import ActivityLog, Coaching, _entry_stage, _stays, _top_focus, coaching
from .event_log import EventLog
from .forecasting import Forecast, forecast
from .model import FitOptions, FunnelModel, fit

ProgressCallback = Callable[[float], bool]
_STALLED_SHOWN = 50  # stalled deals listed in the page; the rest in a folded table


@dataclasses.dataclass(eq=False)
class Report:
    """A fitted funnel with its forecast and coaching views, ready to print or save as HTML.

    Built by :func:`build_report`. The tables are DataFrames (``funnel``, ``forecast_table``,
    ``scorecard``, ``rep_summary``, ``focus``, ``stalled``, ``quality``, ``assumptions``);
    ``model``, ``forecast`` and ``coaching`` are the objects behind them. ``warnings`` lists what
    the numbers rest on that the data cannot support (one row each: ``key``, the ``section`` it
    concerns, ``message``); the summary and the HTML show them where they apply.
    """

    title: str
    log: EventLog
    model: FunnelModel
    forecast: Forecast
    coaching: Coaching | None
    target: float | None
    funnel: pd.DataFrame
    outcomes: pd.Series
    forecast_table: pd.DataFrame
    scorecard: pd.DataFrame
    rep_summary: pd.DataFrame
    focus: pd.DataFrame
    stalled: pd.DataFrame
    quality: pd.DataFrame
    issues: pd.DataFrame
    assumptions: pd.DataFrame
    generated: pd.Timestamp
    stalled_quantile: float = 0.9
    backtest: Backtest | None = None
    warnings: pd.DataFrame = dataclasses.field(
        default_factory=lambda: pd.DataFrame(columns=["key", "section", "message"])
    )
    horizons: tuple[float, ...] = (30.0, 90.0, 180.0)
    stale_after_days: float | None = None

    # -- text ---------------------------------------------------------------------------------
    def to_text(self, max_rows: int = 10) -> str:
        """A concise terminal summary (tables truncated to `max_rows`, with the count left out)."""
        m = self.model
        level = f"{m.options.level:.0%}"
        log = self.log
        span = f", {log.first_time:%Y-%m-%d} .. {log.last_time:%Y-%m-%d}" if log.n_events else ""
        o = self.outcomes
        lines = [
            f"smartfunnel {_core.__version__} — {self.title}",
            f"{log.n_events:,} events, {log.n_opportunities:,} opportunities{span}; "
            f"as of {m.as_of:%Y-%m-%d}: {o['open']:,} open, {o['won']:,} won, {o['lost']:,} lost",
            "",
            *self._warning_lines("funnel"),
            f"Win probability by stage (censoring-aware, {level} intervals; won within N days "
            "of entering the stage):",
        ]
        f = self.funnel
        mask = _mask(f)
        table = pd.DataFrame(
            {
                "reached": f["reached"].map("{:,}".format),
                "open": f["open"].map("{:,}".format),
                "advance": [
                    m or _pct_interval(p, lo, hi)
                    for m, p, lo, hi in zip(mask, f["advance"], f["advance_low"], f["advance_high"])
                ],
                "P(win)": [
                    m or _pct_interval(p, lo, hi)
                    for m, p, lo, hi in zip(mask, f["p_win"], f["p_win_low"], f["p_win_high"])
                ],
                **{
                    f"<={h:g}d": ["" if m else _pct(x) for m, x in zip(mask, f[_within_column(h)])]
                    for h in self.horizons
                },
                "median days": f["median_days"].map(_days),
                "days to win": ["" if m else _days(x) for m, x in zip(mask, f["days_to_win"])],
            },
            index=f.index,
        )
        lines += [_indent(table.to_string()), ""]
        fc = self.forecast
        ft = self.forecast_table.iloc[0]
        prior_only = _prior_only(self.outcomes)
        if prior_only:
            lines += [
                f"Forecast of revenue won {fc.start:%Y-%m-%d} .. {fc.end:%Y-%m-%d}: no number "
                "(no deal had closed by as_of)",
                *self._warning_lines("forecast"),
                "",
            ]
        lines += (
            []
            if prior_only
            else [
                f"Forecast of revenue won {fc.start:%Y-%m-%d} .. {fc.end:%Y-%m-%d} (time-bounded "
                f"probabilities{', arrivals included' if fc.include_arrivals else ''}):",
                f"  expected {ft['expected']:,.0f}   P10 {ft['P10']:,.0f}   P50 {ft['P50']:,.0f}   "
                f"P90 {ft['P90']:,.0f}",
                f"  realised so far {ft['realised']:,.0f}; open pipeline "
                f"{ft['pipeline_expected']:,.0f} from {int(ft['open_deals']):,} deals; "
                f"new deals {ft['arrivals_expected']:,.0f}",
            ]
        )
        if not prior_only:
            if self.target is not None:
                lines.append(f"  P(revenue >= {self.target:,.0f}) = {ft['p_target']:.1%}")
            lines += [f"  {line}" for line in _calibration_lines(fc)]
            lines += self._warning_lines("forecast")
            lines.append("")
        if self.backtest is not None:
            bm = self.backtest.metrics
            n = int(bm["periods"].iloc[0])
            lines.append(
                f"Backtest over {n} past periods of {self.backtest.horizon_days} days "
                "(mean absolute error, P10-P90 coverage):"
            )
            for method, row in bm.iterrows():
                lines.append(
                    f"  {method}: MAE {row['mae']:,.0f}, bias {row['bias']:+,.0f}, covered "
                    f"{row['coverage_p10_p90']:.0%}"
                )
            lines.append("")
        if self.coaching is None:
            lines += ["Coaching: the log has no owners (reps), so no scorecard or focus.", ""]
        elif prior_only:
            lines += [
                "Coaching focus: no deal had closed by as_of, so no rep can be compared with "
                "the team yet.",
                "",
            ]
        else:
            top = self.focus
            lines.append(
                "Coaching focus (the credible gap to the team, advance interval wholly below "
                "the team's, that gains the most):"
            )
            credible = top[top["credible"].astype(bool)].sort_values(
                "expected_gain", ascending=False, kind="stable"
            )
            for rep, r in credible.head(max_rows).iterrows():
                lines.append(
                    f"  {rep}: {r['stage']} (advance {r['current_rate']:.1%} vs team "
                    f"{r['team_rate']:.1%}; +{r['expected_gain']:,.0f} expected)"
                )
            lines += _more(len(credible), max_rows, "reps with a credible gap")
            noise = top[~top["credible"].astype(bool) & (top["expected_gain"] > 0)]
            if len(noise):
                r = noise.sort_values("expected_gain", ascending=False).iloc[0]
                big = r.name
                lines.append(
                    f"  {len(noise):,} {'other ' if len(credible) else ''}reps: no credible gap "
                    f"(the largest gain if matched, {big} at {r['stage']}: "
                    f"{r['current_rate']:.1%} vs {r['team_rate']:.1%}, "
                    f"+{r['expected_gain']:,.0f}, is within the noise)"
                )
            at_or_above = int(np.count_nonzero(top["expected_gain"] <= 0))
            if at_or_above:
                lines.append(f"  {at_or_above:,} reps at or above the team at every stage")
            st = self.stalled
            lines.append(f"Stalled deals: {len(st):,} (largest first)")
            for _, r in st.head(max_rows).iterrows():
                lines.append(
                    f"  {r['opportunity_id']} ({r['owner']}, {r['stage']}, {r['amount']:,.0f}): "
                    f"{r['reasons']}"
                )
            lines += _more(len(st), max_rows, "stalled deals")
            lines.append("")
        q = self.quality.set_index("item")["count"]
        lines.append("Data quality: " + ", ".join(f"{k} {int(v):,}" for k, v in q.items()))
        return "\n".join(lines)

    def _warning_lines(self, section: str) -> list[str]:
        import textwrap

        lines = []
        for message in self.warnings.loc[self.warnings["section"] == section, "message"]:
            lines += textwrap.wrap(
                str(message),
                width=100,
                initial_indent="  ! ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
        return lines + ([""] if lines and section == "funnel" else [])

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        q = self.forecast_table.iloc[0]
        return (
            f"Report({self.title!r}, as of {self.model.as_of:%Y-%m-%d}, "
            f"{self.log.n_opportunities:,} opportunities; forecast P50 {q['P50']:,.0f}, "
            f"{len(self.stalled):,} stalled deals)"
        )

    # -- HTML ---------------------------------------------------------------------------------
    def to_html(self, full_document: bool = True) -> str:
        """The report as HTML: a whole self-contained document, or (``full_document=False``) a
        ``<div class="sf-report">`` fragment with its scoped styles, for embedding."""
        return render_html(self, full_document=full_document)

    def save(self, path: Any) -> None:
        """Write the self-contained HTML document to `path` (UTF-8)."""
        import pathlib

        pathlib.Path(path).write_text(self.to_html(), encoding="utf-8")

    def _repr_html_(self) -> str:
        return self.to_html(full_document=False)


def build_report(
    log: EventLog,
    *,
    activities: ActivityLog | None = None,
    options: FitOptions | None = None,
    as_of: Any = None,
    period: tuple[Any, Any] | None = None,
    target: float | None = None,
    title: str = "funnel report",
    issues: pd.DataFrame | None = None,
    scenarios: int = 0,
    seed: int = 0,
    stalled_quantile: float = 0.9,
    backtest_periods: int = 0,
    horizons: Sequence[float] = (30.0, 90.0, 180.0),
    stale_after_days: float | None = None,
    grid_days: float | None = None,
    progress: Any = None,
) -> Report:
    """Fit, forecast and coach from `log`, and gather the tables of a report.

    Parameters
    ----------
    log : EventLog
    activities : ActivityLog, optional
        Adds the activity flags and momentum to the deal inspection.
    options : FitOptions, optional
        The fit's options (default ``FitOptions()``); `as_of` overrides its ``as_of``.
    as_of : time-like, optional
        Analysis date (default: the log's last event).
    period : tuple, optional
        Forecast period ``(start, end)``, whole days, end inclusive (default: the 90 days after
        as_of).
    target : float, optional
        Revenue target: the report gives P(revenue won in the period >= target).
    title : str
        The report's heading (the data's name or source).
    issues : DataFrame, optional
        Rows an import could not place or changed (one row each, with a ``reason`` column);
        counted by reason in the data-quality section and listed in full in the HTML.
    scenarios, seed : int
        Monte Carlo scenarios drawn beside the exact distribution (0: exact only).
    stalled_quantile : float
        A deal is stalled when longer in its stage than this quantile of the stage's time in stage.
    backtest_periods : int
        Replay the forecast over this many past periods of the same length, ending at the
        analysis date (each fitted only on what was known then; see :func:`smartfunnel.backtest`),
        and compare with what was won. Periods starting before one period of history are left
        out (listed in the assumptions). 0: no backtest.
    horizons : sequence of float
        The funnel table gives P(won within h days of entering each stage) for each h (columns
        ``won_30d``...): censoring-aware cumulative incidences that, unlike the eventual P(win),
        assume nothing about deals older than the data.
    stale_after_days : float, optional
        Passed to :func:`smartfunnel.forecast`: a deal still in a stage this many days after
        entering it counts as lost. Without it, deals older than every stay that left their stage
        are scored from the model's constant-hazard tail (an extrapolation), which the report
        counts and warns about.
    grid_days : float, optional
        The time-bounded recursion's grid of the forecast and the backtest (see
        :func:`smartfunnel.forecast`; default one day, or the fit's tick when coarser).
    progress : smartfunnel.progress.Progress or callable, optional
        A progress bar (its parts follow the steps) or a callable taking the fraction done.

    Returns
    -------
    Report
    """
    part = _parts(progress)
    share = 0.45 if backtest_periods > 0 else 0.95  # of the bar before the backtest, if any
    opts = options or FitOptions()
    if as_of is not None:
        opts = dataclasses.replace(opts, as_of=as_of)
    part(0.0, 0.15 * share, "fitting")(0.0)
    model = fit(log, opts)
    if period is not None:
        start, end = pd.Timestamp(period[0]), pd.Timestamp(period[1])
    else:  # the 90 days after the analysis date
        start = model.as_of.tz_convert("UTC").tz_localize(None).normalize() + pd.Timedelta(days=1)
        end = start + pd.Timedelta(days=89)
    fc = forecast(
        model,
        log,
        start=start,
        end=end,
        scenarios=scenarios,
        seed=seed,
        stale_after_days=stale_after_days,
        grid_days=grid_days,
        progress=part(0.15 * share, 0.75 * share, "forecast"),
    )
    part(0.75 * share, share, "coaching")(0.0)
    coach = coaching(model, log, activities) if log.core.has_owners else None
    horizons = tuple(float(h) for h in horizons)
    funnel_table, outcomes = _funnel_table(model, log, horizons)
    forecast_table = fc.to_frame()
    beyond = _beyond_data(model, log, fc)
    deals = fc.deals
    forecast_table["open_without_amount"] = int(
        np.count_nonzero(~(np.nan_to_num(deals["amount"].to_numpy(dtype=float)) > 0))
    )
    forecast_table["beyond_data_deals"] = int(beyond["deals"].sum())
    forecast_table["beyond_data_amount"] = float(beyond["amount"].sum())
    forecast_table["beyond_data_expected"] = float(beyond["expected"].sum())
    forecast_table["stale_after_days"] = (
        np.nan if stale_after_days is None else float(stale_after_days)
    )
    forecast_table["p_target"] = fc.probability_at_least(target) if target is not None else np.nan
    if scenarios > 0:
        s = np.sort(fc.scenarios) / 100.0
        for q in (0.1, 0.5, 0.9):
            i = min(len(s) - 1, max(0, int(np.ceil(q * len(s))) - 1))
            forecast_table[f"mc_P{round(q * 100)}"] = s[i]
        forecast_table["mc_scenarios"] = len(s)
    if coach is not None:
        scorecard = coach.scorecard()
        seen = model.stage_summary()["n"] > 0  # stages no deal was seen in: prior-only rows
        if seen.any():
            scorecard = scorecard[
                scorecard.index.get_level_values("stage").isin(seen.index[seen].tolist())
            ]
        rep_summary = coach.summary()
        focus = _top_focus(coach.focus())
        inspect = coach.inspect(stalled_quantile=stalled_quantile)
        stalled = (
            inspect[inspect["stalled"]]
            .sort_values(["amount", "age_days"], ascending=[False, False], kind="stable")
            .reset_index(drop=True)
        )
    else:
        scorecard = rep_summary = focus = stalled = pd.DataFrame()
    bt, skipped = None, 0
    if backtest_periods > 0:
        horizon = int((fc.end - fc.start) / pd.Timedelta(days=1)) + 1
        day = model.as_of.tz_convert("UTC").normalize()
        dates = [day - pd.Timedelta(days=horizon * k) for k in range(backtest_periods, 0, -1)]
        earliest = log.first_time + pd.Timedelta(days=horizon)
        kept = [d for d in dates if d >= earliest]
        skipped = len(dates) - len(kept)
        if kept:
            bt = backtest(
                log,
                kept,
                horizon_days=horizon,
                fit=dataclasses.replace(opts, as_of=None),
                include_arrivals=fc.include_arrivals,
                stale_after_days=stale_after_days,
                grid_days=grid_days,
                progress=part(share, 0.99, "backtest"),
            )
    part(0.99, 1.0, "tables")(0.0)
    issues = issues if issues is not None else pd.DataFrame({"reason": []})
    quality = _quality_table(log, activities, issues, model)
    assumptions = _assumptions(
        model, fc, target, scenarios, seed, stalled_quantile, activities, stale_after_days
    )
    warnings = _warnings(model, funnel_table, outcomes, forecast_table, beyond, horizons, fc)
    if backtest_periods > 0:
        note = (
            f"{len(bt.table['as_of'].unique()) if bt is not None else 0} past periods of "
            f"{(fc.end - fc.start).days + 1} days replayed, each fitted only on what was known "
            "then"
        )
        if skipped:
            note += f"; {skipped} earlier periods left out (less than one period of history)"
        assumptions = pd.concat(
            [
                assumptions,
                pd.DataFrame(
                    {"setting": ["backtest"], "value": [str(backtest_periods)], "note": [note]}
                ),
            ],
            ignore_index=True,
        )
    part(1.0, 1.0)(1.0)
    return Report(
        title=title,
        log=log,
        model=model,
        forecast=fc,
        coaching=coach,
        target=target,
        funnel=funnel_table,
        outcomes=outcomes,
        forecast_table=forecast_table,
        scorecard=scorecard,
        rep_summary=rep_summary,
        focus=focus,
        stalled=stalled,
        quality=quality,
        issues=issues,
        assumptions=assumptions,
        generated=pd.Timestamp(datetime.datetime.now(datetime.timezone.utc)),
        stalled_quantile=stalled_quantile,
        backtest=bt,
        warnings=warnings,
        horizons=horizons,
        stale_after_days=stale_after_days,
    )


def _parts(progress: Any) -> Callable[..., ProgressCallback]:
    """part(start, end, step) -> callback, for a Progress, a plain callable or None."""
    if progress is None:
        return lambda start, end, step=None: lambda fraction: True
    if hasattr(progress, "part"):
        return progress.part

    def part(start: float, end: float, step: str | None = None) -> ProgressCallback:
        def callback(fraction: float) -> bool:
            return progress(start + (end - start) * fraction) is not False

        return callback

    return part


def _funnel_table(
    model: FunnelModel, log: EventLog, horizons: Sequence[float] = (30.0, 90.0, 180.0)
) -> tuple[pd.DataFrame, pd.Series]:
    """Per open stage: deals that reached it, stays, open now, exits (and to Lost), advance and
    loss rates with the advance interval, P(win) with its interval, the unresolved mass, P(won
    within each horizon of entering the stage), days in stage and to win, and the flags:
    ``no_deals`` (no stay seen: every rate is the prior's), ``no_exits`` (no stay ended yet),
    ``eventual_caution`` (the eventual P(win) rests on an assumption the data cannot check: no
    stay ended in Lost, or the unresolved mass is above the fit's ``unresolved_threshold``)."""
    stages = list(model.funnel.stages)
    n = len(stages)
    events = log.to_frame()
    events = events[events["time"] <= model.as_of]
    reached = events.groupby("stage", observed=False)["opportunity_id"].nunique()
    ss = model.stage_summary()
    col = {c: ss[c].to_numpy() for c in ss.columns}
    median = model.time_in_stage()["median_days"].to_numpy()
    tm = model.transition_matrix().to_numpy()
    summary = model.summary
    if "group" in summary.index.names:  # fitted by groups: the funnel's own rows
        summary = cast(pd.DataFrame, summary.xs("(all)", level="group"))
    won = list(model.funnel.won)
    lost_exits = (
        summary[summary["outcome"] == "lost"].groupby(level="stage", sort=False)["exits"].sum()
    )
    within = _won_within(model, horizons)
    rows = []
    for i, stage in enumerate(stages):
        fwd = stages[i + 1] if i + 1 < n else "Won"
        low = high = np.nan
        if fwd != "Won" or len(won) == 1:
            key = (stage, fwd if fwd != "Won" else won[0])
            low = float(np.asarray(summary.loc[key, "low"]).item())
            high = float(np.asarray(summary.loc[key, "high"]).item())
        exits = int(col["exits"][i])
        n_lost = int(lost_exits.get(stage, 0))
        no_deals = int(col["n"][i]) == 0
        rows.append(
            {
                "stage": stage,
                "reached": int(reached.get(stage, 0)),
                "stays": int(col["n"][i]),
                "open": int(col["censored"][i]),
                "exits": exits,
                "lost_exits": n_lost,
                "next": fwd,
                "advance": float(tm[i, i + 1]),  # the next open stage, or Won after the last
                "advance_low": low,
                "advance_high": high,
                "lost": float(tm[i, n + 1]),
                "p_win": float(col["p_win"][i]),
                "p_win_low": float(col["p_win_low"][i]),
                "p_win_high": float(col["p_win_high"][i]),
                "unresolved": float(col["unresolved"][i]) if exits else np.nan,
                **{
                    _within_column(h): (np.nan if no_deals else float(within[i, k]))
                    for k, h in enumerate(horizons)
                },
                "median_days": float(median[i]),
                "days_to_win": float(col["days_to_win"][i]),
                "insufficient_history": bool(col["insufficient_history"][i]),
                "no_deals": no_deals,
                "no_exits": exits == 0,
                "eventual_caution": exits > 0 and (n_lost == 0 or bool(col["unresolved_high"][i])),
            }
        )
    table = pd.DataFrame(rows).set_index("stage")
    t = _convert.instant_seconds(model.as_of)
    state = np.asarray(log.core.state_at(t)["stage"])
    n_won = len(won)
    seen = state >= 0
    outcomes = pd.Series(
        {
            "open": int(np.count_nonzero(seen & (state < n))),
            "won": int(np.count_nonzero((state >= n) & (state < n + n_won))),
            "lost": int(np.count_nonzero(state >= n + n_won)),
            "not_yet_created": int(np.count_nonzero(~seen)),
        },
        name="opportunities",
    )
    return table, outcomes


def _mask(funnel: pd.DataFrame) -> list[str]:
    """Per stage, what to show instead of prior-only rates ('' where the rates are estimated)."""
    return [
        "no deals seen" if d else ("no exits seen" if e else "")
        for d, e in zip(funnel["no_deals"], funnel["no_exits"])
    ]


def _within_column(h: float) -> str:
    return f"won_{h:g}d"


def _won_within(model: FunnelModel, horizons: Sequence[float]) -> np.ndarray:
    """P(won within h days of entering each open stage), censoring-aware and without
    extrapolation: the Aalen-Johansen cumulative incidences of the fit (the sub-distributions
    F_sk(t), not rescaled by the stays that ended), chained through the later stages on a day grid.

    The unresolved mass of a stage (stays still there after its last exit) counts as not won
    within the horizon, so unlike the eventual P(win) this assumes nothing about deals older than
    the data. Durations are binned to whole days (exact with the default 1-day tick).

    Returns
    -------
    ndarray
        Shape (stages, horizons).
    """
    stages = list(model.funnel.stages)
    n = len(stages)
    n_won = len(model.funnel.won)
    if not horizons:
        return np.zeros((n, 0))
    top = int(np.floor(max(horizons)))
    tick_days = model.core.options.tick_seconds / 86400.0
    # f[t, s, k]: P(leave s to open stage k in day t); w[t, s]: P(leave s to a Won name in day t)
    f = np.zeros((top + 1, n, n))
    w = np.zeros((top + 1, n))
    for s in range(n):
        durations, _, _, incidence = model.core.curve(0, s)
        d = np.floor(np.asarray(durations, dtype=np.float64) * tick_days + 1e-9).astype(np.int64)
        inc = np.asarray(incidence, dtype=np.float64)
        if len(d) == 0:
            continue
        step = np.diff(np.vstack([np.zeros((1, inc.shape[1])), inc]), axis=0)
        keep = d <= top
        np.add.at(f[:, s, :], d[keep], step[keep, :n])
        np.add.at(w[:, s], d[keep], step[keep, n : n + n_won].sum(axis=1))
    solve = np.linalg.inv(np.eye(n) - f[0])  # moves within the day (zero-duration stays)
    won = np.zeros((top + 1, n))
    direct = np.cumsum(w, axis=0)
    for h in range(top + 1):
        later = np.einsum("tsk,tk->s", f[1 : h + 1], won[h - 1 :: -1][:h]) if h else np.zeros(n)
        won[h] = solve @ (direct[h] + later)
    return np.stack([won[int(np.floor(h))] for h in horizons], axis=1)


def _beyond_data(model: FunnelModel, log: EventLog, fc: Forecast) -> pd.DataFrame:
    """Per open stage: the longest stay that left it (days; NaN when none did), its open deals
    and their amount, and those longer in it than that: how many, their amount and the
    forecast's expected revenue from them. Their time-bounded probabilities rest on the kernel's constant-hazard tail (or,
    without any exit, on the prior): an extrapolation beyond the data."""
    stages = list(model.funnel.stages)
    stays = _stays(log, model.as_of)
    ended = stays[stays["destination"] >= 0]
    longest = ended.groupby("stage")["days"].max()
    current = stays[stays["destination"] < 0]
    ids = log.opportunity_ids()
    age = pd.Series(
        current["days"].to_numpy(), index=ids[current["opportunity"].to_numpy(dtype=np.int64)]
    )
    deals = fc.deals.set_index("opportunity_id")
    rows = []
    for code, stage in enumerate(stages):
        limit = float(longest.get(code, np.nan))
        here = deals[deals["stage"] == stage]
        days = age.reindex(here.index).to_numpy(dtype=float)
        older = days > limit if np.isfinite(limit) else np.ones(len(here), dtype=bool)
        rows.append(
            {
                "stage": stage,
                "longest_exit_days": limit,
                "open": len(here),
                "open_amount": float(np.nansum(here["amount"].to_numpy(dtype=float))),
                "deals": int(np.count_nonzero(older)),
                "amount": float(np.nansum(here["amount"].to_numpy(dtype=float)[older])),
                "expected": float(np.nansum(here["expected"].to_numpy(dtype=float)[older])),
            }
        )
    return pd.DataFrame(rows).set_index("stage")


def _prior_only(outcomes: pd.Series) -> bool:
    """No deal had closed by as_of: every probability is the prior's alone."""
    return int(outcomes["won"]) + int(outcomes["lost"]) == 0


def _calibration_lines(fc: Forecast) -> list[str]:
    """How the range was calibrated and how past forecasts of the kind did, in words."""
    cal = fc.calibration
    if not cal.calibrated:
        return ["range: not calibrated (see the warning below)"]
    lines = [
        f"range calibrated on {len(cal.periods):,} past forecasts of this log "
        f"({cal.independent_periods:.1f} periods' lengths apart): a common factor of relative sd "
        f"{cal.tau:.0%} beyond the model's own {cal.model_cv:.0%}"
    ]
    rec = fc.track_record
    if "smartfunnel" in rec.index:
        coverage = rec["coverage_p10_p90"].astype(float)
        parts = [
            f"{m} {float(coverage[m]):.0%}"
            for m in ("smartfunnel", "smartfunnel_uncalibrated", "weighted_pipeline")
            if m in rec.index
        ]
        periods = int(rec["periods"].astype(np.int64)["smartfunnel"])
        lines.append(
            f"track record, P10-P90 coverage of {periods:,} past periods: {', '.join(parts)}"
        )
    else:
        lines.append("track record: too short a history to judge")
    return lines


def _warnings(
    model: FunnelModel,
    funnel: pd.DataFrame,
    outcomes: pd.Series,
    forecast_table: pd.DataFrame,
    beyond: pd.DataFrame,
    horizons: Sequence[float],
    fc: Forecast | None = None,
) -> pd.DataFrame:
    """What the report's numbers rest on that the data cannot support, one row per finding."""
    rows: list[tuple[str, str, str]] = []
    if _prior_only(outcomes):
        rows.append(
            (
                "no_closed_deals",
                "forecast",
                f"No deal had closed by as_of ({outcomes['open']:,} open, 0 won, 0 lost): every "
                "win probability would be the prior's alone, so the forecast and the coaching "
                "comparisons show no number. They need closed deals, won or lost, to learn from.",
            )
        )
    elif fc is not None and not fc.calibration.calibrated:
        rows.append(
            (
                "uncalibrated",
                "forecast",
                f"The forecast's P10-P90 range is not calibrated on this log's past forecasts "
                f"({fc.calibration.reason}). Read it as a lower bound on the uncertainty.",
            )
        )
    elif fc is not None:
        rec = fc.track_record
        if "smartfunnel" in rec.index:
            n_past = int(rec["periods"].astype(np.int64)["smartfunnel"])
            cover = float(rec["coverage_p10_p90"].astype(float)["smartfunnel"])
            if not 0.6 <= cover <= 0.97:
                rows.append(
                    (
                        "track_record",
                        "forecast",
                        f"On this log, {n_past:,} past forecasts of this kind "
                        f"(calibrated the same way) had {cover:.0%} of outcomes inside their "
                        "P10-P90 range, against 80% for a range that holds: read the range with "
                        "caution.",
                    )
                )

    def within(row: pd.Series) -> str:
        return ", ".join(f"{h:g} days {_pct(float(row[_within_column(h)]))}" for h in horizons)

    if outcomes["lost"] == 0 and outcomes["won"] > 0 and outcomes["open"] > 0:
        rows.append(
            (
                "no_lost_deals",
                "funnel",
                f"The data record no lost deals ({outcomes['won']:,} won, {outcomes['open']:,} "
                "open): a deal that was lost cannot be told from one still open, so the eventual "
                "P(win), which assumes open deals end like the ones that ended, cannot see any "
                "loss and overstates the win rate. Read the time-bounded rates (P(won within N "
                "days of entering the stage)) instead.",
            )
        )
    empty = funnel[funnel["no_deals"]]
    if len(empty):
        names = ", ".join(map(str, empty.index))
        rows.append(
            (
                "no_deals",
                "funnel",
                f"No deal was ever seen in {names} (e.g. undated rows): the rates there "
                "would be the prior's alone, so they are shown as 'no deals seen' and left out of "
                "the charts.",
            )
        )
    unexited = funnel[~funnel["no_deals"] & funnel["no_exits"]]
    if len(unexited):
        names = ", ".join(f"{st} ({int(n):,})" for st, n in unexited["stays"].items())
        rows.append(
            (
                "no_exits",
                "funnel",
                f"No stay has ended yet in {names} (stays in brackets): their rates would be the "
                "prior's alone, so they are shown as 'no exits seen'.",
            )
        )
    for stage, r in funnel[funnel["eventual_caution"]].iterrows():
        why = []
        if r["lost_exits"] == 0:
            why.append(f"none of its {int(r['exits']):,} exits went to Lost")
        if r["unresolved"] > model.options.unresolved_threshold:
            why.append(
                f"{r['unresolved']:.0%} of its stays are still in it after the longest stay "
                f"that ended (Kaplan-Meier; {int(r['open']):,} open against "
                f"{int(r['exits']):,} exits)"
            )
        rows.append(
            (
                f"eventual:{stage}",
                "funnel",
                f"{stage}: the eventual P(win) of {_pct(float(r['p_win']))} assumes its open "
                "deals end like the ones that did, which the data cannot check: "
                f"{'; '.join(why)}. Observed, with no such assumption: won within "
                f"{within(r)} of entering {stage}.",
            )
        )
    ft = forecast_table.iloc[0]
    n_open = int(ft["open_deals"])
    missing = int(ft["open_without_amount"])
    if n_open and missing == n_open:
        rows.append(
            (
                "no_amounts",
                "forecast",
                f"None of the {n_open:,} open deals has an amount: the revenue forecast is 0 by "
                "construction, not a prediction of no wins. See the funnel's time-bounded win "
                "rates for how many deals to expect.",
            )
        )
    elif missing:
        rows.append(
            (
                "missing_amounts",
                "forecast",
                f"{missing:,} of the {n_open:,} open deals have no amount (counted as 0): the "
                "forecast leaves out whatever they would bring.",
            )
        )
    old = beyond[beyond["deals"] > 0]
    if len(old) and not _prior_only(outcomes):  # with no closed deal, all of it is beyond
        total = float(np.nansum(beyond["open_amount"]))
        parts = [
            f"{stage}: {int(r['deals']):,} of {int(r['open']):,}, older than "
            f"{r['longest_exit_days']:.0f} days"
            for stage, r in old.iterrows()
            if np.isfinite(r["longest_exit_days"])
        ]
        never = old[~np.isfinite(old["longest_exit_days"])]
        if len(never):
            parts.append(
                f"{int(never['deals'].sum()):,} in stages no stay has left yet "
                f"({', '.join(map(str, never.index))})"
            )
        n_old = int(old["deals"].sum())
        stale = ft["stale_after_days"]
        advice = (
            f"With stale_after_days = {stale:g}, deals {stale:g} days or more in a stage count "
            "as lost."
            if np.isfinite(stale)
            else "If such deals are in fact dead, set stale_after_days (command line: "
            "--stale-after DAYS) to count a deal as lost after that many days in a stage."
        )
        rows.append(
            (
                "beyond_data",
                "forecast",
                f"{n_old:,} of the {n_open:,} open deals have been in their stage longer than "
                f"any stay that left it ({'; '.join(parts)})"
                + (
                    f": {_money(float(old['amount'].sum()))} of the {_money(total)} in open deals' "
                    f"amounts, {_money(float(old['expected'].sum()))} of the forecast's expected "
                    "revenue"
                    if total > 0
                    else ""
                )
                + ". Their time-bounded probabilities rest on the model's constant-hazard tail, an "
                f"extrapolation beyond the data. {advice}",
            )
        )
    return pd.DataFrame(rows, columns=["key", "section", "message"])


def _issues_by_kind(issues: pd.DataFrame) -> pd.DataFrame:
    """Import issues counted by action, table, column (whichever the frame has) and the kind of
    reason (its wording before the first colon, when that quotes no value), in order of first
    appearance, each with the first row's reason and how many distinct reasons it covers.
    Reasons quote each row's values (dates, amounts), so counting by reason alone gives one row
    per issue."""
    frame = issues.copy()
    for c in ("action", "table", "column"):
        frame[c] = (
            frame[c].astype(object).where(frame[c].notna(), "").astype(str) if c in frame else ""
        )
    frame["reason"] = frame["reason"].astype(str)
    # Reasons of one kind share their wording before the first colon ("open deal without an
    # amount: ..." vs "Won deal without an amount: ..."), unless that part quotes row values.
    head = frame["reason"].str.split(": ", n=1).str[0]
    generic = frame["reason"].str.contains(": ", regex=False) & ~head.str.contains(r"[\d'\"]")
    frame["kind"] = head.where(generic & (head.str.len() <= 80), "")
    out = (
        frame.groupby(["action", "table", "column", "kind"], sort=False, dropna=False)
        .agg(count=("reason", "size"), reason=("reason", "first"), reasons=("reason", "nunique"))
        .reset_index()
    )
    out["where"] = [".".join(p for p in (t, c) if p) for t, c in zip(out["table"], out["column"])]
    return out[["action", "where", "count", "reason", "reasons"]]


def _quality_table(
    log: EventLog, activities: ActivityLog | None, issues: pd.DataFrame, model: FunnelModel
) -> pd.DataFrame:
    """Counts: rows read and kept, duplicates, reopenings, rejections, import issues, thin stages."""
    q = log.quality
    rows = [
        ("rows read", q["rows_read"], "event rows given to the log"),
        ("rows kept", q["rows_kept"], "events in the log"),
        ("duplicates collapsed", q["duplicates_collapsed"], "repeated stage events merged"),
        ("reopened", q["reopened"], "deals reopened after Won/Lost"),
        ("rejected", q["rejected"], "rows the log refused (listed below)"),
    ]
    if "action" in issues.columns:  # smartfunnel.imports quality: rejected / changed / added / note
        what = {
            "rejected": "input rows or cells the import could not use (below)",
            "changed": "values the import used with a change it states (below)",
            "added": "events the import inferred (below)",
            "note": "information about the import (below)",
        }
        counts = issues["action"].astype(str).value_counts()
        for action, detail in what.items():
            rows.append((f"import {action}", int(counts.get(action, 0)), detail))
    else:
        rows.append(("import issues", len(issues), "rows an import could not place or changed"))
    if activities is not None:
        rows.append(("activities", len(activities), "actions attributed to a stage"))
        rows.append(
            ("activities rejected", len(activities.rejected), "activity rows refused (below)")
        )
    ss = model.stage_summary()
    thin = [str(s) for s in ss.index[ss["insufficient_history"]]]
    rows.append(
        (
            "stages with thin history",
            len(thin),
            ", ".join(thin) if thin else f"every stage has >= {model.options.min_exits} exits",
        )
    )
    return pd.DataFrame(rows, columns=["item", "count", "detail"])


def _assumptions(
    model: FunnelModel,
    fc: Forecast,
    target: float | None,
    scenarios: int,
    seed: int,
    stalled_quantile: float,
    activities: ActivityLog | None,
    stale_after_days: float | None = None,
) -> pd.DataFrame:
    o = model.options
    groups = [o.groups] if isinstance(o.groups, str) else list(o.groups)
    eb = fc.error_bounds
    rows = [
        ("as of", f"{model.as_of:%Y-%m-%d %H:%M} UTC", "only events at or before it are seen"),
        (
            "forecast period",
            f"{fc.start:%Y-%m-%d} .. {fc.end:%Y-%m-%d} ({fc.tz})",
            "whole days, end inclusive; wins booked since the start count as realised",
        ),
        ("target", "none" if target is None else f"{target:,.0f}", "P(revenue >= target)"),
        ("prior", f"{o.prior:g}", "Dirichlet concentration on each stage's destinations"),
        ("interval level", f"{o.level:.0%}", "every interval in this report"),
        ("tick", str(o.tick), "duration resolution"),
        ("half-life", "none" if o.half_life is None else str(o.half_life), "decay of old stays"),
        ("groups", ", ".join(groups) or "none", "the funnel fit (coaching refits by owner)"),
        ("min exits", f"{o.min_exits}", "fewer exits flag a stage as thin"),
        (
            "forecast method",
            "exact lattice" + (f" + Monte Carlo ({scenarios:,}, seed {seed})" if scenarios else ""),
            f"lattice step {eb['step']:,.2f}, W1 bound {eb['w1_bound']:,.2f}, "
            f"truncated mass {eb['truncated_mass']:.1e}",
        ),
        (
            "arrivals",
            "included" if fc.include_arrivals else "not included",
            "wins from deals created during the period (creation rate of the last 180 days)",
        ),
        (
            "stalled",
            f"beyond the p{stalled_quantile * 100:.0f} time in stage",
            "Kaplan-Meier over the team's stays of the stage; where it lies beyond the data, "
            "longer than every stay that left the stage",
        ),
        (
            "stale after",
            "none" if stale_after_days is None else f"{stale_after_days:g} days",
            "a deal this long in a stage counts as lost in the forecast"
            if stale_after_days is not None
            else "deals older than every stay that left their stage are scored from the "
            "model's constant-hazard tail",
        ),
        (
            "activities",
            "given" if activities is not None else "none",
            "activity flags and momentum need them",
        ),
        ("smartfunnel", _core.__version__, ""),
    ]
    return pd.DataFrame(rows, columns=["setting", "value", "note"])


# -- formatting helpers -------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.1%}"


def _pct_interval(p: float, lo: float, hi: float) -> str:
    if not np.isfinite(lo) or not np.isfinite(hi):
        return _pct(p)
    return f"{_pct(p)} [{lo:.1%}, {hi:.1%}]"


def _days(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.0f}"


def _money(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:,.0f}"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _more(n: int, shown: int, what: str) -> list[str]:
    return (
        [f"  ... and {n - shown:,} more {what} (all in the HTML report, -o)"] if (n > shown) else []
    )


# -- HTML rendering ----------------------------------------------------------------------------
_CSS = """
.sf-report{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2933;line-height:1.45;max-width:1100px;margin:0 auto;padding:24px;background:#fff}
.sf-report h1{font-size:1.6rem;margin:0 0 4px}
.sf-report h2{font-size:1.2rem;margin:0 0 10px;padding-bottom:4px;border-bottom:2px solid #4C72B0}
.sf-report .sf-sub{color:#52606d;margin:0 0 18px}
.sf-report section{margin:0 0 28px;break-inside:avoid-page}
.sf-report .sf-kpis{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 12px}
.sf-report .sf-kpi{border:1px solid #d9e2ec;border-radius:6px;padding:8px 14px;min-width:120px}
.sf-report .sf-kpi b{display:block;font-size:1.25rem}
.sf-report .sf-kpi span{color:#52606d;font-size:.85rem}
.sf-report figure{margin:8px 0 14px;text-align:center}
.sf-report figure svg{max-width:100%;height:auto}
.sf-report figcaption{color:#52606d;font-size:.85rem}
.sf-report table{border-collapse:collapse;width:100%;font-size:.9rem;margin:6px 0 10px}
.sf-report .sf-caption{text-align:left;color:#52606d;font-size:.85rem;margin:6px 0 0;
 padding:2px 0 0}
.sf-report th,.sf-report td{border-bottom:1px solid #e4e7eb;padding:4px 8px;text-align:left;
 vertical-align:top}
.sf-report thead th{background:#f0f4f8;border-bottom:2px solid #bcccdc}
.sf-report td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sf-report td.short{white-space:nowrap}
.sf-report tr.flag td{background:#fff5f5}
.sf-report .sf-note{color:#52606d;font-size:.85rem}
.sf-report .sf-warn{border-left:4px solid #d9822b;background:#fff8ec;padding:8px 12px;
 margin:6px 0 10px;font-size:.9rem}
.sf-report .sf-kpi.sf-caution{border-color:#d9822b;background:#fff8ec}
.sf-report .sf-scroll{overflow-x:auto;max-width:100%}
.sf-report td.na{color:#7b8794;font-style:italic;white-space:nowrap}
.sf-report details summary{cursor:pointer;color:#334e68}
@media print{.sf-report{padding:0;max-width:none}.sf-report details{display:block}
 .sf-report section{break-inside:avoid}.sf-report thead{display:table-header-group}}
"""

Column = tuple[str, str, str]  # (header, frame column, format)


def _cell(value: Any, fmt: str) -> str:
    """One <td>, with the raw number in data-value."""
    if isinstance(value, (bool, np.bool_)):
        return f'<td data-value="{str(bool(value)).lower()}">{"yes" if value else ""}</td>'
    if fmt == "text" or value is None or isinstance(value, str):
        missing = value is None or (isinstance(value, float) and not np.isfinite(value))
        text = "" if missing else str(value)
        short = ' class="short"' if len(text) <= 24 else ""
        return f"<td{short}>{html.escape(text)}</td>"
    x = float(value)
    if not np.isfinite(x):
        return '<td class="num" data-value="nan">–</td>'
    shown = {
        "int": f"{x:,.0f}",
        "money": f"{x:,.0f}",
        "pct": f"{x:.1%}",
        "days": f"{x:.0f}",
        "ratio": f"{x:.2f}",
    }[fmt]
    return f'<td class="num" data-value="{x!r}">{shown}</td>'


def _table(
    frame: pd.DataFrame,
    table_id: str,
    columns: Sequence[Column],
    caption: str = "",
    flag: str | None = None,
    intervals: Mapping[str, tuple[str, str]] | None = None,
    mask: tuple[Sequence[str], Sequence[str]] | None = None,
) -> str:
    """A table with stable ids: <table id=... data-table=...>, <th data-column=...>, rows with
    data-key; interval columns show "p [low, high]" with data-low / data-high. `mask` is (one
    text per row, columns): where a row's text is not empty, those columns show it instead of
    their number (data-value "nan", class "na"). The table scrolls sideways inside its section
    when wider than the page."""
    intervals = intervals or {}
    texts, masked = (list(mask[0]), set(mask[1])) if mask is not None else ([], set())
    head = "".join(
        f'<th data-column="{html.escape(col)}">{html.escape(h)}</th>' for h, col, _ in columns
    )
    body = []
    for r, (_, row) in enumerate(frame.iterrows()):
        cls = ' class="flag"' if flag and bool(row.get(flag, False)) else ""
        cells = []
        for _, col, fmt in columns:
            value = row[col]
            if texts and texts[r] and col in masked:
                cells.append(f'<td class="na" data-value="nan">{html.escape(texts[r])}</td>')
            elif col in intervals:
                lo, hi = (float(row[c]) for c in intervals[col])
                x = float(value)
                text = _pct_interval(x, lo, hi)
                cells.append(
                    f'<td class="num" data-value="{x!r}" data-low="{lo!r}" data-high="{hi!r}">'
                    f"{html.escape(text)}</td>"
                )
            else:
                cells.append(_cell(value, fmt))
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    cap = f'<p class="sf-caption">{html.escape(caption)}</p>' if caption else ""
    return (
        f'{cap}<div class="sf-scroll"><table id="{table_id}" data-table="{table_id}" '
        f'data-rows="{len(frame)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _warning_boxes(report: Report, section: str) -> str:
    w = report.warnings[report.warnings["section"] == section]
    return "".join(
        f'<div class="sf-warn" role="note" data-warning="{html.escape(str(k))}"><b>Caution.</b> '
        f"{html.escape(str(m))}</div>"
        for k, m in zip(w["key"], w["message"])
    )


def _svg(draw: Callable[[Any], Any], chart_id: str, size: tuple[float, float]) -> str:
    """A matplotlib drawing as inline SVG (text as paths: no fonts needed), its ids prefixed so
    several charts can share a page."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context({"svg.fonttype": "path", "svg.hashsalt": chart_id}):
        fig = Figure(figsize=size, layout="constrained")
        ax = fig.subplots()
        draw(ax)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF namespaces only
    text = re.sub(r'\bid="([^"]+)"', rf'id="{chart_id}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{chart_id}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{chart_id}-\1)", text)
    text = text.replace("<svg ", f'<svg id="{chart_id}" data-chart="{chart_id}" role="img" ', 1)
    return text


def _figure(
    draw: Callable[[Any], Any], chart_id: str, caption: str, size: tuple[float, float]
) -> str:
    return (
        f'<figure id="{chart_id}" data-chart="{chart_id}">{_svg(draw, chart_id + "-svg", size)}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _section(section_id: str, title: str, body: str) -> str:
    return (
        f'<section id="{section_id}" data-section="{section_id}">'
        f"<h2>{html.escape(title)}</h2>{body}</section>"
    )


def _kpis(items: Sequence[tuple[str, str, str, float]], caution: Sequence[str] = ()) -> str:
    cells = "".join(
        f'<div class="sf-kpi{" sf-caution" if key in caution else ""}" data-kpi="{key}" '
        f'data-value="{value!r}"><b>{html.escape(shown)}</b>'
        f"<span>{html.escape(label)}</span></div>"
        for key, label, shown, value in items
    )
    return f'<div class="sf-kpis">{cells}</div>'


def _forecast_body(r: Report, fc: Forecast, ft: pd.DataFrame) -> str:
    """The HTML forecast section's chart, tables and warnings."""
    from .plotting import plot_forecast

    body = _figure(
        lambda ax: plot_forecast(fc, r.target, ax),
        "chart-forecast",
        "P(revenue won in the period >= x), with P10 / P50 / P90"
        + (" and the target." if r.target is not None else "."),
        (7.5, 3.4),
    )
    body = _warning_boxes(r, "forecast") + body
    cols: list[Column] = [
        ("period", "period", "text"),
        ("expected", "expected", "money"),
        ("P10", "P10", "money"),
        ("P50", "P50", "money"),
        ("P90", "P90", "money"),
        ("realised", "realised", "money"),
        ("open pipeline", "pipeline_expected", "money"),
        ("new deals", "arrivals_expected", "money"),
        ("open deals", "open_deals", "int"),
    ]
    if r.target is not None:
        cols.append((f"P(≥ {r.target:,.0f})", "p_target", "pct"))
    if "mc_P50" in ft:
        cols += [
            ("MC P10", "mc_P10", "money"),
            ("MC P50", "mc_P50", "money"),
            ("MC P90", "mc_P90", "money"),
        ]
    body += _table(ft, "table-forecast", cols, "Revenue won in the period (exact distribution).")
    rec = fc.track_record
    if len(rec):
        body += _table(
            rec.reset_index(),
            "table-track-record",
            [
                ("method", "method", "text"),
                ("past periods", "periods", "int"),
                ("P10-P90 coverage", "coverage_p10_p90", "pct"),
                ("bias", "bias", "money"),
                ("mean abs. error", "mae", "money"),
                ("pinball loss", "pinball", "money"),
            ],
            "Track record: forecasts of this kind replayed on this log's past (each calibrated "
            "only from what was known at its date). "
            + _calibration_lines(fc)[0].capitalize()
            + ". Coverage near 80% is calibrated.",
        )
    return body


def render_html(report: Report, full_document: bool = True) -> str:
    """Render a :class:`Report` as self-contained HTML (see :meth:`Report.to_html`)."""
    from .plotting import plot_funnel, plot_scorecard, plot_time_in_stage

    r = report
    m = r.model
    level = f"{m.options.level:.0%}"
    parts: list[str] = []
    log = r.log
    span = f"{log.first_time:%Y-%m-%d} .. {log.last_time:%Y-%m-%d}" if log.n_events else "no events"
    o = r.outcomes
    entry = _entry_stage(m)  # not a stage no deal is seen in (its P(win) is the prior's)
    entry_row: dict[Any, Any] = r.funnel.to_dict("index")[entry]
    longest = max(r.horizons) if r.horizons else None
    within_kpi = (
        [
            (
                "won_within",
                f"won within {longest:g} days from {entry}",
                _pct(float(entry_row[_within_column(longest)])),
                float(entry_row[_within_column(longest)]),
            )
        ]
        if longest is not None
        else []
    )
    parts.append(
        f'<header id="summary" data-section="summary"><h1>{html.escape(r.title)}</h1>'
        f'<p class="sf-sub">smartfunnel {html.escape(_core.__version__)} · as of '
        f"{m.as_of:%Y-%m-%d} · {log.n_events:,} events, {log.n_opportunities:,} opportunities "
        f"({span}) · generated {r.generated:%Y-%m-%d %H:%M} UTC</p>"
        + _kpis(
            [
                ("open", "open deals", f"{o['open']:,}", o["open"]),
                ("won", "won", f"{o['won']:,}", o["won"]),
                ("lost", "lost", f"{o['lost']:,}", o["lost"]),
                (
                    "win_rate",
                    f"P(win) from {entry}"
                    + (" (see the caution)" if entry_row["eventual_caution"] else ""),
                    _pct(float(r.funnel["p_win"].to_dict()[entry])),
                    float(r.funnel["p_win"].to_dict()[entry]),
                ),
                *within_kpi,
                (
                    "forecast_p50",
                    "forecast P50",
                    _money(float(r.forecast_table["P50"].iloc[0])),
                    float(r.forecast_table["P50"].iloc[0]),
                ),
            ],
            caution=["win_rate"] if entry_row["eventual_caution"] else [],
        )
        + "</header>"
    )

    # Funnel
    f = r.funnel.reset_index()
    body = _warning_boxes(r, "funnel")
    body += _figure(
        lambda ax: plot_funnel(m, ax),
        "chart-funnel",
        f"P(eventually won) from each stage, with {level} intervals (stages no deal was seen in "
        "left out).",
        (7.5, 3.2),
    )
    body += _table(
        f,
        "table-funnel",
        [
            ("stage", "stage", "text"),
            ("deals reached", "reached", "int"),
            ("stays", "stays", "int"),
            ("open now", "open", "int"),
            ("next", "next", "text"),
            (f"advance [{level}]", "advance", "pct"),
            ("lost", "lost", "pct"),
            (f"P(win) [{level}]", "p_win", "pct"),
            *((f"won ≤ {h:g} d", _within_column(h), "pct") for h in r.horizons),
            ("median days", "median_days", "days"),
            ("days to win", "days_to_win", "days"),
            ("thin history", "insufficient_history", "text"),
            ("caution", "eventual_caution", "text"),
        ],
        "Censoring-aware conversion: deals still open count as censored, not as lost. "
        "'won ≤ N d': P(won within N days of entering the stage), from the stays observed "
        "(no assumption about deals older than the data).",
        flag="insufficient_history",
        intervals={
            "advance": ("advance_low", "advance_high"),
            "p_win": ("p_win_low", "p_win_high"),
        },
        mask=(
            _mask(r.funnel),
            ["advance", "lost", "p_win", "days_to_win", *map(_within_column, r.horizons)],
        ),
    )
    body += _figure(
        lambda ax: plot_time_in_stage(m, ax),
        "chart-time-in-stage",
        "Share of stays still in each stage after t days (Kaplan-Meier).",
        (7.5, 3.2),
    )
    parts.append(_section("funnel", "Funnel and conversion", body))

    # Forecast
    fc = r.forecast
    ft = r.forecast_table.reset_index()
    if _prior_only(r.outcomes):  # nothing to learn from: the warning, and no number
        parts.append(_section("forecast", "Forecast", _warning_boxes(r, "forecast")))
    else:
        parts.append(_section("forecast", "Forecast", _forecast_body(r, fc, ft)))

    # Backtest
    if r.backtest is not None:
        bt = r.backtest
        body = _figure(
            lambda ax: bt.plot_backtest(ax=ax),
            "chart-backtest",
            "Forecasts replayed at past dates, each fitted only on what was known then, against "
            "what was actually won.",
            (7.5, 3.4),
        )
        body += _table(
            bt.metrics.reset_index(),
            "table-backtest-metrics",
            [
                ("method", "method", "text"),
                ("periods", "periods", "int"),
                ("mean abs. error", "mae", "money"),
                ("bias", "bias", "money"),
                ("P10-P90 coverage", "coverage_p10_p90", "pct"),
                ("pinball loss", "pinball", "money"),
                ("Brier (deals)", "brier", "ratio"),
            ],
            "Accuracy by method: smartfunnel's time-bounded forecast against the weighted "
            "pipeline and the closed-only conversion rates. Coverage near 80% is calibrated.",
        )
        own = bt.table[bt.table["method"] == "smartfunnel"].copy()
        own["as_of"] = own["as_of"].dt.strftime("%Y-%m-%d")
        body += _table(
            own,
            "table-backtest",
            [
                ("forecast made on", "as_of", "text"),
                ("P10", "P10", "money"),
                ("P50", "P50", "money"),
                ("P90", "P90", "money"),
                ("actually won", "actual", "money"),
                ("error", "error", "money"),
                ("in P10-P90", "covered", "text"),
                ("open deals", "open_deals", "int"),
            ],
            "smartfunnel's forecast at each past date.",
        )
        parts.append(_section("backtest", "Forecast accuracy (backtest)", body))

    # Coaching
    if r.coaching is not None:
        coach = r.coaching
        n_reps = len(coach.reps)
        sc = r.scorecard.reset_index()
        body = _figure(
            lambda ax: plot_scorecard(coach, ax),
            "chart-scorecard",
            "Advance rate by rep and stage, coloured by the gap to the team.",
            (7.5, min(8.0, max(2.6, 0.3 * n_reps + 1.4))),
        )
        rs = r.rep_summary.reset_index()
        body += _table(
            rs,
            "table-rep-summary",
            [
                ("rep", "owner", "text"),
                ("win rate", "win_rate", "pct"),
                ("days to win", "days_to_win", "days"),
                ("avg won amount", "avg_won_amount", "money"),
                ("open deals", "open_deals", "int"),
                ("weighted pipeline", "weighted_pipeline", "money"),
                ("activities / open deal / week", "activities_per_open_deal_week", "ratio"),
            ],
            "Per rep and the team.",
        )
        body += _table(
            sc,
            "table-scorecard",
            [
                ("rep", "owner", "text"),
                ("stage", "stage", "text"),
                (f"advance [{level}]", "advance", "pct"),
                ("team advance", "team_advance", "pct"),
                (f"P(win) [{level}]", "p_win", "pct"),
                ("team P(win)", "team_p_win", "pct"),
                ("lost", "lost", "pct"),
                ("median days", "median_days", "days"),
                ("team median days", "team_median_days", "days"),
                ("exits", "exits", "int"),
                ("below team", "below_team", "text"),
                ("thin history", "insufficient_history", "text"),
            ],
            "Rows below the team (the whole interval under the team's rate) are shaded.",
            flag="below_team",
            intervals={
                "advance": ("advance_low", "advance_high"),
                "p_win": ("p_win_low", "p_win_high"),
            },
        )
        parts.append(_section("scorecards", "Rep scorecards", body))
        fo = r.focus.reset_index()
        fo["focus"] = np.where(
            fo["credible"].astype(bool),
            fo["stage"],
            np.where(fo["expected_gain"] > 0, "no credible gap", "(at or above the team)"),
        )
        fo["largest_gap"] = np.where(fo["expected_gain"] > 0, fo["stage"], "")
        body = _table(
            fo,
            "table-focus",
            [
                ("rep", "owner", "text"),
                ("focus stage", "focus", "text"),
                ("credible gap", "credible", "text"),
                ("largest gain at", "largest_gap", "text"),
                ("rep advance", "current_rate", "pct"),
                ("team advance", "team_rate", "pct"),
                ("expected gain if matched", "expected_gain", "money"),
                ("from open pipeline", "pipeline_gain", "money"),
                ("from new deals", "arrivals_gain", "money"),
            ],
            "The stage where the rep's advance interval lies wholly below the team's rate (a "
            "credible gap) and raising it to the team's adds the most expected revenue (open "
            "pipeline plus the next 90 days of new deals). Without a credible gap the focus reads "
            "'no credible gap': the gain shown is what matching the team would bring if the gap "
            "were real, not a recommendation.",
            flag="credible",
        )
        parts.append(_section("coaching", "Coaching focus", body))
        st = r.stalled
        body = (
            f'<p class="sf-note">{len(st):,} open deals longer in their stage than the '
            f"p{r.stalled_quantile * 100:.0f} of its time in stage (or, where that lies beyond "
            "the data, than every stay that left the stage), largest first.</p>"
        )
        stalled_cols: list[Column] = [
            ("deal", "opportunity_id", "text"),
            ("rep", "owner", "text"),
            ("stage", "stage", "text"),
            ("days in stage", "age_days", "days"),
            ("amount", "amount", "money"),
            ("why", "reasons", "text"),
        ]
        shown = st.head(_STALLED_SHOWN)
        body += _table(shown, "table-stalled", stalled_cols)
        if len(st) > len(shown):  # the rest folded away: a page a manager can scroll
            body += (
                f"<details><summary>the other {len(st) - len(shown):,} stalled deals</summary>"
                f"{_table(st.iloc[len(shown) :], 'table-stalled-more', stalled_cols)}</details>"
            )
        parts.append(_section("stalled", "Stalled deals", body))
    else:
        parts.append(
            _section(
                "coaching",
                "Coaching",
                '<p class="sf-note">The log has no owners (reps): no scorecards, focus or '
                "stalled-deal review.</p>",
            )
        )

    # Data quality
    body = _table(
        r.quality,
        "table-quality",
        [("item", "item", "text"), ("count", "count", "int"), ("", "detail", "text")],
    )
    lists = []
    if len(r.issues):
        lists.append(
            _table(
                _issues_by_kind(r.issues),
                "table-issues-by-reason",
                [
                    ("action", "action", "text"),
                    ("where", "where", "text"),
                    ("rows", "count", "int"),
                    ("reason (first row's)", "reason", "text"),
                ],
                "Import issues by kind: action, table and column, with the first row's reason "
                "(reasons name each row's own values; every row is in the list below).",
            )
        )
        lists.append(_details("table-issues", "every import issue", r.issues))
    if len(log.rejected):
        lists.append(_details("table-rejected", "every rejected row", log.rejected))
    body += "".join(lists)
    parts.append(_section("quality", "Data quality", body))

    # Assumptions
    body = _table(
        r.assumptions,
        "table-assumptions",
        [("setting", "setting", "text"), ("value", "value", "text"), ("note", "note", "text")],
    )
    parts.append(_section("assumptions", "Assumptions and options", body))

    fragment = (
        f'<div class="sf-report" data-smartfunnel-report="{html.escape(_core.__version__)}">'
        f"<style>{_CSS}</style>{''.join(parts)}</div>"
    )
    if not full_document:
        return fragment
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(r.title)} — smartfunnel report</title>"
        "<style>body{margin:0;background:#fff}</style>"
        f"</head><body>{fragment}</body></html>\n"
    )


def _details(table_id: str, label: str, frame: pd.DataFrame) -> str:
    cols: list[Column] = [(str(c), str(c), "text") for c in frame.columns]
    shown = frame.copy()
    shown.columns = [str(c) for c in shown.columns]
    return (
        f"<details><summary>{html.escape(label)} ({len(frame):,})</summary>"
        f"{_table(shown, table_id, cols)}</details>"
    )
