"""Coaching: activity log, rep scorecard against the team, coaching focus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf
from smartfunnel.datasets import SAMPLE_TRANSITION

F = sf.Funnel(["A", "B"], won="Won", lost="Lost")
DAY0 = pd.Timestamp("2025-01-01", tz="UTC")


def d(x):
    return DAY0 + pd.Timedelta(days=x)


@pytest.fixture(scope="module")
def small():
    events = pd.DataFrame(
        {
            "opportunity_id": ["x", "x", "x", "y"],
            "stage": ["A", "B", "Won", "A"],
            "time": [d(0), d(5), d(9), d(2)],
            "amount": [100.0, 100.0, 100.0, 50.0],
            "owner": ["ann", "ann", "ann", "bob"],
        }
    )
    return sf.EventLog.from_frame(F, events, amount="amount", owner="owner")


def test_activities_are_attributed_to_the_stage_at_that_moment(small):
    acts = pd.DataFrame(
        {
            "opportunity_id": ["x", "x", "y", "x", "y"],
            "time": [d(1), d(6), d(1), d(-1), d(3)],
            "type": ["call", "demo", "email", "email", "call"],
            "buyer": [False, True, False, False, True],
        }
    )
    log = sf.ActivityLog.from_frame(small, acts, kind="type", buyer="buyer")
    out = log.to_frame()
    # Sorted by opportunity (log order: x, y) and time; x at day -1 is before its first event.
    assert list(out["opportunity_id"]) == ["x", "x", "x", "y", "y"]
    assert list(out["stage"]) == ["(before first stage)", "A", "B", "(before first stage)", "A"]
    assert list(out["kind"]) == ["email", "call", "demo", "email", "call"]
    assert list(out["buyer"]) == [False, False, True, False, True]


@pytest.mark.parametrize("string_ids", [True, False])
def test_activity_log_pickles(string_ids):
    """An activity log travels (to Dask workers, to files) pickled: the copy has the same rows,
    stages, owners and buyer flags, the same rejected rows, and gives the same coaching."""
    import pickle

    ids = ["x", "y", "z"] if string_ids else [7, 3, 11]
    events = pd.DataFrame(
        {
            "opportunity_id": [ids[0], ids[0], ids[0], ids[1], ids[2], ids[2]],
            "stage": ["A", "B", "Won", "A", "A", "Lost"],
            "time": [d(0), d(5), d(9), d(2), d(1), d(4)],
            "owner": ["ann", "ann", "ann", "bob", "bob", "bob"],
        }
    )
    log = sf.EventLog.from_frame(F, events, owner="owner")
    acts = pd.DataFrame(
        {
            "opportunity_id": [ids[1], ids[0], ids[0], ids[2], ids[0], ids[1]],
            "time": [d(3), d(6), d(1), d(2), d(-1), d(3)],
            "kind": ["call", "demo", "email", "call", "email", "demo"],
            "who": ["bob", "ann", None, "bob", "ann", "bob"],
            "buyer": [True, False, False, True, False, False],
        }
    )
    if string_ids:  # one unknown opportunity, rejected in lenient mode
        acts.loc[len(acts)] = ["nope", d(2), "call", "ann", False]
    a = sf.ActivityLog.from_frame(log, acts, owner="who", buyer="buyer", validation="lenient")
    b = pickle.loads(pickle.dumps(a))
    assert type(b) is sf.ActivityLog and len(b) == len(acts) - string_ids == 6
    pd.testing.assert_frame_equal(b.to_frame(), a.to_frame())
    for name in ("offsets", "times", "kinds", "owners", "buyer", "stages"):
        np.testing.assert_array_equal(getattr(b.core, name), getattr(a.core, name))
    assert b.core.kind_names == a.core.kind_names and b.core.owner_names == a.core.owner_names
    pd.testing.assert_frame_equal(b.rejected, a.rejected)
    assert len(b.rejected) == string_ids
    # The rows as written: opportunity ids[0] has email (day -1, before its first stage), email
    # (day 1, A) and demo (day 6, B).
    first = b.to_frame()[lambda f: f["opportunity_id"] == ids[0]]
    assert list(first["kind"]) == ["email", "email", "demo"]
    assert list(first["stage"]) == ["(before first stage)", "A", "B"]
    assert first["owner"].isna().tolist() == [False, True, False]
    assert list(first["owner"].dropna()) == ["ann", "ann"]
    model = sf.fit(log, groups=["owner"])
    pd.testing.assert_frame_equal(
        sf.coaching(model, log, b).action_sequences("A"),
        sf.coaching(model, log, a).action_sequences("A"),
    )


def test_unknown_opportunities_are_reported_not_dropped(small):
    acts = pd.DataFrame(
        {"opportunity_id": ["x", "zz"], "time": [d(1), d(2)], "kind": ["call", "call"]}
    )
    with pytest.raises(
        sf.DataError, match="row 1: opportunity 'zz' is not in the event log"
    ) as info:
        sf.ActivityLog.from_frame(small, acts)
    assert info.value.row == 1
    lenient = sf.ActivityLog.from_frame(small, acts, validation="lenient")
    assert len(lenient) == 1
    assert list(lenient.rejected["row"]) == [1]
    with pytest.raises(sf.DataError, match="row 1: b must be True/False"):
        sf.ActivityLog.from_frame(small, acts.assign(b=[True, None]), buyer="b")


def test_activity_rate_and_coverage_by_hand(small):
    # As of day 10: y is open (owner bob, amount 50, in A since day 2); x was won.
    acts = pd.DataFrame(
        {
            "opportunity_id": ["y", "y", "y", "x"],
            "time": [d(3), d(4), d(-30), d(6)],
            "kind": ["call"] * 4,
        }
    )
    model = sf.fit(small, as_of=d(10), draws=0)
    coach = sf.coaching(model, small, sf.ActivityLog.from_frame(small, acts), lookback_days=14)
    s = coach.summary(target={"bob": 100.0})
    # bob: 2 activities in the last 14 days on his 1 open deal: 2 / 1 / 2 weeks = 1 per week.
    assert s.loc["bob", "activities_per_open_deal_week"] == pytest.approx(1.0)
    assert s.loc["bob", "open_deals"] == 1
    p = coach.model.p_win(["A"], [8], group="bob")[0]
    assert s.loc["bob", "weighted_pipeline"] == pytest.approx(50 * p)
    assert s.loc["bob", "coverage"] == pytest.approx(50 * p / 100.0)
    assert s.loc["ann", "avg_won_amount"] == pytest.approx(100.0)


@pytest.fixture(scope="module")
def planted():
    weak = SAMPLE_TRANSITION.copy()
    weak[2] = [0.0, 0.05, 0.0, 0.25, 0.05, 0.65]  # Dev advances from Proposal 25%, the team 60%
    owners = ["Ana", "Ben", "Chloé", "Dev", "Eli"]
    T = SAMPLE_TRANSITION
    sim = sf.datasets.simulate(
        n_opportunities=4000,
        owners=owners,
        owner_transition=[T, T, T, weak, T],
        reassign_probability=0.0,
        seed=8,
    )
    return sim, sf.coaching(sf.fit(sim.log, draws=200), sim.log)


def test_scorecard_shows_the_weak_stage_with_an_interval_excluding_the_team(planted):
    _, coach = planted
    sc = coach.scorecard()
    dev = sc.loc[("Dev", "Proposal")]
    assert dev["advance_high"] < dev["team_advance"]
    assert dev["below_team"]
    assert dev["p_win_high"] < dev["team_p_win"]
    # No other (rep, stage) cell is flagged on this process.
    assert list(sc.index[sc["below_team"]]) == [("Dev", "Proposal")]


def test_focus_ranks_the_weak_stage_first_with_the_chain_gain(planted):
    _, coach = planted
    focus = coach.focus(horizon_days=90)
    top = focus[focus["rank"] == 1].reset_index().set_index("owner")
    assert top.loc["Dev", "stage"] == "Proposal"
    assert (
        top.loc["Dev", "expected_gain"]
        > 10 * focus.drop(index="Dev", level="owner")["expected_gain"].max()
    )
    # The gain on the pipeline, by an independent computation: power iteration of the chain.
    stages = list(coach.model.funnel.stages)
    tm = coach.model.transition_matrix(("Dev",)).to_numpy()
    team = coach.model.transition_matrix(None).to_numpy()

    def win(p):
        n = len(stages)
        dist = np.eye(n, n + 2)
        won = np.zeros(n)
        for _ in range(5000):
            won += dist[:, n]
            dist = dist[:, :n] @ p
        return won + dist[:, n]

    changed = tm.copy()
    changed[2] = team[2]
    deals = coach._open[coach._open["owner"] == "Dev"]
    gain = float(np.sum(deals["amount"] * (win(changed) - win(tm))[deals["stage"]]))
    assert focus.loc[("Dev", "Proposal"), "pipeline_gain"] == pytest.approx(gain, rel=1e-9)


def test_top_focus_recommends_the_credible_gap_only(planted):
    _, coach = planted
    top = coach.top_focus()
    sc = coach.scorecard()
    # credible = the scorecard's below_team for the focus row; only Dev's Proposal is credible.
    for rep, row in top.iterrows():
        assert row["credible"] == bool(sc.loc[(rep, row["stage"]), "below_team"])
    assert top.loc["Dev", "stage"] == "Proposal" and top.loc["Dev", "credible"]
    assert not top.drop(index="Dev")["credible"].any()
    # The others keep their largest-gain row (available, not recommended).
    focus = coach.focus()
    for rep in top.index.drop("Dev"):
        assert top.loc[rep, "expected_gain"] == focus.xs(rep, level="owner")["expected_gain"].max()
    assert "Dev: Proposal" in repr(coach) and repr(coach).count("no credible gap") == 4


def test_inspection_flags_one_hand_made_deal_each():
    """Each deal trips exactly one flag; thresholds equal independently computed quantiles."""
    f = sf.Funnel(["A", "B"], won="Won", lost="Lost")
    rows = []
    # History to learn from: ten deals, each 1..10 days in A then Won.
    for i in range(10):
        rows += [(f"h{i}", "A", d(0), 10.0, d(60)), (f"h{i}", "Won", d(i + 1), 10.0, d(60))]
    rows += [
        ("stalled", "A", d(80), 10.0, d(200)),  # 20 days in A at day 100 > 9
        ("pushed", "A", d(98), 10.0, d(110)),
        ("pushed", "A", d(98.5), 10.0, d(130)),
        ("pushed", "A", d(99), 10.0, d(150)),  # close date pushed twice
        ("regressed", "A", d(95), 10.0, d(200)),
        ("regressed", "B", d(96), 10.0, d(200)),
        ("regressed", "A", d(97), 10.0, d(200)),  # B -> A
        ("cut", "A", d(96), 50.0, d(200)),
        ("cut", "A", d(97), 20.0, d(200)),  # amount 50 -> 20
        ("quiet", "A", d(99), 10.0, d(200)),  # no activity at all
    ]
    events = pd.DataFrame(rows, columns=["opportunity_id", "stage", "time", "amount", "close_date"])
    events["owner"] = "ann"
    log = sf.EventLog.from_frame(f, events, amount="amount", close_date="close_date", owner="owner")
    busy = ["stalled", "pushed", "regressed", "cut"]
    acts = pd.DataFrame(
        {
            "opportunity_id": busy,
            "time": [d(99)] * len(busy),
            "kind": ["call"] * len(busy),
            "buyer": [True] * len(busy),
        }
    )
    coach = sf.coaching(
        sf.fit(log, as_of=d(100), draws=0), log, sf.ActivityLog.from_frame(log, acts, buyer="buyer")
    )
    out = coach.inspect().set_index("opportunity_id")
    flags = ["stalled", "no_activity", "no_buyer_action", "close_pushed", "regressed", "amount_cut"]
    expected = {
        "stalled": {"stalled"},
        "pushed": {"close_pushed"},
        "regressed": {"regressed"},
        "cut": {"amount_cut"},
        "quiet": {"no_activity", "no_buyer_action"},
    }
    for deal, want in expected.items():
        got = {flag for flag in flags if out.loc[deal, flag]}
        assert got == want, (deal, got)
    # The stalled threshold is the 90% quantile of A's Kaplan-Meier time in stage over its 16
    # stays: exits at 1 (two), 2, ..., 10 and censorings at 1, 2, 3, 4, 20 (the open deals):
    # S = 14/16, x12/13, x10/11, x8/9, x6/7, x5/6, x4/5, x3/4, x2/3 (0.1865 at 9), x1/2 (0.093 at 10),
    # so the first t with S <= 0.1 is 10 days.
    assert "beyond its p90 of 10 days (Kaplan-Meier over 16 stays)" in out.loc["stalled", "reasons"]
    assert "pushed 2 times" in out.loc["pushed", "reasons"]


def planted_actions(seed: int):
    """One stage A, 4,000 stays. A demo before day 10 multiplies the chance to advance by 1.6
    (a real effect); emails have no effect, but the strong rep sends more of them (confounding)."""
    rng = np.random.default_rng(seed)
    f = sf.Funnel(["A", "B"], won="Won", lost="Lost")
    events, acts = [], []
    for i in range(4000):
        strong = i % 2 == 0
        owner = "strong" if strong else "weak"
        start = d(rng.uniform(0, 300))
        demo = rng.random() < (0.3 if strong else 0.6)  # reps differ in how often they demo
        email = rng.random() < (0.8 if strong else 0.2)
        base = 0.5 if strong else 0.25
        advance = rng.random() < min(1.0, base * (1.6 if demo else 1.0))
        days = 10 + rng.exponential(10)
        events += [
            (i, "A", start, owner),
            (i, "B" if advance else "Lost", start + pd.Timedelta(days=days), owner),
        ]
        if demo:
            acts.append((i, start + pd.Timedelta(days=rng.uniform(0, 9.9)), "demo"))
        if email:
            acts.append((i, start + pd.Timedelta(days=rng.uniform(0, 9.9)), "email"))
        acts.append((i, start + pd.Timedelta(days=rng.uniform(0, 9.9)), "call"))
    ev = pd.DataFrame(events, columns=["opportunity_id", "stage", "time", "owner"])
    log = sf.EventLog.from_frame(f, ev, owner="owner")
    activities = sf.ActivityLog.from_frame(
        log, pd.DataFrame(acts, columns=["opportunity_id", "time", "kind"])
    )
    return log, activities


def test_action_effectiveness_finds_the_planted_effect_not_the_confounded_one():
    log, acts = planted_actions(1)
    coach = sf.coaching(sf.fit(log, draws=0), log, acts)
    eff = coach.action_effectiveness(landmark_days=10)
    demo, email = eff.loc[("A", "demo")], eff.loc[("A", "email")]
    assert demo["low"] > 1.0 and demo["q_value"] < 1e-3
    assert demo["lift"] == pytest.approx(1.6, abs=0.2)
    assert email["low"] <= 1.0 <= email["high"]
    # Without stratifying by owner, emails would look effective (the strong rep sends them).
    assert email["rate_with"] > 1.3 * email["rate_without"]
    assert demo["n"] == demo["n_with"] + demo["n_without"] == 4000
    with pytest.raises(ValueError, match="needs activities"):
        sf.coaching(sf.fit(log, draws=0), log).action_effectiveness()


def test_action_sequences_of_won_and_lost_deals():
    f = sf.Funnel(["A", "B"], won="Won", lost="Lost")
    events = pd.DataFrame(
        [
            ("w1", "A", d(0)),
            ("w1", "B", d(10)),
            ("w1", "Won", d(20)),
            ("w2", "A", d(0)),
            ("w2", "B", d(10)),
            ("w2", "Won", d(20)),
            ("l1", "A", d(0)),
            ("l1", "Lost", d(10)),
            ("o1", "A", d(0)),
        ],
        columns=["opportunity_id", "stage", "time"],
    ).assign(owner="ann")
    log = sf.EventLog.from_frame(f, events, owner="owner")
    acts = pd.DataFrame(
        [
            ("w1", d(1), "call"),
            ("w1", d(2), "call"),
            ("w1", d(3), "demo"),
            ("w1", d(12), "email"),
            ("w2", d(1), "call"),
            ("w2", d(4), "demo"),
            ("l1", d(1), "email"),
            ("o1", d(1), "demo"),  # still open: neither won nor lost
        ],
        columns=["opportunity_id", "time", "kind"],
    )
    coach = sf.coaching(
        sf.fit(log, as_of=d(30), draws=0), log, sf.ActivityLog.from_frame(log, acts)
    )
    seq = coach.action_sequences("A").set_index("sequence")
    # In A: w1 call, call, demo -> "call > demo"; w2 "call > demo"; l1 "email". (w1's email is in B.)
    assert seq.loc["call > demo", "won"] == 2 and seq.loc["call > demo", "lost"] == 0
    assert seq.loc["email", "lost"] == 1 and seq.loc["email", "won"] == 0
    assert seq.loc["call > demo", "won_share"] == 1.0
    assert "demo" not in seq.index  # the open deal does not count
    assert coach.action_sequences("B").set_index("sequence").loc["email", "won"] == 1


def test_coaching_as_of_a_past_date_has_no_look_ahead(planted):
    sim, _ = planted
    as_of = pd.Timestamp("2024-12-01", tz="UTC")
    base = sf.coaching(sf.fit(sim.log, draws=0), sim.log, as_of=as_of)
    ev = sim.events.copy()
    later = ev["time"] > as_of
    ev.loc[later, "time"] = ev.loc[later, "time"] + pd.Timedelta(days=5)
    ev.loc[later, "amount"] = 1.0
    log = sf.EventLog.from_frame(sim.funnel, ev, amount="amount", owner="owner", created="created")
    again = sf.coaching(sf.fit(log, draws=0), log, as_of=as_of)
    pd.testing.assert_frame_equal(base.scorecard(), again.scorecard())
    pd.testing.assert_frame_equal(base.focus(), again.focus())
    pd.testing.assert_frame_equal(base.summary(), again.summary())


def test_advance_rate_is_censoring_aware():
    from smartfunnel.coaching import _advance_rate

    # Stays at risk at the landmark: 12 days -> advanced, 15 -> lost, 20 still open, 25 -> advanced.
    # Aalen-Johansen: at 12, 1/4 advances (S 3/4); at 15 one of 3 is lost (S 1/2); the open stay
    # leaves the risk set at 20; at 25 the last one advances: 1/4 + 1/2 = 3/4 (closed-only: 2/3).
    # The rate reads counts of stays by duration (n stays, resolved, advanced), so counts from
    # disjoint sets of stays add up.
    advanced = np.array([1.0, 0.0, 0.0, 1.0])
    resolved = np.array([1.0, 1.0, 0.0, 1.0])
    days = np.array([12.0, 15.0, 20.0, 25.0])
    n = np.ones(4)
    assert _advance_rate(days, n, resolved, advanced) == pytest.approx(0.75)
    assert np.isnan(_advance_rate(days[:0], n[:0], resolved[:0], advanced[:0]))
    # The same stays twice, as two cells of counts 2 or as eight rows: the same rate.
    assert _advance_rate(days, 2 * n, 2 * resolved, 2 * advanced) == pytest.approx(0.75)
    twice = np.r_[days, days]
    assert _advance_rate(
        twice, np.ones(8), np.r_[resolved, resolved], np.r_[advanced, advanced]
    ) == (_advance_rate(days, 2 * n, 2 * resolved, 2 * advanced))


def test_momentum_against_won_deals_at_the_same_stage_and_age():
    f = sf.Funnel(["A", "B"], won="Won", lost="Lost")
    events = pd.DataFrame(
        [
            ("w1", "A", d(0)),
            ("w1", "Won", d(20)),
            ("w2", "A", d(0)),
            ("w2", "Won", d(20)),
            ("o", "A", d(86)),  # open, 14 days in A at day 100
        ],
        columns=["opportunity_id", "stage", "time"],
    ).assign(owner="ann")
    log = sf.EventLog.from_frame(f, events, owner="owner")
    acts = pd.DataFrame(
        [
            ("w1", d(2), "call"),
            ("w1", d(5), "call"),
            ("w1", d(12), "call"),
            ("w2", d(1), "call"),
            ("w2", d(13), "call"),
            ("o", d(96), "call"),
            ("o", d(99), "call"),
        ],
        columns=["opportunity_id", "time", "kind"],
    )
    coach = sf.coaching(
        sf.fit(log, as_of=d(100), draws=0), log, sf.ActivityLog.from_frame(log, acts)
    )
    out = coach.inspect().set_index("opportunity_id")
    # Won deals in A at age 14 had 3 and 2 activities in their first 14 days (mean 2.5); the open
    # deal had 2 in its last 14 days: momentum 2 / 2.5.
    assert out.loc["o", "momentum"] == pytest.approx(0.8)
