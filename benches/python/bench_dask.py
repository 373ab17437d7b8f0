"""smartfunnel.dask against one process: time and peak memory of build + fit + forecast.

Simulated events (written once as Parquet files, one file per block of whole opportunities) are
read, turned into event logs, fitted and forecast (exact and Monte Carlo) twice: by one Python
process with the local API, and on a distributed.LocalCluster of worker processes with
smartfunnel.dask. The two models must be equal and the Monte Carlo totals identical (checked).
Peak memory is each process's maximum resident set size (getrusage).

    .venv/bin/python benches/python/bench_dask.py [--events 20000000] [--workers 2]
        [--files 16] [--data /tmp/smartfunnel-bench-dask] [--scenarios 1000]

Not run by the tests; the measured table is in docs/guide/dask.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

import smartfunnel as sf

COLUMNS = dict(amount="amount", owner="owner", created="created")
PERIOD = ("2025-07-01", "2025-09-30")
EVENTS_PER_OPPORTUNITY = 3.1  # the simulator's default funnel, measured


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def generate(folder: pathlib.Path, events: int, files: int) -> None:
    """Simulated events in `files` Parquet files of whole opportunities (disjoint id ranges)."""
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()) == {"events": events, "files": files}:
        return
    (folder / "events").mkdir(parents=True, exist_ok=True)
    for old in (folder / "events").glob("*.parquet"):
        old.unlink()
    per_file = int(events / EVENTS_PER_OPPORTUNITY / files)
    total = 0
    for k in range(files):
        sim = sf.datasets.simulate(n_opportunities=per_file, seed=1000 + k)
        ev = sim.events.drop(columns="close_date")
        ev["opportunity_id"] += k * per_file
        ev["stage"] = ev["stage"].astype(str)
        ev["owner"] = ev["owner"].astype(str)
        ev.to_parquet(folder / "events" / f"part-{k:03d}.parquet", index=False)
        total += len(ev)
        print(f"  file {k + 1}/{files}: {total:,} events", flush=True)
    done.write_text(json.dumps({"events": events, "files": files}))


def run_local(folder: pathlib.Path, scenarios: int, out: pathlib.Path) -> dict[str, float]:
    """One process: read, build, fit, forecast. Saves the model and Monte Carlo totals."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    frame = pd.read_parquet(folder / "events")
    timings["read"] = time.perf_counter() - t
    funnel = sf.Funnel(sf.datasets.SAMPLE_STAGES, won="Won", lost="Lost")
    t = time.perf_counter()
    log = sf.EventLog.from_frame(funnel, frame, **COLUMNS)
    timings["build"] = time.perf_counter() - t
    del frame
    t = time.perf_counter()
    model = sf.fit(log)
    timings["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    fc = sf.forecast(model, log, *PERIOD, method="monte_carlo", scenarios=scenarios)
    timings["forecast"] = time.perf_counter() - t
    model.save(out / "local-model.sfa")
    np.save(out / "local-mc.npy", fc.scenarios)
    timings["peak_rss_mb"] = peak_rss_mb()
    timings["events"] = log.n_events
    return timings


def run_dask(
    folder: pathlib.Path, workers: int, scenarios: int, out: pathlib.Path
) -> dict[str, Any]:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import smartfunnel.dask as sfd

    cluster = LocalCluster(
        n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None
    )
    client = Client(cluster)
    try:
        timings: dict[str, Any] = {}
        funnel = sf.Funnel(sf.datasets.SAMPLE_STAGES, won="Won", lost="Lost")
        t = time.perf_counter()
        frame = dd.read_parquet(str(folder / "events"))
        log = sfd.EventLog.from_frame(funnel, frame, **COLUMNS, partitioned=True)
        timings["read+build"] = time.perf_counter() - t
        t = time.perf_counter()
        model = sfd.fit(log)
        timings["fit"] = time.perf_counter() - t
        t = time.perf_counter()
        fc = sfd.forecast(model, log, *PERIOD, method="monte_carlo", scenarios=scenarios)
        timings["forecast"] = time.perf_counter() - t
        rss = client.run(peak_rss_mb)
        timings["worker_peak_rss_mb"] = sorted(rss.values())
        timings["client_peak_rss_mb"] = peak_rss_mb()
        timings["events"] = log.n_events
        local = sf.load(out / "local-model.sfa")
        timings["model_equal"] = bool(model == local)
        timings["mc_identical"] = bool(np.array_equal(fc.scenarios, np.load(out / "local-mc.npy")))
        return timings
    finally:
        client.close()
        cluster.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--data", default="/tmp/smartfunnel-bench-dask")
    ap.add_argument("--mode", choices=["all", "local", "dask"], default="all")
    args = ap.parse_args()
    folder = pathlib.Path(args.data)
    if args.mode == "all":
        print(f"generating {args.events:,} events in {folder} (once)", flush=True)
        generate(folder, args.events, args.files)
        # Each mode in a fresh process, so peak memory is its own.
        results = {}
        for mode in ("local", "dask"):
            cmd = [sys.executable, __file__, "--mode", mode, "--data", str(folder)]
            cmd += ["--workers", str(args.workers), "--scenarios", str(args.scenarios)]
            run = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
            results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
        loc, dsk = results["local"], results["dask"]
        print(json.dumps(results, indent=1))
        print()
        print(f"| | one process | {args.workers} worker processes |")
        print("|---|---:|---:|")
        print(f"| events | {loc['events']:,} | {dsk['events']:,} |")
        print(
            f"| read + build logs (s) | {loc['read'] + loc['build']:.1f} | {dsk['read+build']:.1f} |"
        )
        print(f"| fit (s) | {loc['fit']:.2f} | {dsk['fit']:.2f} |")
        print(f"| forecast, Monte Carlo (s) | {loc['forecast']:.2f} | {dsk['forecast']:.2f} |")
        workers = ", ".join(f"{x:,.0f}" for x in dsk["worker_peak_rss_mb"])
        print(f"| peak RSS per process (MB) | {loc['peak_rss_mb']:,.0f} | {workers} |")
        print(
            f"| model equal / Monte Carlo identical | | {dsk['model_equal']} / {dsk['mc_identical']} |"
        )
        return
    out = folder
    if args.mode == "local":
        result: dict[str, Any] = dict(run_local(folder, args.scenarios, out))
    else:
        result = run_dask(folder, args.workers, args.scenarios, out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
