"""Aged deals on real data: P(won ever) is the limit of the time-bounded probabilities."""

import numpy as np
import pandas as pd

import smartfunnel as sf


def test_maven_deals_older_than_every_closed_stay(shared_data):
    folder = shared_data / "maven-crm-sales-opportunities"
    imp = sf.imports.read([folder])
    model = sf.fit(imp.log, as_of=imp.as_of)
    # The longest closed stay in Engaging, from the raw export with pandas: engage to close.
    raw = pd.read_csv(folder / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"])
    closed = raw[raw["deal_stage"].isin(["Won", "Lost"])]
    longest = int((closed["close_date"] - closed["engage_date"]).dt.days.max())
    assert 100 < longest < 300
    ages = np.array([longest + 1, 300.0, 423.0])

    def p_win(age, horizon=None):
        stage = np.full(len(age), "Engaging", dtype=object)
        return model.p_win(stage, age) if horizon is None else model.p_win(stage, age, horizon)

    ever = p_win(ages)
    prev = np.zeros(len(ages))
    for h in (30.0, 90.0, 365.0, 3650.0):
        within = p_win(ages, h)
        assert np.all(within >= prev - 1e-15)  # monotone in the horizon
        assert np.all(within <= ever + 1e-12)  # ever is the limit
        prev = within
    # Won after a year: the difference, small (it was 63% against 0.15% before the dead share).
    year = p_win(ages, 365.0)
    assert np.all(ever - year < 0.005), (ever, year)
    assert np.all(ever < 0.05)
    # A fresh deal: the eventual win is the chain's, the same as win_probability, and the limit.
    fresh = model.p_win("Engaging", 0.0)[0]
    assert abs(fresh - model.win_probability()["Engaging"]) < 1e-12
    assert abs(model.p_win("Engaging", 0.0, 3650.0)[0] - fresh) < 1e-6
    k = model.core.kernel(0, list(model.funnel.stages).index("Engaging"))
    assert 0.0 < k["dead_low"] <= k["dead_share"] <= k["dead_high"] < 1.0
    # The forecast's deals: P(won ever) of the aged open deals agrees with the model's.
    fc = sf.forecast(model, imp.log, imp.as_of, imp.as_of + pd.Timedelta(days=90))
    d = fc.deals
    old = d[(d["stage"] == "Engaging") & (d["age_days"] > longest)]
    assert len(old) > 0
    want = p_win(np.floor(old["age_days"].to_numpy()))
    np.testing.assert_allclose(old["p_win_ever"].to_numpy(), want, atol=1e-12)
    assert old["p_win_ever"].max() < 0.05
