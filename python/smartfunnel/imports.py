"""Imports of CRM exports into event logs.

Snapshot-only exports (one row per opportunity with its current stage and a few dates, like the
public "CRM Sales Opportunities" data) become partial histories. The assumptions are stated here
and every row that cannot be placed is reported, never silently dropped:

- a deal entered each stage whose entry date the export gives, on that date;
- a Won or Lost deal closed on its close date;
- nothing is known of stages the export gives no date for (a deal first seen in a later stage
  simply starts there);
- a row with no usable date at all cannot be placed in time and is reported as undated;
- a missing amount counts as 0 and is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from . import _core
from .event_log import EventLog


def from_snapshot(
    funnel: _core.Funnel,
    frame: pd.DataFrame,
    *,
    opportunity: str,
    stage: str,
    entered: Mapping[str, str],
    closed: str,
    amount: str | None = None,
    owner: str | None = None,
    attributes: Sequence[str] = (),
) -> tuple[EventLog, pd.DataFrame]:
    """Turn a snapshot export into an event log of partial histories.

    Parameters
    ----------
    funnel : Funnel
    frame : DataFrame
        One row per opportunity.
    opportunity, stage : str
        Id and current stage columns.
    entered : mapping
        ``{stage name: column}`` of stage entry dates the export has (e.g.
        ``{"Engaging": "engage_date"}``).
    closed : str
        Close date column (used for Won and Lost rows).
    amount, owner : str, optional
    attributes : sequence of str

    Returns
    -------
    (EventLog, DataFrame)
        The log, and the rows that could not be placed or were changed, with the reason.
    """
    for col in [
        opportunity,
        stage,
        closed,
        *entered.values(),
        *(c for c in (amount, owner) if c),
        *attributes,
    ]:
        if col not in frame.columns:
            raise _core.DataError(
                f"column {col!r} is not in the snapshot (columns: {list(map(str, frame.columns))})"
            )
    terminal = set(funnel.won) | set(funnel.lost)
    order = {name: i for i, name in enumerate(funnel.stages)}
    rows, notes = [], []
    cur = frame[stage].astype(str).to_numpy()
    close = pd.to_datetime(frame[closed], utc=True, errors="coerce")
    dates = {s: pd.to_datetime(frame[c], utc=True, errors="coerce") for s, c in entered.items()}
    amounts = frame[amount].astype(float) if amount else pd.Series(0.0, index=frame.index)
    for i in range(len(frame)):
        events = []
        for s, series in dates.items():
            when = series.iloc[i]
            reached = cur[i] in terminal or (cur[i] in order and order[cur[i]] >= order.get(s, 0))
            if pd.notna(when) and reached:
                events.append((s, when))
        if cur[i] in terminal:
            if pd.notna(close.iloc[i]):
                events.append((cur[i], close.iloc[i]))
            else:
                notes.append(
                    (
                        i,
                        "no close date for a closed deal: its outcome is kept only if a stage is dated",
                    )
                )
        if not events:
            notes.append(
                (i, f"undated: stage {cur[i]!r} without any date, cannot be placed in time")
            )
            continue
        value = amounts.iloc[i]
        if not np.isfinite(value):
            notes.append((i, "amount missing: counted as 0"))
            value = 0.0
        for s, when in events:
            rows.append(
                {
                    "opportunity_id": frame[opportunity].iloc[i],
                    "stage": s,
                    "time": when,
                    "amount": value,
                    **({"owner": frame[owner].iloc[i]} if owner else {}),
                    **{a: frame[a].iloc[i] for a in attributes},
                }
            )
    events_df = pd.DataFrame(rows)
    log = EventLog.from_frame(
        funnel,
        events_df,
        amount="amount",
        owner="owner" if owner else None,
        attributes=list(attributes),
    )
    report = frame.iloc[[i for i, _ in notes]].copy()
    report.insert(0, "row", [i for i, _ in notes])
    report["reason"] = [why for _, why in notes]
    return log, report
