"""Side-by-side: smartfunnel's fit against the pandas code an analyst would write.

Same data, same run. The pandas version computes what an analyst usually does by hand: sort the
history, shift to find each stay's next stage, collapse repeated stages, count transitions per stage
and take the median time in stage (closed stays only: it ignores censoring, and still does less
than smartfunnel, which adds Kaplan-Meier/Aalen-Johansen, priors, the chain and intervals).

    .venv/bin/python benches/python/bench_fit.py [--events 1000000] [--repeat 3] [--columns ...]

``--columns`` chooses how the stage (and owner) columns come: ``categorical`` (the simulated
frame), ``str`` (pandas 3's default string dtype, pyarrow-backed: what ``pandas.read_csv`` gives
for text), ``python`` (the python-backed string dtype) and ``object`` (numpy object arrays of str);
each against the pandas code on that same frame, in the same run. Default: all four.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd
from _timing import best_of  # type: ignore[import-not-found]

import smartfunnel as sf


def pandas_fit(events: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
    df = events[["opportunity_id", "stage", "time"]].sort_values(
        ["opportunity_id", "time"], kind="stable"
    )
    stage = df["stage"].astype(str)
    same_opp = df["opportunity_id"].eq(df["opportunity_id"].shift())
    new_stay = ~(same_opp & stage.eq(stage.shift()))
    stays = df[new_stay.to_numpy()].assign(stage=stage[new_stay.to_numpy()])
    nxt_same = stays["opportunity_id"].eq(stays["opportunity_id"].shift(-1))
    stays = stays.assign(
        next_stage=stays["stage"].shift(-1).where(nxt_same),
        next_time=stays["time"].shift(-1).where(nxt_same),
    )
    open_stages = set(sf.datasets.SAMPLE_STAGES)
    stays = stays[stays["stage"].isin(open_stages)]
    closed = stays.dropna(subset=["next_stage"])
    counts = closed.groupby(["stage", "next_stage"]).size().unstack(fill_value=0)
    rates = counts.div(counts.sum(axis=1), axis=0)
    days = (closed["next_time"] - closed["time"]).dt.total_seconds() // 86400
    median = days.groupby(closed["stage"]).median()
    return rates, median


def smartfunnel_fit(
    events: pd.DataFrame, funnel: sf.Funnel, as_of: pd.Timestamp, owner: str | None = None
) -> sf.FunnelModel:
    log = sf.EventLog.from_frame(
        funnel, events, opportunity="opportunity_id", stage="stage", time="time", owner=owner
    )
    model = sf.fit(log, as_of=as_of)
    model.transition_matrix()
    model.time_in_stage()
    return model


TEXT_DTYPES: dict[str, Any] = {
    "str": "str",  # pandas 3: pyarrow-backed when pyarrow is installed (read_csv gives this)
    "python": pd.StringDtype("python", na_value=np.nan),
    "object": object,
}


def with_columns(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The frame with its stage and owner columns as `kind` (categorical: as simulated)."""
    if kind == "categorical":
        return events
    dtype = TEXT_DTYPES[kind]
    return events.assign(
        stage=events["stage"].astype(str).astype(dtype),
        owner=events["owner"].astype(str).astype(dtype),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--columns",
        nargs="+",
        default=["categorical", "str", "python", "object"],
        choices=["categorical", *TEXT_DTYPES],
    )
    args = ap.parse_args()
    sim = sf.datasets.simulate(n_opportunities=int(args.events / 2.9), seed=1)
    arrival = sim.events.sample(frac=1.0, random_state=0).reset_index(drop=True)  # arrival order
    n = len(arrival)
    print(f"events: {n:,} ({arrival['opportunity_id'].nunique():,} opportunities), unsorted input")
    for kind in args.columns:
        events = with_columns(arrival, kind)
        t_pd = best_of(lambda ev=events: pandas_fit(ev, sim.as_of), args.repeat)
        t_sf = best_of(lambda ev=events: smartfunnel_fit(ev, sim.funnel, sim.as_of), args.repeat)
        t_own = best_of(
            lambda ev=events: smartfunnel_fit(ev, sim.funnel, sim.as_of, owner="owner"),
            args.repeat,
        )
        print(f"[{kind}: stage {events['stage'].dtype}, owner {events['owner'].dtype}]")
        print(f"  pandas groupby/shift (closed stays only):  {t_pd * 1e3:9.1f} ms")
        print(
            f"  smartfunnel from the frame (ingest + fit): {t_sf * 1e3:9.1f} ms   "
            f"ratio {t_pd / t_sf:5.1f}x"
        )
        print(
            f"  the same with the owner column too:        {t_own * 1e3:9.1f} ms   "
            f"ratio {t_pd / t_own:5.1f}x"
        )
        assert np.isfinite(t_sf)
    log = sf.EventLog.from_frame(sim.funnel, arrival)
    t_fit = best_of(lambda: sf.fit(log, as_of=sim.as_of), args.repeat)
    print(f"smartfunnel fit from an EventLog:            {t_fit * 1e3:9.1f} ms")
    print(
        f"EventLog memory: {log.core.event_bytes / n:.1f} bytes/event in event columns, "
        f"{log.core.opportunity_bytes / n:.1f} bytes/event in per-opportunity columns"
    )


if __name__ == "__main__":
    main()
