"""Plots: each returns the axes it drew on, with the expected artists (rendered with Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import smartfunnel as sf


@pytest.fixture(scope="module")
def sample():
    sim = sf.datasets.sample()
    return sim, sf.fit(sim.log, as_of="2025-03-31", draws=200)


def test_plot_funnel_and_time_in_stage(sample):
    _, model = sample
    _, ax = plt.subplots()
    assert model.plot_funnel(ax=ax) is ax
    bars = list(ax.patches)
    assert len(bars) == 4
    np.testing.assert_allclose(
        [b.get_width() for b in bars][::-1][::-1], model.win_probability().to_numpy()
    )
    ax2 = model.plot_time_in_stage()
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == list(model.funnel.stages)
    plt.close("all")


def test_plot_forecast_and_scorecard(sample, tmp_path):
    sim, model = sample
    fc = sf.forecast(model, sim.log, start="2025-04-01", end="2025-06-30", scenarios=0)
    ax = fc.plot_forecast(target=1_500_000)
    assert "target: P = " in ax.get_legend().get_texts()[-1].get_text()
    ax.figure.savefig(tmp_path / "forecast.png")
    assert (tmp_path / "forecast.png").stat().st_size > 10_000
    coach = sf.coaching(model, sim.log)
    ax = coach.plot_scorecard()
    assert len(ax.images) == 1 and ax.images[0].get_array().shape == (5, 4)
    plt.close("all")


def test_plot_forecast_shows_where_the_probability_is(sample):
    sim, model = sample
    fc = sf.forecast(model, sim.log, start="2025-04-01", end="2025-06-30", scenarios=0)
    lo, hi = fc.exact.values()[[0, -1]]
    ax = fc.plot_forecast()
    left, right = ax.get_xlim()
    # The lattice spans +-8 sd; the view is the central 99.9% with a margin, inside the lattice.
    assert lo < left < fc.quantile(0.0005) and fc.quantile(0.9995) < right < hi
    plt.close("all")


def test_plot_backtest(sample):
    sim, _ = sample
    dates = ["2024-10-01", "2024-12-30"]
    bt = sf.backtest(sim.log, dates, horizon_days=90)
    ax = bt.plot_backtest()
    own = bt.table[bt.table["method"] == "smartfunnel"]
    band = ax.collections[0].get_segments()
    assert [(s[0][1], s[1][1]) for s in band] == list(zip(own["P10"], own["P90"]))
    actual = next(line for line in ax.get_lines() if line.get_label() == "actually won")
    assert list(actual.get_ydata()) == own["actual"].tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == dates
    with pytest.raises(ValueError, match="static_ladder"):
        bt.plot_backtest(method="static_ladder")
    plt.close("all")


def test_scorecard_stage_names_do_not_overlap():
    # Salesforce's standard picklist: long names, one rep; as the report draws it (7.5 x 3 in).
    stages = ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
              "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
              "Negotiation/Review"]  # fmt: skip
    funnel = sf.Funnel(stages, won="Closed Won", lost="Closed Lost")
    rows = []
    for i in range(40):
        t = np.datetime64("2024-01-01") + np.timedelta64(i, "D")
        for k, s in enumerate(stages[: 1 + i % len(stages)]):
            rows.append((f"o{i}", s, t + np.timedelta64(3 * k, "D"), "U1" if i % 2 else "U2"))
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["opportunity_id", "stage", "time", "owner"])
    log = sf.EventLog.from_frame(funnel, frame, owner="owner")
    coach = sf.coaching(sf.fit(log, as_of="2024-04-01", groups=["owner"]), log)
    fig = plt.figure(figsize=(7.5, 3.0), layout="constrained")
    ax = coach.plot_scorecard(ax=fig.add_subplot())
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels()]
    assert [t.get_text() for t in ax.get_xticklabels()] == stages
    for a, b in zip(boxes, boxes[1:]):
        assert not a.overlaps(b), (a, b)
    plt.close("all")
