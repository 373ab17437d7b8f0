"""fit(): hand-worked estimates, recovery of known truth, merge and as_of properties."""

from __future__ import annotations

from fractions import Fraction as Fr

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smartfunnel as sf

ABC = sf.Funnel(["A", "B", "C"], won="Won", lost="Lost")
DAY0 = pd.Timestamp("2024-01-01", tz="UTC")


def days(rows):
    """(opportunity, stage, day) -> frame with times DAY0 + day."""
    return pd.DataFrame(
        {
            "opportunity_id": [r[0] for r in rows],
            "stage": [r[1] for r in rows],
            "time": [DAY0 + pd.Timedelta(days=r[2]) for r in rows],
        }
    )


# Six deals, analysed as of day 10 (worked by hand below):
#   o1: A@0 -> B@2 -> Won@5          o2: A@0 -> Lost@1
#   o3: A@0 -> B@4 -> A@6 -> B@7 -> Lost@9   (regression and re-entry)
#   o4: A@0, still open (A censored at 10)   o5: A@0 -> C@3 (skip) -> Won@4
#   o6: A@8, still open (A censored at 2: shorter than some exits, tied with o1's exit)
HAND = days(
    [
        ("o1", "A", 0),
        ("o1", "B", 2),
        ("o1", "Won", 5),
        ("o2", "A", 0),
        ("o2", "Lost", 1),
        ("o3", "A", 0),
        ("o3", "B", 4),
        ("o3", "A", 6),
        ("o3", "B", 7),
        ("o3", "Lost", 9),
        ("o4", "A", 0),
        ("o5", "A", 0),
        ("o5", "C", 3),
        ("o5", "Won", 4),
        ("o6", "A", 8),
    ]
)
AS_OF = DAY0 + pd.Timedelta(days=10)


@pytest.fixture(scope="module")
def hand_model():
    return sf.fit(sf.EventLog.from_frame(ABC, HAND), as_of=AS_OF, prior=0)


def test_hand_worked_stage_a(hand_model):
    # Stage A stays (duration, destination): 2->B, 1->Lost, 4->B, 1->B, 10 cens, 3->C, 2 cens.
    # t=1: n=7, exits Lost+B -> S=5/7, F_L=1/7, F_B=1/7
    # t=2: n=5 (exit before the tied censoring), exit B -> S=4/7, F_B += 5/7*1/5 = 2/7
    # t=3: n=3, exit C -> S=8/21, F_C = 4/7*1/3 = 4/21
    # t=4: n=2, exit B -> S=4/21, F_B += 8/21*1/2 -> 10/21.   tau = 4, unresolved 4/21.
    s = hand_model.summary.loc["A"]
    assert s.loc["B", "p"] == pytest.approx(float(Fr(10, 17)), abs=1e-14)
    assert s.loc["C", "p"] == pytest.approx(float(Fr(4, 17)), abs=1e-14)
    assert s.loc["Lost", "p"] == pytest.approx(float(Fr(3, 17)), abs=1e-14)
    assert s.loc["Won", "p"] == 0
    assert s.loc["B", "naive"] == pytest.approx(3 / 5) and s.loc["Lost", "naive"] == pytest.approx(
        1 / 5
    )
    assert s.loc["B", "unresolved"] == pytest.approx(4 / 21, abs=1e-14)
    assert list(s["exits"]) == [3, 1, 0, 1]  # B, C, Won, Lost
    tis = hand_model.time_in_stage()
    assert tis.loc["A", "median_days"] == 3  # S(2) = 4/7 > 1/2, S(3) = 8/21 <= 1/2
    assert tis.loc["A", "n"] == 7 and tis.loc["A", "censored"] == 2
    assert tis.loc["B", "median_days"] == 2  # B: t=2 exits A and Lost of n=3 -> S=1/3
    assert np.isnan(tis.loc["A", "p90"])  # S never reaches 0.1 (ends at 4/21)


def test_hand_worked_win_probability(hand_model):
    # p_A = (B 10/17, C 4/17, Lost 3/17); p_B = (A 1/3, Won 1/3, Lost 1/3); p_C = (Won 1).
    # B_B = 1/3 B_A + 1/3, B_A = 10/17 B_B + 4/17  =>  B_B = 21/41, B_A = 22/41, B_C = 1.
    win = hand_model.win_probability()
    assert win["A"] == pytest.approx(22 / 41, abs=1e-12)
    assert win["B"] == pytest.approx(21 / 41, abs=1e-12)
    assert win["C"] == pytest.approx(1.0, abs=1e-12)
    # Expected visits from A: v_A = 1 + 10/17 v_B + 4/17, v_B = 1 + v_A/3  =>  v_A = 93/41.
    assert hand_model.stage_summary().loc["A", "expected_visits"] == pytest.approx(
        93 / 41, abs=1e-12
    )
    tm = hand_model.transition_matrix()
    assert np.allclose(tm.sum(axis=1), 1.0)
    assert tm.loc["B", "A"] == pytest.approx(1 / 3)


def test_p_win_scores_stage_and_age(hand_model):
    win = hand_model.win_probability()
    got = hand_model.p_win(["A", "B", "Won", "Lost"], [0, 0, 5, 5])
    assert got == pytest.approx([win["A"], win["B"], 1.0, 0.0])


def test_prior_smooths_toward_feasible_destinations():
    # Without censoring, n_eff = number of exits; the prior mean is uniform over the destinations
    # seen from the stage plus the forward step and Lost.
    df = days([("a", "A", 0), ("a", "B", 1), ("a", "Won", 2), ("b", "A", 0), ("b", "Lost", 3)])
    m = sf.fit(sf.EventLog.from_frame(ABC, df), prior=3.0)
    s = m.summary.loc["A"]
    # A: exits B (1), Lost (1); feasible {B, Lost} -> mean 1/2 each; posterior (3*1/2 + 1)/(3 + 2).
    assert s.loc["B", "probability"] == pytest.approx(0.5)
    assert s.loc["Lost", "probability"] == pytest.approx(0.5)
    # B: one exit to Won; feasible {C (forward), Won (seen), Lost} -> (3*1/3 + 1)/(3 + 1) = 1/2.
    sb = m.summary.loc["B"]
    assert sb.loc["Won", "probability"] == pytest.approx(0.5)
    assert sb.loc["C", "probability"] == pytest.approx(0.25)
    assert sb.loc["Lost", "probability"] == pytest.approx(0.25)


def test_singular_chain_is_a_typed_error():
    df = days([("a", "A", 0), ("a", "B", 1), ("a", "A", 2), ("a", "B", 3)])
    with pytest.raises(sf.SingularChainError, match="never reach Won or Lost"):
        sf.fit(sf.EventLog.from_frame(ABC, df), prior=0)


# -- simulation with known truth --------------------------------------------------------------

FOUR = sf.Funnel(
    ["Prospecting", "Qualification", "Proposal", "Negotiation"], won="Won", lost="Lost"
)
TRUE_P = np.array(
    [
        [0.0, 0.6, 0.0, 0.0, 0.0, 0.4],
        [0.0, 0.0, 0.5, 0.0, 0.0, 0.5],
        [0.0, 0.1, 0.0, 0.6, 0.0, 0.3],
        [0.0, 0.0, 0.0, 0.0, 0.7, 0.3],
    ]
)
# Losses are quick, advances slow: under censoring, closed-only rates over-count losses.
SOJOURN = np.array(
    [
        [1, 40, 1, 1, 1, 6],
        [1, 1, 35, 1, 1, 6],
        [1, 30, 1, 30, 1, 6],
        [1, 1, 1, 1, 30, 6],
    ],
    dtype=float,
)


def simulate(seed, n=600):
    return sf.datasets.simulate(
        FOUR, TRUE_P, SOJOURN, n_opportunities=n, start="2024-01-01", as_of="2024-05-01", seed=seed
    )


def test_recovers_truth_with_nominal_coverage_while_naive_is_biased():
    truth_b = None
    hits_p = hits_b = 0
    naive_err, aware_err = [], []
    seeds = range(120)
    for seed in seeds:
        sim = simulate(seed)
        truth_b = sim.true_win_probability() if truth_b is None else truth_b
        m = sf.fit(sim.log, as_of=sim.as_of, prior=1.0, draws=400, seed=seed)
        row = m.summary.loc[("Prospecting", "Qualification")]
        hits_p += row["low"] <= 0.6 <= row["high"]
        naive_err.append(row["naive"] - 0.6)
        aware_err.append(row["p"] - 0.6)
        ss = m.stage_summary()
        hits_b += (
            ss.loc["Prospecting", "p_win_low"]
            <= truth_b["Prospecting"]
            <= ss.loc["Prospecting", "p_win_high"]
        )
    n = len(seeds)
    # 90% intervals: coverage within about 3 binomial standard errors (sd = sqrt(.9*.1/120) = .027).
    assert 0.80 <= hits_p / n <= 0.98, hits_p / n
    assert 0.80 <= hits_b / n <= 0.98, hits_b / n
    naive_bias, aware_bias = np.mean(naive_err), np.mean(aware_err)
    se = np.std(naive_err) / np.sqrt(n)
    assert naive_bias < -8 * se, (naive_bias, se)  # the closed-only estimate is clearly too low
    assert abs(aware_bias) < abs(naive_bias) / 4, (aware_bias, naive_bias)


# -- properties -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim():
    return sf.datasets.simulate(n_opportunities=400, start="2024-01-01", as_of="2024-09-01", seed=7)


def cells_by_key(model):
    return {(tuple(k), s): (d, c, w) for k, s, d, c, w, _ in model.core.cells()}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.integers(2, 4), salt=st.integers(0, 10_000), half_life=st.sampled_from([None, 30.0])
)
def test_merge_of_partial_fits_equals_whole_fit(sim, parts, salt, half_life):
    ev = sim.events
    ids = ev["opportunity_id"].unique()
    rng = np.random.default_rng(salt)
    part_of = dict(zip(ids, rng.integers(0, parts, len(ids))))
    opts = sf.FitOptions(as_of=sim.as_of, groups=["owner"], half_life=half_life, draws=50)
    whole = sf.fit(sim.log, opts)
    models = []
    for p in range(parts):
        sub = ev[ev["opportunity_id"].map(part_of) == p]
        if len(sub) == 0:
            continue
        log = sf.EventLog.from_frame(sim.funnel, sub, amount="amount", owner="owner")
        models.append(sf.fit(log, opts))
    merged = models[0]
    for m in models[1:]:
        merged = sf.merge(merged, m)
    a, b = cells_by_key(whole), cells_by_key(merged)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key][0], b[key][0])
        np.testing.assert_array_equal(a[key][1], b[key][1])  # integer counts: exact
        np.testing.assert_allclose(a[key][2], b[key][2], rtol=1e-12)
    for g in whole.groups:
        np.testing.assert_allclose(
            whole.transition_matrix(g), merged.transition_matrix(g), rtol=1e-12, atol=1e-15
        )
        np.testing.assert_allclose(whole.win_probability(g), merged.win_probability(g), rtol=1e-12)


def test_merge_rejects_different_options(sim):
    a = sf.fit(sim.log, as_of=sim.as_of, prior=1.0, draws=10)
    b = sf.fit(sim.log, as_of=sim.as_of, prior=2.0, draws=10)
    with pytest.raises(sf.IncompatibleMergeError):
        sf.merge(a, b)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut_days=st.integers(30, 200), shift=st.integers(1, 50), salt=st.integers(0, 1000))
def test_changes_after_as_of_cannot_change_the_fit(sim, cut_days, shift, salt):
    ev = sim.events
    as_of = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=cut_days)
    opts = sf.FitOptions(as_of=as_of, groups=["owner"], draws=50)
    base = sf.fit(sim.log, opts)
    rng = np.random.default_rng(salt)
    later = ev["time"] > as_of
    changed = ev.copy()
    # Move later events further out, re-assign their owners and amounts.
    changed.loc[later, "time"] = changed.loc[later, "time"] + pd.Timedelta(days=shift)
    owners = np.asarray(changed["owner"].cat.categories)
    changed.loc[later, "owner"] = rng.choice(owners, int(later.sum()))
    changed.loc[later, "amount"] = 0.0
    log = sf.EventLog.from_frame(sim.funnel, changed, amount="amount", owner="owner")
    again = sf.fit(log, opts)
    assert again == base
    for g in base.groups:
        np.testing.assert_array_equal(base.transition_matrix(g), again.transition_matrix(g))


def test_probabilities_are_probabilities(sim):
    m = sf.fit(sim.log, groups=["owner"], draws=100)
    for g in m.groups:
        tm = m.transition_matrix(g)
        assert ((tm >= 0) & (tm <= 1)).all().all()
        np.testing.assert_allclose(tm.sum(axis=1), 1.0)
        s = m.stage_summary(g)
        assert (s["p_win_low"] <= s["p_win"] + 1e-12).all() and (
            s["p_win"] <= s["p_win_high"] + 1e-12
        ).all()


def test_groups_are_shrunk_toward_the_team(sim):
    m = sf.fit(sim.log, groups=["owner"], min_groups_for_eb=3)
    assert len(m.groups) == 1 + 5
    team = m.transition_matrix().loc["Prospecting", "Lost"]
    raw = m.summary.xs("Prospecting", level="stage").xs("Lost", level="destination")
    for g in m.groups[1:]:
        row = raw.loc["/".join(g)]
        # The shrunk rate lies between the rep's own censoring-aware rate and the team's.
        lo, hi = sorted([row["p"], team])
        assert lo - 1e-9 <= row["probability"] <= hi + 1e-9


def test_time_in_stage_by_destination(hand_model):
    # Stage A exits to B at durations 1, 2, 4 with AJ increments 1/7, 1/7, 4/21 (total 10/21):
    # cumulative share 3/10, 6/10, 1 -> median (first share >= 1/2) at 2, p25 at 1, p90 at 4.
    # C: one exit at 3; Lost: one exit at 1.
    t = hand_model.time_in_stage(by="destination")
    assert t.loc[("A", "B"), "median_days"] == 2
    assert t.loc[("A", "B"), "p25"] == 1
    assert t.loc[("A", "B"), "p90"] == 4
    assert t.loc[("A", "C"), "median_days"] == 3
    assert t.loc[("A", "Lost"), "median_days"] == 1
    assert t.loc[("A", "B"), "exits"] == 3
    # Mean given B, weighted by the AJ increments: (1*3 + 2*3 + 4*4) / 10 = 2.5 days.
    assert t.loc[("A", "B"), "mean_days"] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="by must be"):
        hand_model.time_in_stage(by="owner")
