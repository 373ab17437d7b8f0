"""imports.read of a long CSV (one row per stage change) against the pandas code an analyst would
write for the same file: ``pandas.read_csv`` then ``EventLog.from_frame``, same file, same run.
Each measurement runs in a fresh process, so its peak memory (ru_maxrss) is its own.

    .venv/bin/python benches/python/bench_imports.py [--rows 1000000 5000000] [--dir /tmp]

The file has 4 rows per opportunity (three open stages, then Won or Lost, in time order), 40
owners, amounts with cents, ISO 8601 times; 1% of the rows carry an amount that is not a number
("n/a"), reported by imports.read.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd

STAGES = ["Prospecting", "Qualification", "Proposal"]


def write_csv(path: pathlib.Path, rows: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    n_opp = rows // 4
    step = np.tile(np.arange(4), n_opp)
    opp = np.repeat(np.arange(n_opp), 4)
    start = np.repeat(rng.integers(0, 700 * 86_400, n_opp), 4)
    gaps = rng.integers(3_600, 20 * 86_400, rows).reshape(n_opp, 4)
    gaps[:, 0] = 0
    times = np.datetime64("2023-01-01T00:00:00") + (start + gaps.cumsum(axis=1).ravel()).astype(
        "timedelta64[s]"
    )
    outcome = np.where(rng.random(rows) < 0.3, "Won", "Lost")
    stage = np.where(step == 3, outcome, np.array([*STAGES, "Won"])[np.minimum(step, 3)])
    amount = np.round(rng.lognormal(9, 1, rows), 2).astype(str)
    amount[rng.random(rows) < 0.01] = "n/a"
    frame = pd.DataFrame(
        {
            "opportunity_id": np.char.add("OPP-", opp.astype(str)),
            "stage": stage,
            "time": np.datetime_as_string(times, unit="s"),
            "amount": amount,
            "owner": np.char.add("rep", (opp % 40).astype(str)),
        }
    )
    frame.to_csv(path, index=False)


CHILD = r"""
import json, resource, sys, time
import pandas as pd
import smartfunnel as sf
path, how = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if how == "imports.read":
    funnel = sf.Funnel(["Prospecting", "Qualification", "Proposal"], won="Won", lost="Lost")
    imp = sf.imports.read(path, funnel=funnel)
    events = imp.log.n_events
else:
    frame = pd.read_csv(path)
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").fillna(0.0)
    frame["time"] = pd.to_datetime(frame["time"], format="ISO8601", utc=True)
    funnel = sf.Funnel(["Prospecting", "Qualification", "Proposal"], won="Won", lost="Lost")
    log = sf.EventLog.from_frame(funnel, frame, amount="amount", owner="owner")
    events = log.n_events
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "events": events}))
"""


def measure(path: pathlib.Path, how: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), how], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()
    print("| rows | file | imports.read | peak | read_csv + from_frame | peak | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        path = pathlib.Path(args.dir) / f"smartfunnel-bench-long-{rows}.csv"
        if not path.exists():
            write_csv(path, rows)
        ours, theirs = measure(path, "imports.read"), measure(path, "pandas")
        assert ours["events"] == theirs["events"], (ours, theirs)
        size = path.stat().st_size / 1e6
        print(
            f"| {rows:,} | {size:,.0f} MB | {ours['seconds']:.2f} s | {ours['peak_mb']:,.0f} MB "
            f"| {theirs['seconds']:.2f} s | {theirs['peak_mb']:,.0f} MB "
            f"| {ours['seconds'] / theirs['seconds']:.2f}x |"
        )


if __name__ == "__main__":
    main()
