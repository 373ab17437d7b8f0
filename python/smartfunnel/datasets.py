"""Demo and test data: histories simulated from a funnel with known truth.

Everything here is generated in process from a seed, so examples run anywhere without files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import _convert, _core, _html
from .event_log import EventLog

SAMPLE_STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation"]

#: Transition probabilities of the bundled sample, rows the open stages and columns the open stages,
#: Won and Lost. Losses are quick and advances slow, so closed-only rates are biased under censoring.
SAMPLE_TRANSITION = np.array(
    [
        [0.00, 0.55, 0.05, 0.00, 0.00, 0.40],
        [0.05, 0.00, 0.55, 0.05, 0.00, 0.35],
        [0.00, 0.05, 0.00, 0.60, 0.05, 0.30],
        [0.00, 0.00, 0.05, 0.00, 0.65, 0.30],
    ]
)
#: Mean days in each stage given the destination (same shape).
SAMPLE_SOJOURN_DAYS = np.array(
    [
        [1.0, 21.0, 30.0, 1.0, 1.0, 8.0],
        [20.0, 1.0, 28.0, 35.0, 1.0, 10.0],
        [1.0, 15.0, 1.0, 30.0, 20.0, 12.0],
        [1.0, 1.0, 15.0, 1.0, 25.0, 14.0],
    ]
)


class Simulation(NamedTuple):
    """A simulated history: the funnel, its events frame, the log and the true parameters."""

    funnel: _core.Funnel
    events: pd.DataFrame
    log: EventLog
    transition: np.ndarray
    sojourn_mean_days: np.ndarray
    as_of: pd.Timestamp

    def __repr__(self) -> str:
        return (
            f"Simulation({len(self.events):,} events, {self.log.n_opportunities:,} opportunities, "
            f"stages {list(self.funnel.stages)}, as of {self.as_of:%Y-%m-%d})"
        )

    def _repr_html_(self) -> str:
        truth = pd.DataFrame({"true p_win": self.true_win_probability()})
        return _html.box(
            "Simulation",
            f"{len(self.events):,} events, {self.log.n_opportunities:,} opportunities, "
            f"as of {self.as_of:%Y-%m-%d}",
            _html.frame(truth),
        )

    def true_win_probability(self) -> pd.Series:
        """P(eventually won) from each open stage under the true transition matrix."""
        n = len(self.funnel.stages)
        q = self.transition[:, :n]
        r = self.transition[:, n]
        b = np.linalg.solve(np.eye(n) - q, r)
        return pd.Series(b, index=pd.Index(self.funnel.stages, name="stage"), name="p_win")


def simulate(
    funnel: _core.Funnel | None = None,
    transition: Any = None,
    sojourn_mean_days: Any = None,
    *,
    n_opportunities: int = 2000,
    owners: Sequence[str] = ("Ana", "Ben", "Chloé", "Dev", "Eli"),
    owner_transition: Sequence[Any] | None = None,
    start: Any = "2024-01-01",
    as_of: Any = "2025-06-30",
    sojourn_shape: float = 2.0,
    entry_stage: int = 0,
    amount_median: float = 20_000.0,
    amount_sigma: float = 0.8,
    amount_change_probability: float = 0.1,
    reassign_probability: float = 0.02,
    close_push_probability: float = 0.15,
    seed: int = 0,
) -> Simulation:
    """Simulate stage histories through a funnel with known truth.

    Each opportunity is created uniformly in ``[start, as_of)`` in ``entry_stage``, then leaves each
    stage for destination k with probability ``transition[s, k]`` after a gamma-distributed sojourn
    with mean ``sojourn_mean_days[s, k]`` (destination-dependent) and shape ``sojourn_shape``.
    Deals still open at ``as_of`` are censored there. Amounts are log-normal and change now and
    then; owners are reassigned and close dates pushed with the given chances.

    Returns
    -------
    Simulation
        ``events`` has columns opportunity_id, stage, time, amount, owner, close_date, created.
    """
    funnel = funnel or _core.Funnel(SAMPLE_STAGES, won="Won", lost="Lost")
    transition = SAMPLE_TRANSITION if transition is None else np.asarray(transition, dtype=float)
    sojourn = (
        SAMPLE_SOJOURN_DAYS
        if sojourn_mean_days is None
        else np.asarray(sojourn_mean_days, dtype=float)
    )
    t0 = _convert.timestamp_seconds(start, "start")
    t1 = _convert.timestamp_seconds(as_of, "as_of")
    raw = _core.simulate(
        funnel,
        list(transition.ravel()),
        list(sojourn.ravel()),
        sojourn_shape,
        [list(np.asarray(t, dtype=float).ravel()) for t in (owner_transition or [])],
        list(owners),
        n_opportunities,
        t0,
        t1,
        entry_stage,
        amount_median,
        amount_sigma,
        amount_change_probability,
        reassign_probability,
        close_push_probability,
        seed,
    )
    to_time = lambda a: pd.to_datetime(np.asarray(a), unit="s", utc=True)  # noqa: E731
    events = pd.DataFrame(
        {
            "opportunity_id": np.asarray(raw["opportunity"]),
            "stage": pd.Categorical.from_codes(np.asarray(raw["stage"]), raw["stage_names"]),
            "time": to_time(raw["time"]),
            "amount": np.asarray(raw["amount"]),
            "owner": pd.Categorical.from_codes(np.asarray(raw["owner"]), raw["owner_names"]),
            "close_date": to_time(raw["close_date"]),
            "created": to_time(raw["created"]),
        }
    )
    log = EventLog.from_frame(
        funnel, events, amount="amount", owner="owner", close_date="close_date", created="created"
    )
    return Simulation(funnel, events, log, transition, sojourn, _convert.to_timestamp(t1))


def sample() -> Simulation:
    """The bundled sample: 2,000 opportunities through a four-stage funnel, five reps, 18 months."""
    return simulate(seed=20240101)
