"""Side-by-side: smartfunnel's fit against the pandas code an analyst would write.

Same data, same run. The pandas version computes what an analyst usually does by hand: sort the
history, shift to find each stay's next stage, collapse repeated stages, count transitions per stage
and take the median time in stage (closed stays only: it ignores censoring, and still does less
than smartfunnel, which adds Kaplan-Meier/Aalen-Johansen, priors, the chain and intervals).

    .venv/bin/python benches/python/bench_fit.py [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse

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


def smartfunnel_fit(events: pd.DataFrame, funnel: sf.Funnel, as_of: pd.Timestamp) -> sf.FunnelModel:
    log = sf.EventLog.from_frame(
        funnel, events, opportunity="opportunity_id", stage="stage", time="time"
    )
    model = sf.fit(log, as_of=as_of)
    model.transition_matrix()
    model.time_in_stage()
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sim = sf.datasets.simulate(n_opportunities=int(args.events / 2.9), seed=1)
    events = sim.events.sample(frac=1.0, random_state=0).reset_index(drop=True)  # arrival order
    n = len(events)
    t_pd = best_of(lambda: pandas_fit(events, sim.as_of), args.repeat)
    t_sf = best_of(lambda: smartfunnel_fit(events, sim.funnel, sim.as_of), args.repeat)
    log = sf.EventLog.from_frame(sim.funnel, events)
    t_fit = best_of(lambda: sf.fit(log, as_of=sim.as_of), args.repeat)
    print(f"events: {n:,} ({log.n_opportunities:,} opportunities), unsorted input")
    print(f"pandas groupby/shift (closed stays only): {t_pd * 1e3:9.1f} ms")
    print(
        f"smartfunnel from the frame (ingest + fit): {t_sf * 1e3:9.1f} ms   ratio {t_pd / t_sf:5.1f}x"
    )
    print(
        f"smartfunnel fit from an EventLog:          {t_fit * 1e3:9.1f} ms   ratio {t_pd / t_fit:5.1f}x"
    )
    print(
        f"EventLog memory: {log.core.event_bytes / n:.1f} bytes/event in event columns, "
        f"{log.core.opportunity_bytes / n:.1f} bytes/event in per-opportunity columns"
    )
    assert np.isfinite(t_sf)


if __name__ == "__main__":
    main()
