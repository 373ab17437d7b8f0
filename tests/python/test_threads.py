"""The bindings release the GIL in long calls: Python threads forecast in parallel, on one shared
(immutable) model, with the results of sequential calls."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import smartfunnel as sf

SCENARIOS = 300_000  # about half a second of Monte Carlo on the sample


@pytest.fixture(scope="module")
def sample():
    s = sf.datasets.sample()
    funnel = sf.Funnel(
        ["Prospecting", "Qualification", "Proposal", "Negotiation"], won="Won", lost="Lost"
    )
    log = sf.EventLog.from_frame(
        funnel,
        s.events,
        opportunity="opportunity_id",
        stage="stage",
        time="time",
        amount="amount",
        owner="owner",
    )
    return sf.fit(log, draws=50), log


def long_forecast(model, log, seed=0):
    return sf.forecast(
        model,
        log,
        start="2025-07-01",
        end="2025-09-30",
        method="monte_carlo",
        scenarios=SCENARIOS,
        seed=seed,
    )


def test_another_thread_runs_python_while_a_forecast_runs(sample):
    # With a switch interval far longer than the test, CPython hands the GIL to another thread only
    # when its holder releases it explicitly. The main thread counts loop turns while the worker is
    # inside forecast(): if the binding kept the GIL, the main thread could not run at all until
    # the call returned, and would count (almost) nothing. No timing threshold, so no flakiness.
    model, log = sample
    started, done = threading.Event(), threading.Event()
    result = {}

    def worker():
        started.set()
        result["fc"] = long_forecast(model, log)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        turns = 0
        while not done.wait(0.0005):  # releases the GIL while waiting, so the worker can finish
            turns += 1
        t.join()
    finally:
        sys.setswitchinterval(old)
    assert turns >= 20, (
        f"the main thread ran only {turns} turns during a forecast: is the GIL released?"
    )
    assert result["fc"].quantiles([0.5]) is not None


def test_two_threads_forecast_in_parallel_with_the_sequential_results(sample):
    model, log = sample
    sequential = [long_forecast(model, log, seed) for seed in (1, 2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = list(pool.map(lambda seed: long_forecast(model, log, seed), (1, 2)))
    for a, b in zip(sequential, parallel):
        assert list(a.quantiles([0.1, 0.5, 0.9])) == list(b.quantiles([0.1, 0.5, 0.9]))
        assert a.probability_at_least(1_000_000) == b.probability_at_least(1_000_000)
