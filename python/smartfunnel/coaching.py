"""Coaching: manage the actions, not the results.

ActivityLog (the actions taken on each deal, attributed to the stage it was in), and
``coaching(model, log, activities)`` with the rep scorecard and the coaching focus: the stage where
raising a rep's conversion to the team's level adds the most expected revenue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from . import _convert, _core, _html
from .event_log import EventLog
from .model import FunnelModel, fit


def _rebuild_activity_log(
    log: EventLog, columns: dict[str, Any], rejected: pd.DataFrame
) -> ActivityLog:
    """The activity log pickled by :meth:`ActivityLog.__reduce__`."""
    dense = columns["dense"]
    if log.core.string_ids:  # codes into the log's own ids
        opp, names = dense, [str(x) for x in log.opportunity_ids()]
    else:
        opp, names = np.asarray(log.opportunity_ids(), dtype=np.int64)[dense], None
    core = _core.ActivityLog.from_columns(
        log.core,
        opp,
        names,
        columns["time"],
        columns["kind"],
        columns["kind_names"],
        owner=columns["owner"],
        owner_names=columns["owner_names"],
        buyer=columns["buyer"],
    )
    return ActivityLog(core, log, rejected)


class ActivityLog:
    """The actions taken on a log's opportunities (calls, emails, meetings, demos, ...).

    Each activity is attributed to the stage its deal was in at that moment. Build one with
    :meth:`from_frame`; an opportunity that is not in the event log is an error naming the row
    (strict) or a rejected row with its reason (lenient), never silently dropped.
    """

    def __init__(self, core: _core.ActivityLog, log: EventLog, rejected: pd.DataFrame):
        self._a = core
        self._log = log
        self._rejected = rejected

    @classmethod
    def from_frame(
        cls,
        log: EventLog,
        frame: pd.DataFrame,
        opportunity: str = "opportunity_id",
        time: str = "time",
        kind: str = "kind",
        owner: str | None = None,
        buyer: str | None = None,
        validation: str = "strict",
    ) -> ActivityLog:
        """Build the activity log of `log` from a frame with one row per activity.

        Parameters
        ----------
        log : EventLog
        frame : pandas.DataFrame
        opportunity, time, kind : str
            Column names; kinds are user-defined labels.
        owner : str, optional
            Who did it.
        buyer : str, optional
            A boolean column: True where the buyer acted (replied, booked a meeting, signed).
        validation : {"strict", "lenient"}
        """
        needed = [c for c in (opportunity, time, kind, owner, buyer) if c is not None]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise _convert.data_error(
                f"column {missing[0]!r} is not in the frame (columns: {list(map(str, frame.columns))})",
                None,
                missing[0],
            )
        ids = frame[opportunity]
        if log.core.string_ids:
            codes, names = _convert.codes_and_names(ids.astype("string"), opportunity)
            opp, opp_names = codes.astype(np.int64), names
        else:
            if not pd.api.types.is_integer_dtype(ids.dtype):
                raise _convert.data_error(
                    f"column {opportunity!r} must hold integer ids like the event log, got {ids.dtype}",
                    None,
                    opportunity,
                )
            opp, opp_names = ids.to_numpy(dtype=np.int64), None
        # Cells that cannot be parsed go to the core with their rows: strict raises for the first
        # bad row, lenient rejects every such row and keeps the others.
        bad: _convert.Problems = []
        seconds = _convert.to_seconds(frame[time], time, bad, "time")
        kinds, kind_names = _convert.codes_and_names(frame[kind], kind, bad, "kind")
        kwargs: dict[str, Any] = {}
        if owner is not None:
            kwargs["owner"], kwargs["owner_names"] = _convert.codes_and_names(
                frame[owner], owner, bad, "owner"
            )
        if buyer is not None:
            b = frame[buyer]
            if pd.api.types.is_bool_dtype(b.dtype) and not b.isna().any():
                flags = b.to_numpy(dtype=bool)
            else:
                ok = b.isin([0, 1, True, False]).to_numpy() & b.notna().to_numpy()
                for row in np.flatnonzero(~ok):
                    bad.append(
                        (int(row), buyer, f"{buyer} must be True/False, got {b.iloc[row]!r}")
                    )
                flags = b.where(ok, False).to_numpy(dtype=bool)
            kwargs["buyer"] = flags.astype(np.uint8)
        try:
            core = _core.ActivityLog.from_columns(
                log.core,
                opp,
                opp_names,
                seconds,
                kinds,
                kind_names,
                validation=validation,
                unparsed=bad,
                **kwargs,
            )
        except _core.DataError as err:
            col = {"opportunity": opportunity, "time": time, "kind": kind, "owner": owner}.get(
                str(err.column)
            )
            if col:
                err.column = col
            raise
        user = {"opportunity": opportunity, "time": time, "kind": kind, "owner": owner}
        rows = [r for r, _, _ in core.rejected]
        rejected = frame.iloc[rows].copy()
        rejected.insert(0, "row", rows)
        rejected["rejected_column"] = [user.get(c) or c for _, c, _ in core.rejected]
        rejected["reason"] = [why for _, _, why in core.rejected]
        return cls(core, log, rejected)

    @property
    def core(self) -> _core.ActivityLog:
        return self._a

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickles as its event log and its columns (the compiled log is rebuilt from them on
        load, identical: the rows are already in its order), so an activity log travels to worker
        processes like the event log."""
        a = self._a
        offsets = np.asarray(a.offsets, dtype=np.int64)
        counts = offsets[1:] - offsets[:-1]
        dense = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        columns = {
            "dense": dense,
            "time": np.asarray(a.times, dtype=np.int64).copy(),
            "kind": np.asarray(a.kinds, dtype=np.int32).copy(),
            "kind_names": list(a.kind_names),
            "owner": np.asarray(a.owners, dtype=np.int32).copy(),
            "owner_names": list(a.owner_names),
            "buyer": np.asarray(a.buyer, dtype=np.uint8).copy(),
        }
        return (_rebuild_activity_log, (self._log, columns, self._rejected))

    @property
    def rejected(self) -> pd.DataFrame:
        """Rows rejected in lenient mode, with `row`, `rejected_column` and `reason`."""
        return self._rejected

    def __len__(self) -> int:
        return int(self._a.size)

    def to_frame(self) -> pd.DataFrame:
        """opportunity_id, time, kind, owner, buyer and the stage the deal was in."""
        offsets = np.asarray(self._a.offsets)
        opp = np.repeat(self._log.opportunity_ids(), np.diff(offsets).astype(np.int64))
        names = np.asarray([*self._log.funnel.names, "(before first stage)"], dtype=object)
        stage = np.asarray(self._a.stages)
        owners = np.asarray([*self._a.owner_names, None], dtype=object)
        owner_codes = np.asarray(self._a.owners)
        return pd.DataFrame(
            {
                "opportunity_id": opp,
                "time": pd.to_datetime(np.asarray(self._a.times), unit="s", utc=True),
                "kind": np.asarray(self._a.kind_names, dtype=object)[
                    np.asarray(self._a.kinds, dtype=np.int64)
                ],
                "owner": owners[np.where(owner_codes < 0, len(owners) - 1, owner_codes)],
                "buyer": np.asarray(self._a.buyer).astype(bool),
                "stage": names[np.where(stage < 0, len(names) - 1, stage)],
            }
        )

    def __repr__(self) -> str:
        return f"ActivityLog({len(self):,} activities, kinds {list(self._a.kind_names)[:8]})"

    def _repr_html_(self) -> str:
        kinds = np.asarray(self._a.kinds, dtype=np.int64)
        names = list(self._a.kind_names)
        counts = np.bincount(kinds, minlength=len(names)) if len(kinds) else np.zeros(len(names))
        buyer = np.asarray(self._a.buyer).astype(bool)
        per_kind = pd.DataFrame(
            {
                "activities": counts.astype(np.int64),
                "buyer": np.bincount(kinds[buyer], minlength=len(names)).astype(np.int64)
                if len(kinds)
                else np.zeros(len(names), dtype=np.int64),
            },
            index=pd.Index(names, name="kind"),
        )
        return _html.box(
            "ActivityLog",
            f"{len(self):,} activities, {len(self._rejected):,} rejected rows",
            _html.frame(per_kind),
        )


def coaching(
    model: FunnelModel,
    log: EventLog,
    activities: ActivityLog | None = None,
    as_of: Any = None,
    *,
    lookback_days: float = 28.0,
    arrivals_lookback_days: float = 180.0,
) -> Coaching:
    """Coaching metrics as of a date (default: the model's as_of), per rep against the team.

    The rates come from a fit grouped by owner (the model is refitted with ``groups=["owner"]``,
    same options otherwise, when it was not grouped that way), so each rep's rows are shrunk toward
    the team's by empirical Bayes and carry intervals and the insufficient-history flag. A stay
    belongs to the owner at the end of the stay.
    """
    opts = model.options
    when = model.as_of if as_of is None else pd.Timestamp(as_of)
    groups = list(opts.groups) if not isinstance(opts.groups, str) else [opts.groups]
    if groups != ["owner"] or as_of is not None:
        model = fit(log, dataclasses.replace(opts, groups=["owner"], as_of=when))
    return Coaching(model, log, activities, lookback_days, arrivals_lookback_days)


_CELL_KEYS = ["stage", "kind", "owner", "exposed", "days"]
_CELL_COUNTS = ["n", "resolved", "advanced"]


def _sum_cells(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Action-effectiveness cells of disjoint sets of stays, added up (keys sorted)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(
            {
                **{k: pd.Series([], dtype=object) for k in ("stage", "kind", "owner")},
                "exposed": pd.Series([], dtype=bool),
                "days": pd.Series([], dtype=np.float64),
                **{k: pd.Series([], dtype=np.int64) for k in _CELL_COUNTS},
            }
        )
    return (
        pd.concat(parts, ignore_index=True)
        .groupby(_CELL_KEYS, sort=True, observed=True)[_CELL_COUNTS]
        .sum()
        .reset_index()
    )


def _advance_rate(
    days: np.ndarray, n: np.ndarray, resolved: np.ndarray, advanced: np.ndarray
) -> float:
    """P(advance) among stays, censoring-aware, from counts of stays by duration (n stays of
    `days` days, `resolved` of them resolved, `advanced` of those advancing): Aalen-Johansen
    incidence of advancing over the resolved mass (open stays censored at their current duration;
    exits before censorings at tied durations)."""
    if n.sum() == 0 or resolved.sum() == 0:
        return float("nan")
    ud, inverse = np.unique(days, return_inverse=True)
    n_u = np.bincount(inverse, n, len(ud))
    r_u = np.bincount(inverse, resolved, len(ud))
    a_u = np.bincount(inverse, advanced, len(ud))
    at_risk = np.cumsum(n_u[::-1])[::-1]
    surv, inc = 1.0, 0.0
    for j in np.flatnonzero(r_u > 0):
        inc += surv * a_u[j] / at_risk[j]
        surv *= 1.0 - r_u[j] / at_risk[j]
    return inc / (1.0 - surv) if surv < 1.0 else float("nan")


def _rate(cells: pd.DataFrame) -> float:
    return _advance_rate(
        cells["days"].to_numpy(),
        cells["n"].to_numpy(dtype=np.float64),
        cells["resolved"].to_numpy(dtype=np.float64),
        cells["advanced"].to_numpy(dtype=np.float64),
    )


def _risk_ratio(stage: str, kind: str, landmark: float, cells: pd.DataFrame) -> dict[str, Any]:
    """Rates with and without the action, and the Mantel-Haenszel risk ratio stratified by owner,
    from the cells of one (stage, kind)."""
    x = cells["exposed"].to_numpy(dtype=bool)
    n = cells["n"].to_numpy()
    n1, n0 = int(n[x].sum()), int(n[~x].sum())
    rate_with = _rate(cells[x])
    rate_without = _rate(cells[~x])
    owners = cells["owner"].to_numpy()
    num = den = var_num = 0.0
    for owner in np.unique(owners):
        m = owners == owner
        b1, b0 = float(n[x & m].sum()), float(n[~x & m].sum())
        total = b1 + b0
        if b1 == 0 or b0 == 0:
            continue
        # Effective numbers advancing: stays at risk times the censoring-aware rate.
        a = b1 * _rate(cells[x & m])
        c = b0 * _rate(cells[~x & m])
        if not (np.isfinite(a) and np.isfinite(c)):
            continue
        num += a * b0 / total
        den += c * b1 / total
        var_num += (b1 * b0 * (a + c) - a * c * total) / total**2
    lift = low = high = p_value = np.nan
    if num > 0 and den > 0:
        lift = num / den
        se = np.sqrt(max(var_num, 0.0) / (num * den))
        low, high = (
            float(np.exp(np.log(lift) - 1.96 * se)),
            float(np.exp(np.log(lift) + 1.96 * se)),
        )
        z = abs(np.log(lift)) / se if se > 0 else np.inf
        from math import erfc, sqrt

        p_value = float(erfc(z / sqrt(2.0)))
    return {
        "stage": stage,
        "kind": kind,
        "landmark_days": landmark,
        "rate_with": rate_with,
        "rate_without": rate_without,
        "lift": lift,
        "low": low,
        "high": high,
        "p_value": p_value,
        "n": n1 + n0,
        "n_with": n1,
        "n_without": n0,
    }


def _landmarks(
    model: FunnelModel, landmark_days: Mapping[str, float] | float | None
) -> dict[str, float]:
    """The landmark of each stage, in days (default: the stage's median time in stage)."""
    out = {}
    for stage in model.funnel.stages:
        if isinstance(landmark_days, Mapping):
            out[stage] = float(landmark_days[stage])
        elif landmark_days is not None:
            out[stage] = float(landmark_days)
        else:
            out[stage] = float(np.asarray(model.time_in_stage().loc[stage, "median_days"]).item())
    return out


def _effectiveness(
    cells: pd.DataFrame, stages: Sequence[str], kinds: Sequence[str], landmarks: Mapping[str, float]
) -> pd.DataFrame:
    """Action effectiveness from its cells: a row per stage with stays at risk and kind, in
    stage then `kinds` order, with Benjamini-Hochberg q-values over all rows."""
    rows = []
    by_stage = {k: g for k, g in cells.groupby("stage", sort=False)}
    for stage in stages:
        if stage not in by_stage:
            continue
        by_kind = {k: g for k, g in by_stage[stage].groupby("kind", sort=False)}
        for kind in kinds:
            if kind in by_kind:
                rows.append(_risk_ratio(stage, kind, landmarks[stage], by_kind[kind]))
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    p = out["p_value"].to_numpy()
    ok = np.isfinite(p)
    q = np.full(len(p), np.nan)
    if ok.any():
        order = np.argsort(p[ok])
        ranked = p[ok][order] * ok.sum() / (np.arange(ok.sum()) + 1)
        adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
        qv = np.empty(ok.sum())
        qv[order] = np.minimum(adjusted, 1.0)
        q[ok] = qv
    out["q_value"] = q
    return out.set_index(["stage", "kind"])


def _coverage(weighted: float, target: Mapping[str, float] | None, rep: str | None) -> float:
    """Weighted pipeline / remaining target, NaN without a target for the rep."""
    remaining = target.get(rep) if target is not None and rep is not None else None
    return weighted / remaining if remaining else float("nan")


def _entry_stage(model: FunnelModel) -> str:
    """The first open stage the team's stays are seen in: where deals enter the funnel.

    An export may define stages no deal is ever seen in (Maven's Prospecting, whose rows carry no
    date): P(win) from such a stage is the prior's guess (50% with prior 1) times the rest of the
    funnel, not a win rate. Falls back to the first stage when no stay is seen at all.

    Parameters
    ----------
    model : FunnelModel

    Returns
    -------
    str
        The stage's name.
    """
    n = model.stage_summary()["n"]
    seen = [s for s in model.funnel.stages if int(np.asarray(n.loc[s]).item()) > 0]
    return seen[0] if seen else model.funnel.stages[0]


def _win_probability(p: np.ndarray) -> np.ndarray:
    n = p.shape[0]
    return np.asarray(np.linalg.solve(np.eye(n) - p[:, :n], p[:, n]))


def _rows(
    model: FunnelModel, group: tuple[str, ...] | None
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    tm = model.transition_matrix(group)
    return tm.to_numpy(), model.stage_summary(group), model.time_in_stage(group)


def _scorecard(model: FunnelModel) -> pd.DataFrame:
    """The scorecard of a model grouped by owner (see :meth:`Coaching.scorecard`)."""
    stages = list(model.funnel.stages)
    forward = [*list(model.funnel.stages)[1:], "Won"]
    summary = model.summary
    team_tm, team_sum, team_tis = _rows(model, None)
    out = []
    for rep in [k[0] for k in model.groups if len(k) == 1]:
        tm, ss, tis = _rows(model, (rep,))
        s = summary.xs(rep, level="group")
        for i, stage in enumerate(stages):
            fwd = forward[i]
            dest = f"{fwd}" if fwd != "Won" else model.funnel.won[0]
            row = cast(pd.Series, s.loc[(stage, dest)])
            team_adv = float(
                team_tm[i, stages.index(fwd)] if fwd != "Won" else team_tm[i, len(stages)]
            )
            adv = float(tm[i, stages.index(fwd)] if fwd != "Won" else tm[i, len(stages)])
            out.append(
                {
                    "owner": rep,
                    "stage": stage,
                    "p_win": ss.loc[stage, "p_win"],
                    "p_win_low": ss.loc[stage, "p_win_low"],
                    "p_win_high": ss.loc[stage, "p_win_high"],
                    "team_p_win": team_sum.loc[stage, "p_win"],
                    "advance": adv,
                    "advance_low": row["low"],
                    "advance_high": row["high"],
                    "team_advance": team_adv,
                    "lost": float(tm[i, len(stages) + 1]),
                    "team_lost": float(team_tm[i, len(stages) + 1]),
                    "median_days": tis.loc[stage, "median_days"],
                    "team_median_days": team_tis.loc[stage, "median_days"],
                    "exits": int(np.asarray(ss.loc[stage, "exits"]).item()),
                    "insufficient_history": bool(
                        np.asarray(ss.loc[stage, "insufficient_history"]).item()
                    ),
                    "below_team": bool(float(row["high"]) < team_adv),
                }
            )
    return pd.DataFrame(out).set_index(["owner", "stage"])


def _top_focus(focus: pd.DataFrame) -> pd.DataFrame:
    """Each rep's coaching focus from :meth:`Coaching.focus`: the stage with the largest expected
    gain among those where the rep's gap to the team is credible (``credible``: the rep's advance
    interval wholly below the team's rate); a rep without any keeps their largest-gain row, with
    ``credible`` False (a gap that may be noise: no recommendation).

    Parameters
    ----------
    focus : DataFrame
        :meth:`Coaching.focus`'s table, indexed by (owner, stage).

    Returns
    -------
    DataFrame
        One row per rep, indexed by owner, with the stage as a column.
    """
    f = focus.reset_index()
    key = (~f["credible"].astype(bool)).astype(int)  # credible first, then by gain
    f = f.assign(_key=key).sort_values(
        ["owner", "_key", "expected_gain"], ascending=[True, True, False], kind="stable"
    )
    return f.groupby("owner", sort=True).head(1).drop(columns="_key").set_index("owner")


def _stays(log: EventLog, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every stay in an open stage visible at as_of: opportunity, owner at its end, stage,
    entry time, duration in days, destination (None when still open) and whether it
    advanced (moved to a later open stage or Won)."""
    t = _convert.instant_seconds(as_of)
    core = log.core
    off = np.asarray(core.offsets)
    times = np.asarray(core.times)
    stages = np.asarray(core.stages)
    w_off, w_t, w_v = (np.asarray(x) for x in core.owner_history)
    owner_names = np.asarray([*core.owner_names, "(missing)"], dtype=object)
    n_open = len(log.funnel.stages)
    won = set(range(n_open, n_open + len(log.funnel.won)))
    rows = []
    for o in range(len(off) - 1):
        b, e = int(off[o]), int(off[o + 1])
        e = b + int(np.searchsorted(times[b:e], t, side="right"))
        k = b
        while k < e:
            s = int(stages[k])
            j = k + 1
            while j < e and stages[j] == s:
                j += 1
            if s < n_open:
                end = int(times[j]) if j < e else t
                dest = int(stages[j]) if j < e else -1
                if len(w_off):
                    lo, hi = int(w_off[o]), int(w_off[o + 1])
                    i = lo + int(np.searchsorted(w_t[lo:hi], end, side="right")) - 1
                    owner = owner_names[w_v[i]] if i >= lo else "(missing)"
                else:
                    owner = "(missing)"
                rows.append(
                    (
                        o,
                        owner,
                        s,
                        int(times[k]),
                        (end - int(times[k])) / 86400.0,
                        dest,
                        dest >= 0 and ((dest < n_open and dest > s) or dest in won),
                    )
                )
            k = j
    return pd.DataFrame(
        rows,
        columns=["opportunity", "owner", "stage", "entry", "days", "destination", "advanced"],
    )


class Coaching:
    """Per-rep coaching metrics from a fit grouped by owner. Built by :func:`coaching`."""

    def __init__(
        self,
        model: FunnelModel,
        log: EventLog,
        activities: ActivityLog | None,
        lookback_days: float,
        arrivals_lookback_days: float,
    ):
        self.model = model
        self._log = log
        self._acts = activities
        self.lookback_days = lookback_days
        self.arrivals_lookback_days = arrivals_lookback_days
        self.as_of = model.as_of
        self.reps = [k[0] for k in model.groups if len(k) == 1]
        t = _convert.instant_seconds(self.as_of)
        state = log.core.state_at(t)  # every opportunity at as_of, read once
        self._state = state
        stage = np.asarray(state["stage"])
        n_open = len(log.funnel.stages)
        is_open = (stage >= 0) & (stage < n_open)
        owners = np.asarray([*log.core.owner_names, "(missing)"], dtype=object)
        codes = np.asarray(state["owner"])
        entry = np.asarray(state["entry"])
        tick = model.core.options.tick_seconds
        self._open = pd.DataFrame(
            {
                "opportunity": np.flatnonzero(is_open),
                "owner": owners[np.where(codes < 0, len(owners) - 1, codes)][is_open],
                "stage": stage[is_open],
                "age_days": ((t - entry[is_open]) // tick) * tick / 86400.0,
                "amount": np.nan_to_num(np.asarray(state["amount"])[is_open]),
            }
        )

    def _rows(self, group: tuple[str, ...] | None) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
        tm = self.model.transition_matrix(group)
        return tm.to_numpy(), self.model.stage_summary(group), self.model.time_in_stage(group)

    def _forward(self) -> list[str]:
        stages = list(self.model.funnel.stages)
        return [*stages[1:], "Won"]

    def scorecard(self) -> pd.DataFrame:
        """Per rep and stage, side by side with the team: P(win) from the stage with its
        interval, the advance rate (to the next stage, or Won from the last) with its interval,
        the loss rate, the median days in the stage, the exits behind it, and flags
        (``insufficient_history``; ``below_team`` when the rep's advance interval lies wholly
        below the team's rate)."""
        return _scorecard(self.model)

    def plot_scorecard(self, ax: Any = None) -> Any:
        """Heat map of each rep's advance rate per stage against the team's; returns the axes."""
        from .plotting import plot_scorecard

        return plot_scorecard(self, ax)

    def summary(self, target: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Per rep and the team: win rate (P(win) from the first stage deals are seen in: a stage
        no deal is seen in, such as Maven's undated Prospecting, is skipped, since P(win) from it
        is the prior's guess), expected days to win,
        average won amount, open deals, their weighted pipeline (amount x P(win) given stage and
        age), activities per open deal per week over the last `lookback_days`, and pipeline
        coverage (weighted pipeline / remaining target) when `target` maps reps to their
        remaining targets."""
        rows = []
        first = _entry_stage(self.model)
        for rep in [*self.reps, None]:
            group = None if rep is None else (rep,)
            ss = self.model.stage_summary(group)
            deals = self._open if rep is None else self._open[self._open["owner"] == rep]
            p = (
                self.model.p_win(
                    deals["stage"].to_numpy(), deals["age_days"].to_numpy(), group=group
                )
                if len(deals)
                else np.zeros(0)
            )
            weighted = float(np.sum(deals["amount"].to_numpy() * np.nan_to_num(p)))
            rows.append(
                {
                    "owner": "team" if rep is None else rep,
                    "win_rate": ss.loc[first, "p_win"],
                    "days_to_win": ss.loc[first, "days_to_win"],
                    "avg_won_amount": self._avg_won_amount(rep),
                    "open_deals": len(deals),
                    "weighted_pipeline": weighted,
                    "activities_per_open_deal_week": self._activity_rate(deals),
                    "coverage": _coverage(weighted, target, rep),
                }
            )
        return pd.DataFrame(rows).set_index("owner")

    def _avg_won_amount(self, rep: str | None) -> float:
        state = self._state
        stage = np.asarray(state["stage"])
        n_open = len(self._log.funnel.stages)
        won = (stage >= n_open) & (stage < n_open + len(self._log.funnel.won))
        if rep is not None:
            owners = np.asarray([*self._log.core.owner_names, "(missing)"], dtype=object)
            codes = np.asarray(state["owner"])
            won &= owners[np.where(codes < 0, len(owners) - 1, codes)] == rep
        amounts = np.asarray(state["amount"])[won]
        return float(np.nanmean(amounts)) if np.isfinite(amounts).any() else np.nan

    def _activity_rate(self, deals: pd.DataFrame) -> float:
        if self._acts is None or len(deals) == 0:
            return np.nan
        a = self._acts.core
        offsets = np.asarray(a.offsets)
        times = np.asarray(a.times)
        t = _convert.instant_seconds(self.as_of)
        since = t - int(self.lookback_days * 86400)
        count = 0
        for o in deals["opportunity"].to_numpy():
            ts = times[offsets[o] : offsets[o + 1]]
            count += int(np.count_nonzero((ts > since) & (ts <= t)))
        return count / len(deals) / (self.lookback_days / 7.0)

    def focus(self, horizon_days: float = 90.0) -> pd.DataFrame:
        """For each rep, each stage ranked by the expected revenue gained if the rep's row for
        that stage were the team's (the absorbing chain recomputed with that one row replaced),
        applied to the rep's open pipeline and to the deals the rep creates in `horizon_days` at
        the rep's recent creation rate. Columns: rank, expected_gain, pipeline_gain,
        arrivals_gain, current_rate (the rep's advance rate), team_rate, and ``credible``: the
        rep's advance interval lies wholly below the team's rate (the scorecard's
        ``below_team``). A gain without a credible gap is what matching the team would bring if
        the gap were real, not evidence of one: :meth:`top_focus` recommends only credible gaps."""
        stages = list(self.model.funnel.stages)
        n = len(stages)
        forward = self._forward()
        team_tm = self.model.transition_matrix(None).to_numpy()
        created = self._created_per_rep()
        below = self.scorecard()["below_team"].to_dict()
        rows = []
        for rep in self.reps:
            tm = self.model.transition_matrix((rep,)).to_numpy()
            base = _win_probability(tm)
            deals = self._open[self._open["owner"] == rep]
            rate, mean_amount = created.get(rep, (0.0, 0.0))
            new_deals = rate * horizon_days
            for i, stage in enumerate(stages):
                changed = tm.copy()
                changed[i] = team_tm[i]
                better = _win_probability(changed)
                pipeline_gain = float(
                    np.sum(deals["amount"].to_numpy() * (better - base)[deals["stage"].to_numpy()])
                )
                arrivals_gain = float(new_deals * mean_amount * (better[0] - base[0]))
                fwd = forward[i]
                j = stages.index(fwd) if fwd != "Won" else n
                rows.append(
                    {
                        "owner": rep,
                        "stage": stage,
                        "expected_gain": pipeline_gain + arrivals_gain,
                        "pipeline_gain": pipeline_gain,
                        "arrivals_gain": arrivals_gain,
                        "current_rate": float(tm[i, j]),
                        "team_rate": float(team_tm[i, j]),
                        "credible": bool(below.get((rep, stage), False)),
                    }
                )
        out = pd.DataFrame(rows)
        out = out.sort_values(["owner", "expected_gain"], ascending=[True, False])
        out.insert(2, "rank", out.groupby("owner").cumcount() + 1)
        return out.set_index(["owner", "stage"])

    def top_focus(self, horizon_days: float = 90.0) -> pd.DataFrame:
        """Each rep's coaching focus: among the stages where the rep's gap to the team is
        credible (advance interval wholly below the team's rate), the one with the largest
        expected gain (:meth:`focus`); a rep without a credible gap keeps the largest-gain row
        with ``credible`` False: a gap that may be noise, not a recommendation.

        Returns
        -------
        DataFrame
            One row per rep, indexed by owner, with the focus's columns (stage included).
        """
        return _top_focus(self.focus(horizon_days))

    def _created_per_rep(self) -> dict[str, tuple[float, float]]:
        """Deals created per day in the arrivals lookback, and their mean amount, per rep."""
        t = _convert.instant_seconds(self.as_of)
        since = t - int(self.arrivals_lookback_days * 86400)
        created = np.asarray(self._log.core.created)
        recent = np.flatnonzero((created > since) & (created <= t))
        out: dict[str, tuple[float, float]] = {}
        if len(recent) == 0:
            return out
        first = self._state
        owners = np.asarray([*self._log.core.owner_names, "(missing)"], dtype=object)
        codes = np.asarray(first["owner"])[recent]
        amounts = np.nan_to_num(np.asarray(first["amount"])[recent])
        names = owners[np.where(codes < 0, len(owners) - 1, codes)]
        for rep in set(names):
            sel = names == rep
            out[str(rep)] = (
                float(sel.sum()) / self.arrivals_lookback_days,
                float(amounts[sel].mean()),
            )
        return out

    def inspect(
        self,
        stalled_quantile: float = 0.9,
        no_activity_days: float = 14.0,
        no_buyer_days: float = 21.0,
        pushes: int = 2,
        momentum_days: float = 14.0,
    ) -> pd.DataFrame:
        """Per open deal at as_of: flags with their reasons, and a momentum score.

        Flags (each reason says which threshold, learned from what):

        - ``stalled``: longer in its stage than the stage's `stalled_quantile` time in stage
          (Kaplan-Meier, the team's, over all stays of the stage); where that quantile lies
          beyond the data (too many stays never ended), longer than every stay that left the
          stage;
        - ``no_activity`` / ``no_buyer_action``: no activity (any / by the buyer) in that many days
          (needs activities);
        - ``close_pushed``: its expected close date moved later at least `pushes` times;
        - ``regressed``: its last stage move went backwards;
        - ``amount_cut``: its amount is below the highest it has had.

        ``momentum`` compares the deal's activities in the last `momentum_days` with those of the
        deals that were eventually won, in the same stage at the same age (their activities in the
        same window before reaching that age): 1 is the won deals' pace, below 1 slower (NaN
        without activities or without won deals that stayed that long).
        """
        t = _convert.instant_seconds(self.as_of)
        stages = list(self._log.funnel.stages)
        threshold_days = {
            s: self.model.core.quantile(0, i, stalled_quantile) for i, s in enumerate(stages)
        }
        tick_days = self.model.core.options.tick_seconds / 86400.0
        n_stays = self.model.stage_summary()["n"]
        # Where the quantile lies beyond the data (the Kaplan-Meier curve stays above
        # 1 - stalled_quantile: many stays never ended), a deal in the stage longer than every
        # stay that left it is past the quantile too, whatever the quantile is.
        longest: dict[int, float] = {}
        if not all(np.isfinite(v) for v in threshold_days.values()):
            stays = self._stays()
            ended = stays[stays["destination"] >= 0]
            by_stage = ended.groupby("stage")["days"].max()
            longest = dict(zip(by_stage.index.astype(int).tolist(), by_stage.tolist()))
        core = self._log.core
        ev_off = np.asarray(core.offsets)
        ev_t = np.asarray(core.times)
        ev_s = np.asarray(core.stages)
        c_off, c_t, c_v = (np.asarray(x) for x in core.close_date_history)
        a_off, a_t, a_v = (np.asarray(x) for x in core.amount_history)
        ids = self._log.opportunity_ids()
        pace = self._won_pace()
        rows = []
        open_deals = self._open
        for o, owner, stage_code, age_days, amount in zip(
            open_deals["opportunity"].to_numpy(dtype=np.int64).tolist(),
            open_deals["owner"].to_numpy().tolist(),
            open_deals["stage"].to_numpy(dtype=np.int64).tolist(),
            open_deals["age_days"].to_numpy(dtype=np.float64).tolist(),
            open_deals["amount"].to_numpy(dtype=np.float64).tolist(),
        ):
            stage = stages[stage_code]
            reasons: list[str] = []
            flags = dict.fromkeys(
                [
                    "stalled",
                    "no_activity",
                    "no_buyer_action",
                    "close_pushed",
                    "regressed",
                    "amount_cut",
                ],
                False,
            )
            limit = threshold_days[stage] * tick_days
            if np.isfinite(limit) and age_days > limit:
                flags["stalled"] = True
                reasons.append(
                    f"{age_days:.0f} days in {stage}, beyond its p{stalled_quantile * 100:.0f} of "
                    f"{limit:.0f} days (Kaplan-Meier over {int(n_stays[stage])} stays)"
                )
            elif not np.isfinite(limit) and age_days > longest.get(stage_code, np.inf):
                flags["stalled"] = True
                reasons.append(
                    f"{age_days:.0f} days in {stage}, longer than every stay that left it (the "
                    f"longest took {longest[stage_code]:.0f} days; its "
                    f"p{stalled_quantile * 100:.0f} lies beyond the data: Kaplan-Meier over "
                    f"{int(n_stays[stage])} stays)"
                )
            if len(c_off):
                times = c_t[c_off[o] : c_off[o + 1]]
                values = c_v[c_off[o] : c_off[o + 1]][times <= t]
                n_push = int(np.count_nonzero(np.diff(values) > 0))
                if n_push >= pushes:
                    flags["close_pushed"] = True
                    reasons.append(f"close date pushed {n_push} times (threshold {pushes})")
            visible = ev_s[ev_off[o] : ev_off[o + 1]][ev_t[ev_off[o] : ev_off[o + 1]] <= t]
            runs = visible[np.r_[True, visible[1:] != visible[:-1]]] if len(visible) else visible
            if len(runs) >= 2 and runs[-1] < runs[-2] and runs[-2] < len(stages):
                flags["regressed"] = True
                reasons.append(f"moved back from {stages[int(runs[-2])]} to {stage}")
            if len(a_off):
                amounts = a_v[a_off[o] : a_off[o + 1]][a_t[a_off[o] : a_off[o + 1]] <= t]
                if len(amounts) and amounts[-1] < amounts.max():
                    flags["amount_cut"] = True
                    reasons.append(f"amount cut from {amounts.max():,.0f} to {amounts[-1]:,.0f}")
            momentum = np.nan
            if self._acts is not None:
                a = self._acts.core
                off = np.asarray(a.offsets)
                at = np.asarray(a.times)[off[o] : off[o + 1]]
                buyer = np.asarray(a.buyer)[off[o] : off[o + 1]].astype(bool)
                past = at <= t
                last_any = at[past].max() if past.any() else None
                last_buyer = at[past & buyer].max() if (past & buyer).any() else None
                if last_any is None or (t - last_any) / 86400 > no_activity_days:
                    flags["no_activity"] = True
                    reasons.append(f"no activity in {no_activity_days:.0f} days")
                if last_buyer is None or (t - last_buyer) / 86400 > no_buyer_days:
                    flags["no_buyer_action"] = True
                    reasons.append(f"no buyer action in {no_buyer_days:.0f} days")
                window = min(momentum_days, age_days)
                if window > 0:
                    recent = np.count_nonzero(past & (at > t - window * 86400))
                    reference = pace(stage_code, age_days, window)
                    if np.isfinite(reference) and reference > 0:
                        momentum = recent / reference
            rows.append(
                {
                    "opportunity_id": ids[o],
                    "owner": owner,
                    "stage": stage,
                    "age_days": age_days,
                    "amount": amount,
                    **flags,
                    "momentum": momentum,
                    "reasons": "; ".join(reasons),
                }
            )
        return pd.DataFrame(rows)

    def _won_pace(self) -> Callable[[int, float, float], float]:
        """Mean activities of eventually won deals in a stage, in the `window` days before they
        reached a given age there (among won stays that lasted at least that long)."""
        if self._acts is None:
            return lambda stage, age, window: float("nan")
        stays = self._stays()
        state = np.asarray(self._state["stage"])
        n_open = len(self._log.funnel.stages)
        won = (state >= n_open) & (state < n_open + len(self._log.funnel.won))
        stays = stays[won[stays["opportunity"].to_numpy()] & (stays["destination"] >= 0)]
        a = self._acts.core
        off = np.asarray(a.offsets)
        times = np.asarray(a.times)
        cache: dict[tuple[int, int, int], float] = {}

        def reference(stage: int, age: float, window: float) -> float:
            key = (stage, round(age), round(window))
            if key not in cache:
                st = stays[(stays["stage"] == stage) & (stays["days"] >= age)]
                counts = []
                for o, entry in zip(st["opportunity"].to_numpy(), st["entry"].to_numpy()):
                    ts = times[off[o] : off[o + 1]]
                    hi = entry + age * 86400
                    counts.append(np.count_nonzero((ts > hi - window * 86400) & (ts <= hi)))
                cache[key] = float(np.mean(counts)) if counts else float("nan")
            return cache[key]

        return reference

    def _stays(self) -> pd.DataFrame:
        """Every stay in an open stage visible at as_of (see :func:`_stays`)."""
        return _stays(self._log, self.as_of)

    def action_effectiveness(
        self, landmark_days: Mapping[str, float] | float | None = None
    ) -> pd.DataFrame:
        """Which actions go with advancing, per stage and activity kind: an association, not a
        cause.

        Landmark design: the stays still in the stage `L` days after entering it (default: the
        stage's median time in stage), exposure = the action happened in [entry, entry + L),
        outcome = advancing after L (to a later stage or Won), estimated censoring-aware (Aalen-
        Johansen over the stays at risk at L; open stays are censored at as_of). Stays that left
        before L do not count: that is what removes the survivorship bias of a naive comparison
        (long stays collect more actions). Reported: the
        rates with and without, the Mantel-Haenszel risk ratio stratified by owner (so a strong
        rep's habits are not mistaken for a tactic) with its log-scale 95% interval
        (Greenland-Robins variance), its p-value, Benjamini-Hochberg q-values over all cells, and
        the stays behind each figure.
        """
        landmarks = _landmarks(self.model, landmark_days)
        return _effectiveness(
            self._action_cells(landmarks),
            list(self._log.funnel.stages),
            list(self._activities().kind_names),
            landmarks,
        )

    def _activities(self) -> _core.ActivityLog:
        if self._acts is None:
            raise ValueError(
                "action_effectiveness needs activities: coaching(model, log, activities)"
            )
        return self._acts.core

    def _action_cells(
        self, landmarks: Mapping[str, float], kinds: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The sufficient statistics of action effectiveness: the stays at risk at each stage's
        landmark, counted by (stage, kind, owner, exposed, days) with how many were resolved and
        how many advanced, for every kind of `kinds` (default: the activity log's). Counts over
        disjoint sets of opportunities add up."""
        acts = self._activities()
        stays = self._stays()
        a_off = np.asarray(acts.offsets)
        a_t = np.asarray(acts.times)
        own = list(acts.kind_names)
        kinds = own if kinds is None else list(kinds)
        # This log's kind codes -> positions in `kinds`.
        a_k = np.asarray([kinds.index(k) for k in own], dtype=np.int64)[
            np.asarray(acts.kinds, dtype=np.int64)
        ]
        parts = []
        for si, stage in enumerate(self._log.funnel.stages):
            landmark = landmarks[stage]
            if not np.isfinite(landmark):
                continue
            # At risk at the landmark: still in the stage L days after entering it, resolved or not
            # (open stays are censored at as_of, in the Aalen-Johansen estimates).
            st = stays[(stays["stage"] == si) & (stays["days"] >= landmark)]
            if st.empty:
                continue
            exposure = np.zeros((len(st), len(kinds)), dtype=bool)
            for r, (o, entry) in enumerate(
                zip(st["opportunity"].to_numpy(), st["entry"].to_numpy())
            ):
                ts = a_t[a_off[o] : a_off[o + 1]]
                ks = a_k[a_off[o] : a_off[o + 1]]
                sel = (ts >= entry) & (ts < entry + landmark * 86400)
                exposure[r, np.unique(ks[sel])] = True
            resolved = st["destination"].to_numpy() >= 0
            for ki, kind in enumerate(kinds):
                parts.append(
                    pd.DataFrame(
                        {
                            "stage": stage,
                            "kind": kind,
                            "owner": st["owner"].to_numpy(),
                            "exposed": exposure[:, ki],
                            "days": st["days"].to_numpy(),
                            "n": 1,
                            "resolved": resolved.astype(np.int64),
                            "advanced": st["advanced"].to_numpy(dtype=bool).astype(np.int64),
                        }
                    )
                )
        return _sum_cells(parts)

    def action_sequences(self, stage: str, top: int = 10) -> pd.DataFrame:
        """The most common sequences of action kinds during stays in `stage`, for deals that
        went on to be won versus lost (as of as_of; repeated kinds in a row count once).

        Columns: sequence, won (stays of eventually won deals with it), lost, won_share (of the
        won deals' stays in the stage), lost_share.
        """
        if self._acts is None:
            raise ValueError("action_sequences needs activities: coaching(model, log, activities)")
        stages = list(self._log.funnel.stages)
        if stage not in stages:
            raise KeyError(f"{stage!r} is not an open stage of the funnel ({stages})")
        si = stages.index(stage)
        stays = self._stays()
        stays = stays[stays["stage"] == si]
        state = np.asarray(self._state["stage"])
        n_open = len(stages)
        n_won = len(self._log.funnel.won)
        outcome = np.where(
            state >= n_open + n_won, "lost", np.where(state >= n_open, "won", "open")
        )
        a = self._acts.core
        off = np.asarray(a.offsets)
        times = np.asarray(a.times)
        kinds = np.asarray(a.kind_names, dtype=object)[np.asarray(a.kinds, dtype=np.int64)]
        counts: dict[str, dict[str, int]] = {"won": {}, "lost": {}}
        totals = {"won": 0, "lost": 0}
        for o, entry, days in zip(stays["opportunity"], stays["entry"], stays["days"]):
            result = outcome[o]
            if result == "open":
                continue
            ts = times[off[o] : off[o + 1]]
            ks = kinds[off[o] : off[o + 1]][(ts >= entry) & (ts < entry + days * 86400)]
            seq = [k for i, k in enumerate(ks) if i == 0 or k != ks[i - 1]]
            key = " > ".join(seq) if seq else "(none)"
            counts[result][key] = counts[result].get(key, 0) + 1
            totals[result] += 1
        keys = set(counts["won"]) | set(counts["lost"])
        out = pd.DataFrame(
            {
                "sequence": sorted(keys),
                "won": [counts["won"].get(k, 0) for k in sorted(keys)],
                "lost": [counts["lost"].get(k, 0) for k in sorted(keys)],
            }
        )
        out["won_share"] = out["won"] / max(1, totals["won"])
        out["lost_share"] = out["lost"] / max(1, totals["lost"])
        out["stays"] = out["won"] + out["lost"]
        return (
            out.sort_values(["stays", "sequence"], ascending=[False, True])
            .head(top)
            .reset_index(drop=True)
        )

    def __repr__(self) -> str:
        top = _top_focus(self.focus()).reset_index()
        lines = [f"Coaching(as of {self.as_of:%Y-%m-%d}, {len(self.reps)} reps); focus:"]
        for _, r in top.iterrows():
            if r["credible"]:
                lines.append(f"  {r['owner']}: {r['stage']} (+{r['expected_gain']:,.0f} expected)")
            else:
                lines.append(f"  {r['owner']}: no credible gap")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        top = _top_focus(self.focus())
        return _html.box(
            "Coaching",
            f"as of {self.as_of:%Y-%m-%d}, {len(self.reps)} reps; each rep's top focus",
            _html.frame(top, digits=2),
        )
