"""smartfunnel.dask on a real distributed.LocalCluster with worker processes: fits, forecasts (both
methods) and scorecards equal the single-machine results on the same data, for several
partitionings (skewed, with empty partitions, not by opportunity at all); bad data fails clearly."""

from __future__ import annotations

import concurrent.futures
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

import smartfunnel.dask as sfd  # noqa: E402

COLUMNS = dict(amount="amount", owner="owner", created="created")
PERIOD = ("2025-07-01", "2025-09-30")
TIMEOUT = 120  # seconds: a hang fails the test instead of the run


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    s = sf.datasets.sample()
    local = sf.EventLog.from_frame(s.funnel, s.events, **COLUMNS)
    return s, local, sf.fit(local)


def _run(fn, *args, **kwargs):
    """Runs fn in a thread with a timeout, so a hung cluster fails the test."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(fn, *args, **kwargs).result(timeout=TIMEOUT)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung call must not hang the test


def _pieces(events: pd.DataFrame, how: str) -> dd.DataFrame:
    """The events as a Dask DataFrame partitioned in one of several ways."""
    ids = events["opportunity_id"].to_numpy()
    meta = events.iloc[:0]
    if how == "one":
        return dd.from_pandas(events, npartitions=1)
    if how == "hash5":  # five partitions by opportunity, interleaved ids
        parts = [events[ids % 5 == k] for k in range(5)]
    elif how == "skewed":  # 90% of the opportunities in one partition, two empty partitions
        order = np.unique(ids)
        cut = order[int(0.9 * len(order))]
        parts = [
            events[ids < cut],
            meta,
            events[(ids >= cut) & (ids % 2 == 0)],
            meta,
            events[(ids >= cut) & (ids % 2 == 1)],
        ]
    elif how == "rows":  # consecutive rows of a frame in time order: opportunities split
        by_time = events.sort_values("time", kind="stable")
        return dd.from_pandas(by_time, npartitions=4, sort=False)
    elif how == "indexed":  # indexed by opportunity with known divisions
        return dd.from_pandas(events.set_index("opportunity_id"), npartitions=3, sort=True)
    else:
        raise ValueError(how)
    return dd.from_delayed([dask.delayed(p) for p in parts], meta=meta, verify_meta=False)


def _aligned(a, b) -> float:
    """Max |pmf difference| of two lattice distributions on the same lattice (same step, origins
    a whole number of steps apart)."""
    assert a.step == pytest.approx(b.step, rel=1e-12)
    shift = (a.origin - b.origin) / a.step
    assert shift == pytest.approx(round(shift), abs=1e-6)
    k = round(shift)
    lo, hi = min(0, k), max(len(b.pmf), k + len(a.pmf))
    pa = np.zeros(hi - lo)
    pb = np.zeros(hi - lo)
    pa[k - lo : k - lo + len(a.pmf)] = a.pmf
    pb[-lo : -lo + len(b.pmf)] = b.pmf
    return float(np.abs(pa - pb).max())


def test_workers_import_this_smartfunnel(client):
    here = pathlib.Path(sf.__file__).resolve()
    where = client.run(lambda: __import__("smartfunnel").__file__)
    assert len(where) == 2
    assert {pathlib.Path(p).resolve() for p in where.values()} == {here}
    pids = client.run(__import__("os").getpid)
    assert len(set(pids.values())) == 2 and __import__("os").getpid() not in pids.values()


@pytest.mark.parametrize("how", ["one", "hash5", "skewed", "rows", "indexed"])
def test_fit_forecast_scorecard_equal_local(client, data, how):
    s, local, model = data
    frame = _pieces(s.events, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = _run(sfd.EventLog.from_frame, s.funnel, frame, **COLUMNS)
    repartition = [w for w in caught if issubclass(w.category, sfd.PartitioningWarning)]
    assert bool(repartition) == (how == "rows") == log.repartitioned
    if how == "rows":
        assert "repartitioning by 'opportunity_id'" in str(repartition[0].message)
    assert (log.n_events, log.n_opportunities) == (len(s.events), s.events.opportunity_id.nunique())
    assert log.last_time == s.events["time"].max()
    if how == "skewed":
        sizes = log.partition_sizes()["opportunities"].tolist()
        assert sizes[1] == sizes[3] == 0 and sizes[0] == 0.9 * 2000

    # Fit: the merged statistics give the model of the whole, equal to the local fit.
    dmodel = _run(sfd.fit, log)
    assert dmodel == model
    assert dmodel.core.n_opportunities == 2000
    pd.testing.assert_frame_equal(dmodel.stage_summary(), model.stage_summary())

    # Monte Carlo: bit-identical scenario totals (realised and arrivals included).
    dmc = _run(sfd.forecast, dmodel, log, *PERIOD, method="monte_carlo", scenarios=3000, seed=7)
    lmc = sf.forecast(
        model, local, *PERIOD, method="monte_carlo", scenarios=3000, seed=7, calibrate=False
    )
    assert dmc.scenarios.dtype == np.int64
    np.testing.assert_array_equal(dmc.scenarios, lmc.scenarios)
    assert dmc.quantiles().equals(lmc.quantiles())
    pd.testing.assert_frame_equal(dmc.arrivals, lmc.arrivals)
    # New deals valued like the deals won in the lookback, read from the partitions too.
    assert (lmc.arrivals["amount_source"] == "won").all()

    # Exact: the local distribution on the same lattice, to rounding.
    dex = _run(sfd.forecast, dmodel, log, *PERIOD, scenarios=0)
    lex = sf.forecast(model, local, *PERIOD, scenarios=0, calibrate=False)
    for a, b in [
        (dex.exact, lex.exact),
        (dex.exact_pipeline, lex.exact_pipeline),
        (dex.exact_arrivals, lex.exact_arrivals),
    ]:
        assert _aligned(a, b) < 1e-12
        assert a.mean == pytest.approx(b.mean, rel=1e-12)
        assert a.variance == pytest.approx(b.variance, rel=1e-12)
    for q in (0.05, 0.1, 0.5, 0.9, 0.95):
        assert dex.quantile(q) == pytest.approx(lex.quantile(q), rel=1e-9)
    # Its expectation is realised + sum(amount x p) over the open deals + the arrivals' mean,
    # from the local deals table.
    deals = lex.deals
    pipeline = float((deals["amount"] * deals["p_win_period"].clip(0, 1)).sum())
    assert dex.expected == pytest.approx(
        lex.realised + pipeline + lex.arrivals["expected"].sum(), rel=1e-9
    )
    assert dex.n_open_deals == len(deals)
    got = dex.deals.compute().sort_values("opportunity_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, deals.sort_values("opportunity_id", ignore_index=True))

    # Scorecard: from the fit grouped by owner, equal to the local one.
    pd.testing.assert_frame_equal(_run(sfd.scorecard, log), sf.coaching(model, local).scorecard())


def test_grouped_and_decayed_fits_equal_local(client, data):
    s, local, _ = data
    log = _run(sfd.EventLog.from_frame, s.funnel, _pieces(s.events, "skewed"), **COLUMNS)
    for options in (
        sf.FitOptions(groups=["owner"], as_of="2025-03-31"),
        sf.FitOptions(prior=0.0, tick="1h"),
    ):
        assert _run(sfd.fit, log, options, split_every=2) == sf.fit(local, options)
    # With a half-life the weights are sums of floating-point decay factors, added in another
    # order: equal to rounding, not bit for bit (the counts stay exact).
    options = sf.FitOptions(half_life="90D", groups=["owner"])
    dmodel, lmodel = _run(sfd.fit, log, options), sf.fit(local, options)
    for group in [None, *lmodel.groups[1:]]:
        got, want = dmodel.stage_summary(group), lmodel.stage_summary(group)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=1e-12)
        assert (got["n"] == want["n"]).all()


def test_bad_row_names_partition_and_label(client, data):
    s, _, _ = data
    events = s.events.copy()
    events.index = pd.Index([f"r{i}" for i in range(len(events))], name="row_id")
    events["stage"] = events["stage"].astype(object)
    ids = events["opportunity_id"].to_numpy()
    bad = np.flatnonzero(ids % 3 == 2)[5]  # a row of partition 2
    events.iloc[bad, events.columns.get_loc("stage")] = "Closed Maybe"
    frame = dd.from_delayed(
        [dask.delayed(events[ids % 3 == k]) for k in range(3)], meta=events.iloc[:0]
    )
    with pytest.raises(sf.UnknownStageError) as info:
        _run(sfd.EventLog.from_frame, s.funnel, frame, **COLUMNS)
    msg = str(info.value)
    assert msg.startswith(f"partition 2, row 'r{bad}'"), msg
    assert "Closed Maybe" in msg
    assert info.value.partition == 2 and info.value.label == f"r{bad}"
    # Lenient validation keeps every valid row and reports the bad one with its partition.
    log = _run(sfd.EventLog.from_frame, s.funnel, frame, **COLUMNS, validation="lenient")
    rejected = log.rejected
    assert list(rejected.index) == [f"r{bad}"]
    assert rejected["partition"].tolist() == [2]
    assert log.n_events == len(events) - 1


def test_errors(client, data):
    s, _, model = data
    empty = dd.from_pandas(s.events.iloc[:0], npartitions=1)
    log = _run(sfd.EventLog.from_frame, s.funnel, empty, **COLUMNS)
    with pytest.raises(sf.DataError, match="no events"):
        sfd.fit(log)
    with pytest.raises(TypeError, match="dask DataFrame"):
        sfd.EventLog.from_frame(s.funnel, s.events)
    # An empty log forecasts nothing, as locally.
    fc = _run(sfd.forecast, model, log, *PERIOD, scenarios=100)
    local = sf.forecast(
        model, sf.EventLog.from_frame(s.funnel, s.events.iloc[:0]), *PERIOD, calibrate=False
    )
    assert fc.expected == local.expected == 0.0
    assert fc.n_open_deals == 0 and (fc.scenarios == 0).all() and len(fc.scenarios) == 100
    good = _run(sfd.EventLog.from_frame, s.funnel, _pieces(s.events, "indexed"), **COLUMNS)
    with pytest.raises(ValueError, match="split_every"):
        sfd.fit(good, split_every=1)


def test_fit_statistics_merge_pickle_and_save(data, tmp_path):
    """The partial statistics that travel between workers: disjoint halves merge into the whole,
    survive pickling and files, and refuse to merge across options."""
    import pickle

    s, local, model = data
    ids = s.events["opportunity_id"].to_numpy()
    core_opts = sf.FitOptions(as_of=local.last_time).to_core()
    halves = [
        sf._core.collect_statistics(
            sf.EventLog.from_frame(s.funnel, s.events[ids % 2 == k], **COLUMNS).core, core_opts
        )
        for k in (0, 1)
    ]
    assert halves[0].n_opportunities == len(np.unique(ids[ids % 2 == 0]))
    merged = halves[0].merge(halves[1])
    assert merged.n_opportunities == 2000 and merged.n_stays == model.core.n_stays
    assert merged == sf._core.merge_statistics(halves) == model.core.statistics
    assert sf._core.FunnelModel.from_statistics(merged).statistics_equal(model.core)
    assert pickle.loads(pickle.dumps(merged)) == merged
    merged.save(tmp_path / "stats.sfa")
    assert sf.load(tmp_path / "stats.sfa") == merged
    other = sf._core.collect_statistics(local.core, sf.FitOptions(prior=0.5).to_core())
    with pytest.raises(sf.IncompatibleMergeError):
        merged.merge(other)


def test_backtest_equal_local(client, data):
    """Per-date distributed fits and forecasts give the local backtest's table and deal rows."""
    s, local, _ = data
    log = _run(sfd.EventLog.from_frame, s.funnel, _pieces(s.events, "skewed"), **COLUMNS)
    dates = ["2024-10-01", "2025-01-15"]
    ladder = {"Prospecting": 0.1, "Qualification": 0.2, "Proposal": 0.4, "Negotiation": 0.6}
    got = _run(sfd.backtest, log, dates, horizon_days=60, ladder=ladder)
    want = sf.backtest(local, dates, horizon_days=60, ladder=ladder, calibrate=False)
    assert len(got.table) == len(want.table) == 2 * 4
    pd.testing.assert_frame_equal(got.table, want.table, check_exact=False, rtol=1e-9)
    # The deal rows hold the same deals (in partition order rather than the log's).
    key = ["as_of", "method", "p", "won"]
    pd.testing.assert_frame_equal(
        got.deals.sort_values(key, ignore_index=True),
        want.deals.sort_values(key, ignore_index=True),
    )
    pd.testing.assert_frame_equal(got.metrics, want.metrics, check_exact=False, rtol=1e-9)
    # With parameter uncertainty: the mixture's bands, as locally.
    kw = dict(horizon_days=60, parameter_uncertainty=True, parameter_draws=6)
    wide = _run(sfd.backtest, log, dates[:1], **kw)
    pd.testing.assert_frame_equal(
        wide.table,
        sf.backtest(local, dates[:1], calibrate=False, **kw).table,
        check_exact=False,
        rtol=1e-9,
    )
    point = want.table[want.table["as_of"] == want.table["as_of"].iloc[0]]
    wide_sf = wide.table[wide.table["method"] == "smartfunnel"].iloc[0]
    point_sf = point[point["method"] == "smartfunnel"].iloc[0]
    assert wide_sf["P90"] - wide_sf["P10"] > point_sf["P90"] - point_sf["P10"]
    # On a weekly grid, as locally (and not the daily grid's numbers).
    weekly = _run(sfd.backtest, log, dates[:1], horizon_days=60, grid_days=7)
    local_weekly = sf.backtest(local, dates[:1], horizon_days=60, grid_days=7, calibrate=False)
    pd.testing.assert_frame_equal(weekly.table, local_weekly.table, check_exact=False, rtol=1e-9)
    assert weekly.table["expected"].iloc[0] != point_sf["expected"]
    # The actuals are sums of the wins booked in each period, from the events.
    ev = s.events
    first = want.table.iloc[0]
    won = ev[ev["stage"] == "Won"]
    start = pd.Timestamp(dates[0], tz="UTC")
    inside = won[(won["time"] >= start) & (won["time"] < start + pd.Timedelta(days=60))]
    assert first["actual"] == pytest.approx(inside["amount"].sum(), rel=1e-9)


def test_partitioned_argument(client, data):
    """partitioned=True trusts the caller (no check, no shuffle); False shuffles without checking."""
    s, _, model = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", sfd.PartitioningWarning)
        trusted = _run(
            sfd.EventLog.from_frame,
            s.funnel,
            _pieces(s.events, "hash5"),
            **COLUMNS,
            partitioned=True,
        )
        shuffled = _run(
            sfd.EventLog.from_frame,
            s.funnel,
            _pieces(s.events, "rows"),
            **COLUMNS,
            partitioned=False,
        )
    assert not trusted.repartitioned and shuffled.repartitioned
    assert _run(sfd.fit, trusted) == _run(sfd.fit, shuffled) == model
    # Trusting a frame that is not partitioned by opportunity splits opportunities: the counts
    # show it (this is what the default check prevents).
    split = _run(
        sfd.EventLog.from_frame, s.funnel, _pieces(s.events, "rows"), **COLUMNS, partitioned=True
    )
    assert split.n_opportunities > model.core.n_opportunities


def _planted_actions(n: int = 1500, seed: int = 5) -> tuple[sf.Funnel, pd.DataFrame, pd.DataFrame]:
    """Stage A then B or Lost; a demo in the first 10 days raises the chance to advance, the
    strong rep emails more; a rare kind ("workshop") on a handful of deals only."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    events, acts = [], []
    for i in range(n):
        strong = i % 2 == 0
        start = t0 + pd.Timedelta(days=rng.uniform(0, 300))
        demo = rng.random() < (0.3 if strong else 0.6)
        advance = rng.random() < min(1.0, (0.5 if strong else 0.25) * (1.6 if demo else 1.0))
        days = 10 + rng.exponential(10)
        owner = "strong" if strong else "weak"
        events.append((i, "A", start, owner))
        if i % 7:  # some deals still open
            events.append((i, "B" if advance else "Lost", start + pd.Timedelta(days=days), owner))
        for k, p in (
            ("demo", 1.0 if demo else 0.0),
            ("email", 0.8 if strong else 0.2),
            ("call", 1),
        ):
            if rng.random() < p:
                acts.append((i, start + pd.Timedelta(days=rng.uniform(0, 9.9)), k))
        if i in (3, 4, 5):
            acts.append((i, start + pd.Timedelta(days=1), "workshop"))
    ev = pd.DataFrame(events, columns=["opportunity_id", "stage", "time", "owner"])
    ac = pd.DataFrame(acts, columns=["opportunity_id", "time", "kind"])
    ac.index = pd.Index([f"a{i}" for i in range(len(ac))])
    return sf.Funnel(["A", "B"], won="Won", lost="Lost"), ev, ac


def test_action_effectiveness_equal_local(client):
    funnel, ev, ac = _planted_actions()
    local_log = sf.EventLog.from_frame(funnel, ev, owner="owner")
    local_acts = sf.ActivityLog.from_frame(local_log, ac)
    coach = sf.coaching(sf.fit(local_log), local_log, local_acts)
    ids = ev["opportunity_id"].to_numpy()
    # Skewed event partitions (one with most deals, one empty); activities in random order.
    parts = [ev[ids % 10 < 8], ev.iloc[:0], ev[ids % 10 == 8], ev[ids % 10 == 9]]
    frame = dd.from_delayed([dask.delayed(p) for p in parts], meta=ev.iloc[:0])
    log = _run(sfd.EventLog.from_frame, funnel, frame, owner="owner")
    acts = dd.from_pandas(ac.sample(frac=1.0, random_state=1), npartitions=3)
    for landmark in (None, 10.0):
        want = coach.action_effectiveness(landmark_days=landmark).sort_index()
        got = _run(sfd.action_effectiveness, log, acts, landmark_days=landmark).sort_index()
        pd.testing.assert_frame_equal(got, want)
    assert ("A", "workshop") in want.index and want.loc[("A", "workshop"), "n_with"] <= 3
    # An activity of an opportunity that is not in the log: an error naming its row label.
    bad = pd.concat(
        [
            ac,
            pd.DataFrame(
                {"opportunity_id": [99999], "time": [ac["time"].iloc[0]], "kind": ["call"]},
                index=["stray"],
            ),
        ]
    )
    with pytest.raises(sf.DataError, match="row 'stray'"):
        _run(sfd.action_effectiveness, log, dd.from_pandas(bad, npartitions=2))
    lenient = _run(
        sfd.action_effectiveness, log, dd.from_pandas(bad, npartitions=2), validation="lenient"
    )
    assert list(lenient.attrs["rejected"].index) == ["stray"]
    pd.testing.assert_frame_equal(lenient.sort_index(), coach.action_effectiveness().sort_index())


@pytest.fixture(scope="module")
def hashed(client, data):
    """The sample in five partitions by opportunity."""
    s, _, _ = data
    return _run(sfd.EventLog.from_frame, s.funnel, _pieces(s.events, "hash5"), **COLUMNS)


@pytest.mark.parametrize("include_arrivals", [True, False])
def test_parameter_uncertainty_equal_local(client, data, hashed, include_arrivals):
    """Monte Carlo with posterior draws: bit-identical totals; the exact mixture over the draws:
    the local one on the same lattice, to rounding."""
    _, local, model = data
    kw = dict(
        parameter_uncertainty=True,
        parameter_draws=12,
        scenarios=2000,
        seed=3,
        include_arrivals=include_arrivals,
    )
    dfc = _run(sfd.forecast, model, hashed, *PERIOD, split_every=2, **kw)
    lfc = sf.forecast(model, local, *PERIOD, **kw, calibrate=False)
    np.testing.assert_array_equal(dfc.scenarios, lfc.scenarios)
    for a, b in [(dfc.exact, lfc.exact), (dfc.exact_pipeline, lfc.exact_pipeline)]:
        assert _aligned(a, b) < 1e-12
        assert a.mean == pytest.approx(b.mean, rel=1e-12)
        assert a.variance == pytest.approx(b.variance, rel=1e-12)
    for q in (0.05, 0.1, 0.5, 0.9, 0.95):
        assert dfc.quantile(q) == pytest.approx(lfc.quantile(q), rel=1e-9)
    # The draws widen the distribution (the point forecast's variance is the pipeline's alone).
    point = sf.forecast(
        model, local, *PERIOD, scenarios=0, include_arrivals=include_arrivals, calibrate=False
    )
    assert dfc.exact.variance > point.exact.variance
    # The mixture's mean is the average over the draws of realised + sum(amount x p_draw) (+ the
    # draw's arrivals), from the per-draw probabilities of the local core, added up in numpy.
    raw = sf._core.forecast(
        model.core,
        local.core,
        *sf.forecasting._day_bounds(*PERIOD, "UTC"),
        scenarios=0,
        parameter_draws=12,
        include_arrivals=include_arrivals,
        seed=3,
    )
    p = np.clip(np.nan_to_num(raw["p_win_period_draws"]), 0, 1)
    pipeline = (raw["amount"][:, None] * p).sum(axis=0)
    arrivals = [
        c["rate"] * float(np.sum(c["amount"] * c["weight"])) for c in raw["arrivals"]["total_draws"]
    ]
    want = raw["realised"] + float(np.mean(pipeline + np.asarray(arrivals)))
    assert dfc.exact.mean == pytest.approx(want, rel=1e-9)
    rates = [c["rate"] for c in raw["arrivals"]["total_draws"]]
    assert len(rates) == 12 and (min(rates) > 0 if include_arrivals else max(rates) == 0)
    assert len(set(rates)) == (12 if include_arrivals else 1)  # each draw its own rates


@pytest.mark.parametrize(
    "probabilities",
    [
        "weighted_pipeline",
        "closed_only",
        {"Prospecting": 0.1, "Qualification": 0.2, "Proposal": 0.4, "Negotiation": 0.6},
    ],
)
def test_baselines_equal_local(client, data, hashed, probabilities):
    _, local, model = data
    kw = dict(probabilities=probabilities, scenarios=1500, seed=5)
    dfc = _run(sfd.forecast, model, hashed, *PERIOD, **kw)
    lfc = sf.forecast(model, local, *PERIOD, **kw, calibrate=False)
    np.testing.assert_array_equal(dfc.scenarios, lfc.scenarios)
    assert _aligned(dfc.exact, lfc.exact) < 1e-12
    assert dfc.exact.step == pytest.approx(lfc.exact.step, rel=1e-12)
    assert dfc.exact_arrivals is None and not dfc.include_arrivals
    got = dfc.deals.compute().sort_values("opportunity_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, lfc.deals.sort_values("opportunity_id", ignore_index=True))
    if isinstance(probabilities, dict):  # realised + sum(amount x ladder[stage]), in pandas
        deals = lfc.deals
        expected = lfc.realised + float((deals["amount"] * deals["stage"].map(probabilities)).sum())
        assert dfc.expected == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="ladder has no probability"):
        sfd.forecast(model, hashed, *PERIOD, probabilities={"Prospecting": 0.1})


def test_by_and_win_dates_equal_local(client, data):
    """Forecast.by per owner and per attribute (with missing values), both methods, and the win
    date distribution of deals in different partitions: equal to the local ones."""
    s, _, model = data
    events = s.events.copy()
    ids = events["opportunity_id"].to_numpy()
    segment = np.array(["smb", "mid", "ent"], dtype=object)[ids % 3]
    events["segment"] = np.where(ids % 7 == 0, None, segment)
    cols = dict(COLUMNS, attributes=["segment"])
    local = sf.EventLog.from_frame(s.funnel, events, **cols)
    log = _run(sfd.EventLog.from_frame, s.funnel, _pieces(events, "skewed"), **cols)
    for method in ("exact", "monte_carlo"):
        dfc = _run(sfd.forecast, model, log, *PERIOD, method=method, scenarios=2000, seed=1)
        lfc = sf.forecast(
            model, local, *PERIOD, method=method, scenarios=2000, seed=1, calibrate=False
        )
        for column in ("owner", "segment"):
            got, want = _run(dfc.by, column, (0.05, 0.5, 0.95)), lfc.by(column, (0.05, 0.5, 0.95))
            if method == "monte_carlo":
                pd.testing.assert_frame_equal(got, want)
            else:
                pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)
            # Independently: the deals and expected revenue per group, from the deals in pandas.
            deals = lfc.deals.assign(
                segment=lambda f: np.where(
                    f["opportunity_id"] % 7 == 0,
                    "(missing)",
                    np.array(["smb", "mid", "ent"], dtype=object)[f["opportunity_id"] % 3],
                )
            )
            groups = deals.groupby(column)
            assert got["deals"].to_dict() == groups.size().to_dict()
            if method == "exact":
                pd.testing.assert_series_equal(
                    got["expected"],
                    groups.apply(lambda g: float((g["amount"] * g["p_win_period"]).sum())),
                    check_names=False,
                    rtol=1e-9,
                )
        assert "(missing)" in got.index
        with pytest.raises(KeyError, match="neither 'owner' nor an attribute"):
            dfc.by("region")
    # A deal of the big partition and one of a small one.
    open_ids = lfc.deals["opportunity_id"].to_numpy()
    cut = np.unique(ids)[int(0.9 * len(np.unique(ids)))]
    for deal in (open_ids[open_ids < cut][0], open_ids[open_ids >= cut][0]):
        pd.testing.assert_series_equal(
            _run(dfc.win_date_distribution, deal), lfc.win_date_distribution(deal)
        )
    with pytest.raises(sf.UnknownOpportunityError, match="is not open"):
        _run(dfc.win_date_distribution, -1)


def _compiled_activity_log() -> object:
    s = sf.datasets.sample()
    log = sf.EventLog.from_frame(s.funnel, s.events.iloc[:10])
    acts = pd.DataFrame({"opportunity_id": [1], "time": [s.events["time"].iloc[0]], "kind": ["x"]})
    return sf.ActivityLog.from_frame(log, acts).core  # the compiled object: no pickling


def _python_activity_log() -> sf.ActivityLog:
    s = sf.datasets.sample()
    log = sf.EventLog.from_frame(s.funnel, s.events.iloc[:10])
    acts = pd.DataFrame(
        {"opportunity_id": [1, 1], "time": s.events["time"].iloc[[1, 0]], "kind": ["b", "a"]}
    )
    return sf.ActivityLog.from_frame(log, acts)


def _activity_kinds(acts: sf.ActivityLog) -> list[str]:
    return list(acts.to_frame()["kind"])


def test_results_travel_between_workers_or_fail_fast(client):
    """A task's result needed on another worker: an ActivityLog travels (it pickles); a result
    that cannot be pickled is an error naming it within seconds, not a hang (Dask's workers wait
    forever for a dependency they cannot receive)."""
    first, second = sorted(client.scheduler_info()["workers"])

    def on(worker, fn, *args):
        return client.submit(fn, *args, workers=[worker], allow_other_workers=False, pure=False)

    made = on(first, sfd._Checked(_python_activity_log))
    assert on(second, _activity_kinds, made).result(timeout=TIMEOUT) == ["a", "b"]
    bad = on(first, sfd._Checked(_compiled_activity_log))
    use = on(second, len, bad)
    started = __import__("time").monotonic()
    with pytest.raises(TypeError) as info:
        use.result(timeout=30)
    assert __import__("time").monotonic() - started < 30
    msg = str(info.value)
    assert "_compiled_activity_log cannot be sent between Dask processes" in msg
    assert "smartfunnel._core.ActivityLog does not pickle" in msg


@pytest.mark.parametrize("draws", [0, 4])
def test_far_period_on_the_bounded_lattice_equals_local(client, data, hashed, draws):
    """Two years after as_of the deals are so unlikely that 16 sd of the pipeline are less than
    its largest amount: the lattice step is the largest uncertain amount / cells (issue 13, item
    7), on Dask as locally (the partitions' largest amounts reduce by max)."""
    _, local, model = data
    kw = dict(scenarios=0, parameter_uncertainty=draws > 0, parameter_draws=max(draws, 1), seed=5)
    period = ("2027-04-01", "2027-06-30")
    dfc = _run(sfd.forecast, model, hashed, *period, split_every=2, **kw)
    lfc = sf.forecast(model, local, *period, **kw, calibrate=False)
    raw = lfc._raw
    floor = sf._core.largest_uncertain_amount(raw["amount"], np.nan_to_num(raw["p_win_period"]))
    sd = np.sqrt(lfc.exact_pipeline.variance)
    assert 2 * 8 * sd < floor  # the floor is what sets the pipeline's step here
    assert lfc.exact_pipeline.step == pytest.approx(floor / 4096, rel=1e-15)
    for a, b in [(dfc.exact, lfc.exact), (dfc.exact_pipeline, lfc.exact_pipeline)]:
        assert a.step == pytest.approx(b.step, rel=1e-12)
        # With sd far below a step, what the windows of mean +- 8 sd cut depends on where the
        # partial sums are cut: the two agree up to the mass each reports as truncated (~3e-9).
        assert _aligned(a, b) < 1e-12 + a.truncated_mass + b.truncated_mass
        assert a.mean == pytest.approx(b.mean, rel=1e-12)
