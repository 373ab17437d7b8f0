"""plan(model, log, target, start, end): the reverse funnel, from a revenue target to actions."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import _convert, _core
from .coaching import ActivityLog
from .event_log import EventLog
from .forecasting import _day_bounds, forecast
from .model import FunnelModel, fit


def plan(
    model: FunnelModel,
    log: EventLog,
    target: float | Mapping[str, float],
    start: Any,
    end: Any,
    by: str | None = "owner",
    activities: ActivityLog | None = None,
    confidence: float = 0.5,
    *,
    as_of: Any = None,
    tz: str = "UTC",
    lookback_days: float = 180.0,
) -> pd.DataFrame:
    """The reverse funnel: from a revenue target for ``[start, end]`` to the pipeline, new deals
    and activities each rep needs, using the rep's own rates, deal size and cycle times.

    Parameters
    ----------
    target : float or mapping
        One team figure (split among reps in proportion to each rep's expected revenue from
        today's pipeline, or evenly when nobody has any), or ``{rep: target}``.
    by : "owner" or None
        Per rep (the model is refitted by owner when needed) plus a team row, or the team only.
    confidence : float
        The plan aims for P(revenue >= target) >= confidence: today's pipeline counts for its
        (1 - confidence)-quantile, the gap is the rest.
    lookback_days : float
        Window for the rep's deal size, creation history and activities per advance.

    Returns
    -------
    DataFrame
        Per rep (and ``team``): target, pipeline_quantile, p_reach_target (with today's pipeline),
        gap, deal_size, one ``pipeline_needed[<stage>]`` column per stage (money to have at that
        stage now if the gap were filled from it alone, with ``deals_needed[<stage>]``),
        new_deals_per_week, and ``<kind>_per_week`` per activity kind.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    target = _checked_target(target)
    when = model.as_of if as_of is None else pd.Timestamp(as_of)
    grouped = model
    if by == "owner":
        groups = (
            [model.options.groups]
            if isinstance(model.options.groups, str)
            else list(model.options.groups)
        )
        if groups != ["owner"] or as_of is not None:
            grouped = fit(log, dataclasses.replace(model.options, groups=["owner"], as_of=when))
    elif by is not None:
        raise ValueError(f"by must be 'owner' or None, got {by!r}")
    # Only the deals' probabilities are used: the total's calibration is not needed here.
    fc = forecast(
        grouped,
        log,
        start,
        end,
        as_of=when,
        scenarios=0,
        include_arrivals=False,
        tz=tz,
        calibrate=False,
    )
    if fc.end + pd.Timedelta(days=1) <= fc.as_of:
        raise _core.InvalidOptionsError(
            f"the period {fc.start:%Y-%m-%d} .. {fc.end:%Y-%m-%d} is over at as_of "
            f"{fc.as_of:%Y-%m-%d %H:%M}: a plan is for a period that has not ended"
        )
    deals = fc.deals
    reps = [k[0] for k in grouped.groups if len(k) == 1] if by == "owner" else []
    if isinstance(target, Mapping) and by == "owner":
        _check_rep_names(target, reps)
    expected = (
        {r: float(deals.loc[deals["owner"] == r, "expected"].sum()) for r in reps} if reps else {}
    )
    targets = _split(target, reps, expected)
    t0, t1 = _day_bounds(start, end, tz)
    # Seconds in one step of the model's grid (won_within counts whole steps: days by default).
    tick = grouped.core.options.tick_seconds * grouped.core.grid_ticks
    t = _convert.instant_seconds(when)
    h_end = (t1 - 1 - t) // tick
    h_start = (t0 - 1 - t) // tick if t0 > t else -1
    history = _history(log, activities, t, lookback_days)
    rows = []
    for rep in [*reps, None]:
        group = (rep,) if rep is not None else None
        sel = deals if rep is None else deals[deals["owner"] == rep]
        tgt = float(sum(targets.values())) if rep is None else targets[rep]
        rows.append(
            _plan_row(
                grouped,
                group,
                sel,
                tgt,
                confidence,
                h_start,
                h_end,
                tick,
                history,
                rep,
            )
        )
    return pd.DataFrame(rows).set_index("owner")


MAX_TARGET = 1e15
"""The largest target plan() accepts (a quadrillion in the amounts' unit): beyond any revenue."""


def _one_target(value: Any, name: str) -> float:
    """A target figure: a finite amount in [0, MAX_TARGET], or InvalidOptionsError naming it."""
    x = _convert.option_float(value, name)
    if not (0.0 <= x <= MAX_TARGET):  # NaN fails too
        raise _core.InvalidOptionsError(
            f"{name} must be an amount in [0, {MAX_TARGET:.0e}] (revenue to win in the period), "
            f"got {value!r}"
        )
    return x


def _checked_target(target: Any) -> float | dict[str, float]:
    if isinstance(target, Mapping):
        if not target:
            raise _core.InvalidOptionsError("target: the mapping names no rep")
        return {str(k): _one_target(v, f"target[{k!r}]") for k, v in target.items()}
    return _one_target(target, "target")


def _check_rep_names(target: Mapping[str, float], reps: list[str]) -> None:
    """Every rep a target mapping names is a rep of the log; the unknown ones are named with the
    closest known names (a typo would otherwise drop that rep's figure)."""
    unknown = [name for name in target if name not in set(reps)]
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, reps, n=3, cutoff=0.6)
        parts.append(f"{name!r}" + (f" (closest: {', '.join(map(repr, close))})" if close else ""))
    raise _core.InvalidOptionsError(
        f"target names rep(s) the log does not have: {'; '.join(parts)}; the reps are "
        f"{reps[:20]}{' ...' if len(reps) > 20 else ''}"
    )


def _split(
    target: float | Mapping[str, float], reps: list[str], expected: Mapping[str, float]
) -> dict[str, float]:
    if isinstance(target, Mapping):
        missing = [r for r in reps if r not in target]
        if missing:
            raise ValueError(f"target has no figure for rep(s) {missing}")
        return (
            {r: float(target[r]) for r in reps} if reps else {"team": float(sum(target.values()))}
        )
    if not reps:
        return {"team": float(target)}
    total = sum(expected.values())
    if total > 0:
        return {r: float(target) * expected[r] / total for r in reps}
    return {r: float(target) / len(reps) for r in reps}


def _history(
    log: EventLog, activities: ActivityLog | None, t: int, lookback_days: float
) -> pd.DataFrame:
    """Per deal created in the lookback: owner, amount at creation, forward moves, activities."""
    events = log.to_frame()
    events = events[events["time"] <= _convert.to_timestamp(t)]
    created = pd.Series(np.asarray(log.core.created), index=log.opportunity_ids())
    recent = created[(created > t - lookback_days * 86400) & (created <= t)].index
    state = log.core.state_at(t)
    owners = np.asarray([*log.core.owner_names, "(missing)"], dtype=object)
    codes = np.asarray(state["owner"])
    owner_of = pd.Series(
        owners[np.where(codes < 0, len(owners) - 1, codes)], index=log.opportunity_ids()
    )
    first_amount = pd.Series(
        np.nan_to_num(np.asarray(state["amount"])), index=log.opportunity_ids()
    )
    order = {name: i for i, name in enumerate(log.funnel.names)}
    n_open = len(log.funnel.stages)
    won = set(log.funnel.won)
    ev = events[events["opportunity_id"].isin(recent)].copy()
    ev["code"] = ev["stage"].astype(str).map(order)
    ev = ev.sort_values(["opportunity_id", "time"])
    prev = ev.groupby("opportunity_id")["code"].shift()
    forward = (prev.notna()) & (
        ((ev["code"] > prev) & (ev["code"] < n_open)) | ev["stage"].astype(str).isin(won)
    )
    advances = forward.groupby(ev["opportunity_id"]).sum()
    out = pd.DataFrame(
        {
            "owner": owner_of.reindex(recent).to_numpy(),
            "amount": first_amount.reindex(recent).to_numpy(),
            "advances": advances.reindex(recent).fillna(0).to_numpy(),
        },
        index=recent,
    )
    if activities is not None:
        acts = activities.to_frame()
        acts = acts[
            acts["opportunity_id"].isin(recent) & (acts["time"] <= _convert.to_timestamp(t))
        ]
        counts = acts.groupby(["opportunity_id", "kind"]).size().unstack(fill_value=0)
        out = out.join(counts.add_prefix("act:"), how="left").fillna(0)
    return out


def _plan_row(
    model: FunnelModel,
    group: tuple[str, ...] | None,
    deals: pd.DataFrame,
    target: float,
    confidence: float,
    h_start: int,
    h_end: int,
    tick: int,
    history: pd.DataFrame,
    rep: str | None,
) -> dict[str, Any]:
    from . import _core
    from .forecasting import _Distribution

    stages = list(model.funnel.stages)
    dist = _Distribution(
        _core.exact_distribution(
            deals["amount"].to_numpy(), np.nan_to_num(deals["p_win_period"].to_numpy())
        )
    )
    have = dist.quantile(1.0 - confidence)
    p_reach = dist.probability_at_least(target)
    gap = max(0.0, target - have)
    hist = history if rep is None else history[history["owner"] == rep]
    deal_size = float(hist["amount"].mean()) if len(hist) else float("nan")
    row: dict[str, Any] = {
        "owner": "team" if rep is None else rep,
        "target": target,
        "pipeline_quantile": have,
        "p_reach_target": p_reach,
        "gap": gap,
        "deal_size": deal_size,
    }
    # P(won in the period | entering stage s now) for each stage: pipeline needed there.
    won = model.core.won_within(model.groups.index(group) if group else 0, max(h_end, 0))
    won = np.asarray(won)

    def within(s: int, x: int) -> float:
        return float(won[x, s]) if x >= 0 else 0.0

    for s, stage in enumerate(stages):
        p = within(s, h_end) - within(s, h_start)
        need = gap / p if p > 0 else (0.0 if gap == 0 else float("inf"))
        row[f"pipeline_needed[{stage}]"] = need
        row[f"deals_needed[{stage}]"] = (
            need / deal_size if deal_size and np.isfinite(deal_size) else float("nan")
        )
    # New deals per week: a deal created in week w (at its start, in the entry stage) is won in the
    # period with q_w; creating k a week for every week of the period gives k * size * sum q_w.
    weeks = int(np.ceil((h_end + 1) * tick / (7 * 86400)))
    q = [
        within(0, h_end - (7 * 86400 * w) // tick) - within(0, h_start - (7 * 86400 * w) // tick)
        for w in range(weeks)
    ]
    per_deal = deal_size * float(np.sum(q)) if np.isfinite(deal_size) else 0.0
    per_week = gap / per_deal if per_deal > 0 else (0.0 if gap == 0 else float("inf"))
    row["new_deals_per_week"] = per_week
    # Activities per week: the rep's own activities per advance, times the advances the new deals
    # make (their historical advances per deal).
    advances = float(hist["advances"].sum())
    per_deal_advances = advances / len(hist) if len(hist) else 0.0
    for col in [c for c in history.columns if c.startswith("act:")]:
        per_advance = float(hist[col].sum()) / advances if advances > 0 else float("nan")
        row[f"{col[4:]}_per_week"] = per_week * per_deal_advances * per_advance
    return row
