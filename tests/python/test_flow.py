"""Pipeline flow: hand-made deals that do several things in one window; the identity holds."""

from __future__ import annotations

import pandas as pd
import pytest

import smartfunnel as sf

F = sf.Funnel(["A", "B"], won="Won", lost="Lost")


def frame():
    d = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    rows = [
        # d1: advances A -> B and grows 100 -> 150 inside the window
        ("d1", "A", "2025-01-02", 100, "2025-02-15"),
        ("d1", "B", "2025-01-14", 150, "2025-02-15"),
        # d2: won inside the window
        ("d2", "A", "2025-01-03", 200, "2025-03-01"),
        ("d2", "Won", "2025-01-15", 200, "2025-03-01"),
        # d3: lost inside the window, amount cut to 0 when lost (leaves with 300)
        ("d3", "A", "2025-01-04", 300, "2025-03-01"),
        ("d3", "Lost", "2025-01-12", 0, "2025-03-01"),
        # d4: close date pushed past the period end
        ("d4", "A", "2025-01-05", 400, "2025-03-20"),
        ("d4", "A", "2025-01-14", 400, "2025-04-15"),
        # d5: close date pulled into the period
        ("d5", "A", "2025-01-06", 500, "2025-04-10"),
        ("d5", "A", "2025-01-16", 500, "2025-03-05"),
        # d6: created in the window, open at its end
        ("d6", "A", "2025-01-12", 600, "2025-02-20"),
        # d7: created and won inside the window
        ("d7", "A", "2025-01-13", 700, "2025-02-01"),
        ("d7", "Won", "2025-01-18", 700, "2025-02-01"),
        # d8: regresses B -> A and shrinks 800 -> 750
        ("d8", "A", "2025-01-02", 800, "2025-02-28"),
        ("d8", "B", "2025-01-05", 800, "2025-02-28"),
        ("d8", "A", "2025-01-15", 750, "2025-02-28"),
        # d9: close date moved before the period
        ("d9", "A", "2025-01-07", 900, "2025-03-10"),
        ("d9", "A", "2025-01-11", 900, "2024-12-20"),
    ]
    df = pd.DataFrame(rows, columns=["opportunity_id", "stage", "time", "amount", "close_date"])
    df["time"] = df["time"].map(d)
    df["close_date"] = df["close_date"].map(d)
    return df


def test_hand_made_waterfall_adds_up():
    log = sf.EventLog.from_frame(F, frame(), amount="amount", close_date="close_date")
    flow = sf.pipeline_flow(log, "2025-01-10", "2025-01-20", period=("2025-01-01", "2025-03-31"))
    expected = {  # (deals, amount), worked out deal by deal in frame()
        "opening": (6, 2700),  # d1 100, d2 200, d3 300, d4 400, d8 800, d9 900 (d5 closes outside)
        "new": (2, 1300),  # d6 600, d7 700
        "pulled_in": (1, 500),  # d5
        "reopened": (0, 0),
        "amount_up": (1, 50),  # d1
        "amount_down": (1, 50),  # d8
        "won": (2, 900),  # d2 200, d7 700
        "lost": (1, 300),  # d3, with its amount at the start
        "slipped": (1, 400),  # d4
        "moved_out": (1, 900),  # d9
        "closing": (4, 2000),  # d1 150, d5 500, d6 600, d8 750
        "advanced": (1, 0),  # d1
        "regressed": (1, 0),  # d8
    }
    for category, (deals, amount) in expected.items():
        assert flow.loc[category, "deals"] == deals, category
        assert flow.loc[category, "amount"] == pytest.approx(amount), category
    # opening + inflows - outflows = closing, for deals and for amounts.
    deal_rows = ["new", "pulled_in", "reopened", "won", "lost", "slipped", "moved_out"]
    deals = (
        flow.loc["opening", "deals"]
        + (flow.loc[deal_rows, "deals"] * flow.loc[deal_rows, "sign"]).sum()
    )
    assert deals == flow.loc["closing", "deals"]
    moves = flow.drop(["opening", "closing", "advanced", "regressed"])
    amount = flow.loc["opening", "amount"] + (moves["amount"] * moves["sign"]).sum()
    assert amount == pytest.approx(flow.loc["closing", "amount"])
    detail = sf.pipeline_flow(
        log, "2025-01-10", "2025-01-20", period=("2025-01-01", "2025-03-31"), detail=True
    )
    assert set(detail.loc[detail["category"] == "won", "opportunity_id"]) == {"d2", "d7"}


def test_identity_holds_on_simulated_data():
    sim = sf.datasets.simulate(n_opportunities=1500, seed=4)
    for start, end in [("2024-06-01", "2024-06-30"), ("2024-09-15", "2024-12-31")]:
        flow = sf.pipeline_flow(sim.log, start, end, period=("2024-06-01", "2025-03-31"))
        rows = ["new", "pulled_in", "reopened", "won", "lost", "slipped", "moved_out"]
        deals = (
            flow.loc["opening", "deals"] + (flow.loc[rows, "deals"] * flow.loc[rows, "sign"]).sum()
        )
        assert deals == flow.loc["closing", "deals"]
        moves = flow.drop(["opening", "closing", "advanced", "regressed"])
        amount = flow.loc["opening", "amount"] + (moves["amount"] * moves["sign"]).sum()
        assert amount == pytest.approx(flow.loc["closing", "amount"])
