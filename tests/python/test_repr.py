"""Every public result has a readable one-screen __repr__ and a notebook view (_repr_html_) that is
well-formed, escaped HTML showing key numbers, which are computed here independently with pandas."""

from __future__ import annotations

import html.parser
import re

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}


class _Balanced(html.parser.HTMLParser):
    """Fails on a closing tag that does not close the innermost open one, or tags left open."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def rendered_text(markup: str) -> str:
    """The visible text of a well-formed fragment (asserts it is well-formed)."""
    p = _Balanced()
    p.feed(markup)
    p.close()
    assert not p.stack, f"unclosed tags {p.stack}"
    return " ".join(" ".join(p.text).split())


@pytest.fixture(scope="module")
def world():
    sample = sf.datasets.sample()
    log = sample.log
    model = sf.fit(log, as_of="2025-03-31")
    by_owner = sf.fit(log, as_of="2025-03-31", groups=["owner"])
    events = sample.events
    rng = np.random.default_rng(1)
    acts_frame = pd.DataFrame(
        {
            "opportunity_id": events["opportunity_id"],
            "time": events["time"] + pd.to_timedelta(rng.uniform(0, 2, len(events)), unit="D"),
            "kind": rng.choice(["call", "email", "meeting"], len(events)),
            "buyer": rng.random(len(events)) < 0.25,
        }
    )
    acts = sf.ActivityLog.from_frame(log, acts_frame, buyer="buyer")
    fc = sf.forecast(model, log, "2025-04-01", "2025-06-30", scenarios=2000)
    return {
        "sample": sample,
        "events": events,
        "model": model,
        "by_owner": by_owner,
        "acts_frame": acts_frame,
        "acts": acts,
        "forecast": fc,
    }


def visible_before(events: pd.DataFrame, when: str) -> pd.DataFrame:
    return events[events["time"] <= pd.Timestamp(when, tz="UTC")]


def open_at(events: pd.DataFrame, funnel, when: str) -> int:
    """Opportunities whose last stage at the end of `when` is an open stage (pandas only)."""
    last = visible_before(events, when).sort_values("time").groupby("opportunity_id").tail(1)
    return int(last["stage"].isin(funnel.stages).sum())


def check(obj, *numbers: str) -> str:
    text = repr(obj)
    assert isinstance(text, str) and 0 < len(text) < 3000, type(obj).__name__
    assert "\n" not in text or len(text.splitlines()) < 40
    markup = obj._repr_html_()
    shown = rendered_text(markup)
    for n in numbers:
        assert n in shown, f"{type(obj).__name__}: {n!r} not in its HTML view: {shown[:400]}"
    return shown


def test_event_log(world):
    events = world["events"]
    log = world["sample"].log
    check(log, f"{len(events):,} events", f"{events['opportunity_id'].nunique():,} opportunities")
    assert f"{len(events):,} events" in repr(log)


def test_funnel_model(world):
    events = world["events"]
    model = world["model"]
    seen = visible_before(events, "2025-03-31")
    shown = check(model, f"{seen['opportunity_id'].nunique():,} opportunities", "Negotiation")
    # the stays in the first stage: every visit to Prospecting seen by as_of
    n_first = int((seen["stage"] == "Prospecting").sum())
    assert f"{n_first}" in shown
    by_owner = world["by_owner"]
    reps = events["owner"].nunique()
    check(by_owner, f"{reps} groups")


def test_fit_options():
    o = sf.FitOptions(groups=("owner",), level=0.8, half_life=90)
    shown = check(o, "level 0.8", "half_life 90", "owner")
    assert "min_exits 20" in shown


def test_funnel():
    f = sf.Funnel(["Lead", "Demo"], won="Won", lost=["Lost", "No <budget>"], name="a & b")
    markup = f._repr_html_()
    assert "No &lt;budget&gt;" in markup and "<budget>" not in markup
    check(f, "Lead → Demo", "Lost, No <budget>", "'a & b'")


def test_forecast_and_its_distribution(world):
    fc = world["forecast"]
    events = world["events"]
    n_open = open_at(events, world["sample"].funnel, "2025-03-31")
    deals = fc.deals
    assert len(deals) == n_open
    # the pipeline's expected revenue, from the per-deal table by hand, plus arrivals and realised
    expected = (deals["amount"] * deals["p_win_period"]).sum()
    assert expected <= fc.expected + 1
    check(fc, f"{n_open:,}", "2025-04-01 .. 2025-06-30", "P10", "P90")
    exact = fc.exact
    pmf = exact.pmf / exact.pmf.sum()
    values = exact.values()
    mean = float((pmf * values).sum())
    p50 = float(values[np.searchsorted(np.cumsum(pmf), 0.5)])
    check(exact, f"{mean:,.4g}", f"{p50:,.4g}")
    assert f"P50 {p50:,.0f}" in repr(exact)


def test_activity_log(world):
    frame = world["acts_frame"]
    counts = frame["kind"].value_counts()
    buyer = frame[frame["buyer"]]["kind"].value_counts()
    shown = check(world["acts"], f"{len(frame):,} activities")
    for kind in ["call", "email", "meeting"]:
        assert re.search(rf"{kind} {counts[kind]} {buyer[kind]}\b", shown), (kind, shown)


def test_coaching(world):
    coach = sf.coaching(world["by_owner"], world["sample"].log)
    reps = sorted(world["events"]["owner"].unique())
    shown = check(coach, f"{len(reps)} reps")
    for rep in reps:
        assert rep in shown


def test_backtest(world):
    log = world["sample"].log
    bt = sf.backtest(log, ["2024-10-01", "2025-01-01"], horizon_days=60)
    shown = check(bt, "2 dates", "horizon 60 days", "mae")
    assert "smartfunnel" in shown and "closed_only" in shown  # the methods compared


def test_simulation(world):
    sample = world["sample"]
    events = world["events"]
    # the true P(win) by hand from the transition matrix: B = (I - Q)^-1 R
    q = sample.transition[:, :4]
    b = np.linalg.solve(np.eye(4) - q, sample.transition[:, 4])
    check(sample, f"{len(events):,} events", f"{b[0]:.3f}")
    assert len(repr(sample)) < 300


def test_plan_and_flow_are_dataframes(world):
    """plan and pipeline_flow return DataFrames: pandas' own notebook view."""
    log = world["sample"].log
    p = sf.plan(world["model"], log, 1_000_000, "2025-04-01", "2025-06-30", by=None)
    flow = sf.pipeline_flow(log, "2025-01-01", "2025-03-31")
    for df in (p, flow):
        assert isinstance(df, pd.DataFrame)
        rendered_text(df._repr_html_())


def test_escaping_of_user_names():
    events = pd.DataFrame(
        {
            "opportunity_id": ["a", "a", "b"],
            "stage": ["<b>Open</b>", "Won", "<b>Open</b>"],
            "time": pd.to_datetime(["2025-01-01", "2025-01-05", "2025-01-02"], utc=True),
            "owner": ["<script>x</script>", "<script>x</script>", "Bob & Co"],
        }
    )
    f = sf.Funnel(["<b>Open</b>"], name="<i>f</i>")
    log = sf.EventLog.from_frame(f, events, owner="owner")
    model = sf.fit(log, groups=["owner"], min_groups_for_eb=2)
    for obj in (log, model, f):
        markup = obj._repr_html_()
        assert "<script>" not in markup and "<b>" not in markup and "<i>" not in markup
        rendered_text(markup)
    assert "&lt;b&gt;Open&lt;/b&gt;" in model._repr_html_()
