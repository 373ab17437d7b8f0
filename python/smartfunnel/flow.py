"""pipeline_flow(log, start, end): the waterfall of a period's pipeline between two dates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import _convert
from .event_log import EventLog
from .forecasting import _day_bounds

#: Categories in waterfall order, with their sign in opening + inflows - outflows = closing.
CATEGORIES = [
    ("opening", 0),
    ("new", +1),
    ("pulled_in", +1),
    ("reopened", +1),
    ("amount_up", +1),
    ("amount_down", -1),
    ("won", -1),
    ("lost", -1),
    ("slipped", -1),
    ("moved_out", -1),
    ("closing", 0),
]


def pipeline_flow(
    log: EventLog,
    start: Any,
    end: Any,
    period: tuple[Any, Any] | None = None,
    *,
    tz: str = "UTC",
    detail: bool = False,
) -> pd.DataFrame:
    """How the pipeline of a period changed between the start of day `start` and the end of day
    `end` (in `tz`): opening, inflows, outflows, closing, for deal counts and amounts.

    The pipeline at a time is every open deal whose expected close date (as known then) falls in
    `period` (default: ``(start, end)``); without close dates in the log, every open deal. Amounts
    and close dates are read as of each time, so a deal cut to 0 when lost leaves with the amount it
    had at the start.

    Each deal is counted once per category, by this order of precedence:

    - in the opening pipeline and not in the closing one: **won** (won by the end), else **lost**,
      else **slipped** (still open, close date now after the period), else **moved_out** (still
      open, no longer in the period for another reason: close date moved before it);
    - in the closing pipeline and not in the opening one: **new** (created in the window), else
      **pulled_in** (open at the start with a close date outside the period), else **reopened**
      (closed at the start);
    - in both: its amount change is **amount_up** or **amount_down**; stage moves are reported as
      ``advanced`` / ``regressed`` counts (they move no money between the pipelines);
    - created in the window and closed before its end: counted in **new** and in **won**/**lost**
      with the same amount, so it nets to zero.

    So opening + new + pulled_in + reopened - won - lost - slipped - moved_out = closing in deals,
    and the same plus amount_up - amount_down in amounts (the amount rows' ``deals`` column counts
    the deals whose amount changed; it is not part of the deal identity).

    Returns
    -------
    DataFrame
        Indexed by category: ``deals``, ``amount`` and ``sign``; with ``detail=True``, one row per
        deal and category instead (opportunity_id, category, amount, stage_start, stage_end).
    """
    t0, t1 = _day_bounds(start, end, tz)
    p0, p1 = _day_bounds(*(period or (start, end)), tz)
    f = log.funnel
    n_open = len(f.stages)
    won_codes = set(range(n_open, n_open + len(f.won)))
    a = log.core.state_at(t0 - 1)  # just before the window opens
    b = log.core.state_at(t1 - 1)  # at the end of its last day
    has_close = not log.core.close_date_history[1].size == 0

    def in_pipeline(state: dict[str, Any]) -> np.ndarray:
        stage = np.asarray(state["stage"])
        is_open = (stage >= 0) & (stage < n_open)
        if not has_close:
            return is_open
        close = np.asarray(state["close_date"])
        return is_open & (close >= p0) & (close < p1)

    ina, inb = in_pipeline(a), in_pipeline(b)
    sa, sb = np.asarray(a["stage"]), np.asarray(b["stage"])
    amt_a = np.nan_to_num(np.asarray(a["amount"]))
    amt_b = np.nan_to_num(np.asarray(b["amount"]))
    close_b = np.asarray(b["close_date"])
    created = np.asarray(log.core.created)
    new_in_window = (created >= t0) & (created < t1)
    ids = log.opportunity_ids()
    rows: list[tuple[Any, str, float, int, int]] = []

    def add(idx: np.ndarray, category: str, amount: np.ndarray) -> None:
        for i, x in zip(idx.tolist(), amount.tolist()):
            rows.append((ids[i], category, float(x), int(sa[i]), int(sb[i])))

    is_won_b = np.isin(sb, list(won_codes))
    is_lost_b = sb >= n_open + len(f.won)
    is_open_b = (sb >= 0) & (sb < n_open)
    # Outflows of the opening pipeline (amount as it was at the start).
    out = ina & ~inb
    add(np.flatnonzero(out & is_won_b), "won", amt_a[out & is_won_b])
    add(np.flatnonzero(out & is_lost_b), "lost", amt_a[out & is_lost_b])
    slipped = out & is_open_b & (close_b >= p1) if has_close else np.zeros_like(out)
    add(np.flatnonzero(slipped), "slipped", amt_a[slipped])
    moved = out & is_open_b & ~slipped
    add(np.flatnonzero(moved), "moved_out", amt_a[moved])
    # Inflows of the closing pipeline (amount as it is at the end).
    inflow = inb & ~ina
    new = inflow & (new_in_window | (sa < 0))  # created in the window, or no stage event before it
    add(np.flatnonzero(new), "new", amt_b[new])
    was_open_a = (sa >= 0) & (sa < n_open)
    pulled = inflow & ~new & was_open_a
    add(np.flatnonzero(pulled), "pulled_in", amt_b[pulled])
    reopened = inflow & ~new & ~was_open_a
    add(np.flatnonzero(reopened), "reopened", amt_b[reopened])
    # Deals created and closed inside the window: through new and out through won/lost.
    through = ~ina & ~inb & new_in_window & (is_won_b | is_lost_b)
    if has_close:
        # ...when they were in the period's pipeline: their last known close date in the period.
        through &= (close_b >= p0) & (close_b < p1)
    add(np.flatnonzero(through), "new", amt_b[through])
    add(np.flatnonzero(through & is_won_b), "won", amt_b[through & is_won_b])
    add(np.flatnonzero(through & is_lost_b), "lost", amt_b[through & is_lost_b])
    # Continuing deals: amount changes, stage moves.
    both = ina & inb
    delta = amt_b - amt_a
    up, down = both & (delta > 0), both & (delta < 0)
    add(np.flatnonzero(up), "amount_up", delta[up])
    add(np.flatnonzero(down), "amount_down", -delta[down])
    add(np.flatnonzero(both & (sb > sa)), "advanced", np.zeros(int((both & (sb > sa)).sum())))
    add(np.flatnonzero(both & (sb < sa)), "regressed", np.zeros(int((both & (sb < sa)).sum())))
    add(np.flatnonzero(ina), "opening", amt_a[ina])
    add(np.flatnonzero(inb), "closing", amt_b[inb])

    per_deal = pd.DataFrame(
        rows, columns=["opportunity_id", "category", "amount", "stage_start", "stage_end"]
    )
    names = np.asarray([*f.names, "(none)"], dtype=object)
    for col in ("stage_start", "stage_end"):
        per_deal[col] = names[np.where(per_deal[col] < 0, len(names) - 1, per_deal[col])]
    if detail:
        return per_deal
    counts = per_deal.groupby("category")["amount"].agg(["size", "sum"])
    order = [c for c, _ in CATEGORIES] + ["advanced", "regressed"]
    signs = dict(CATEGORIES) | {"advanced": 0, "regressed": 0}
    out_frame = pd.DataFrame(
        {
            "deals": [int(counts["size"].get(c, 0)) for c in order],
            "amount": [float(counts["sum"].get(c, 0.0)) for c in order],
            "sign": [signs[c] for c in order],
        },
        index=pd.Index(order, name="category"),
    )
    out_frame.attrs["window"] = (_convert.to_timestamp(t0), _convert.to_timestamp(t1))
    return out_frame
