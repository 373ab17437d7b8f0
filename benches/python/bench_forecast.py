"""Side-by-side: smartfunnel's revenue distributions against the numpy code an analyst would write.

Same deals, same run. Monte Carlo: numpy draws a (scenarios x deals) block of uniforms in chunks
and sums amount * (u < p); smartfunnel uses counter-based Philox streams and integer cents.
Exact: numpy convolves the per-deal two-point distributions one by one on a lattice
(np.convolve), smartfunnel by divide-and-conquer FFT convolution.

    .venv/bin/python benches/python/bench_forecast.py [--deals 100000] [--scenarios 10000]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_of  # type: ignore[import-not-found]

from smartfunnel import _core


def numpy_monte_carlo(
    amount: np.ndarray, p: np.ndarray, scenarios: int, seed: int, chunk: int = 250
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    totals = np.empty(scenarios)
    for s in range(0, scenarios, chunk):
        k = min(chunk, scenarios - s)
        u = rng.random((k, len(p)))
        totals[s : s + k] = (u < p) @ amount
    return totals


def numpy_exact(amount: np.ndarray, p: np.ndarray, step: float) -> np.ndarray:
    pmf = np.ones(1)
    for a, q in zip(amount, p):
        k = round(a / step)
        leaf = np.zeros(k + 1)
        leaf[0] += 1 - q
        leaf[k] += q
        pmf = np.convolve(pmf, leaf)
    return pmf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--scenarios", type=int, default=10_000)
    ap.add_argument(
        "--exact-deals", type=int, default=2_000, help="deals for the np.convolve comparison"
    )
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    n = args.deals
    amount = np.round(rng.lognormal(np.log(20_000), 0.9, n), 2)
    p = rng.random(n) * 0.6
    cents = np.round(amount * 100).astype(np.int64)
    keys = np.array([_core.opportunity_key(f"opp-{i}") for i in range(n)], dtype=np.uint64)

    mc_scen = min(args.scenarios, 1000)  # numpy: a smaller run, reported per deal-scenario
    t_np = best_of(lambda: numpy_monte_carlo(amount, p, mc_scen, 0), 1)
    t_sf = best_of(lambda: _core.monte_carlo_cents(cents, p, keys, args.scenarios, 0, 1), 1)
    t_sf2 = best_of(lambda: _core.monte_carlo_cents(cents, p, keys, args.scenarios, 0, 2), 1)
    rate_np = n * mc_scen / t_np
    rate_sf = n * args.scenarios / t_sf
    print(f"Monte Carlo, {n:,} deals")
    print(f"  numpy ({mc_scen:,} scenarios):             {rate_np / 1e6:8.0f} M deal-scenarios/s")
    print(
        f"  smartfunnel, 1 thread ({args.scenarios:,}): {rate_sf / 1e6:8.0f} M deal-scenarios/s  ratio {rate_sf / rate_np:4.1f}x"
    )
    print(
        f"  smartfunnel, 2 threads:                {n * args.scenarios / t_sf2 / 1e6:8.0f} M deal-scenarios/s"
    )

    t_exact = best_of(lambda: _core.exact_distribution(amount, p))
    print(f"Exact distribution, {n:,} deals: smartfunnel {t_exact * 1e3:.0f} ms")
    m = args.exact_deals
    d = _core.exact_distribution(amount[:m], p[:m])
    t_np_exact = best_of(lambda: numpy_exact(amount[:m], p[:m], d["step"]), 1)
    t_sf_exact = best_of(lambda: _core.exact_distribution(amount[:m], p[:m]))
    print(
        f"Exact distribution, {m:,} deals, same lattice step: numpy np.convolve {t_np_exact * 1e3:.0f} ms, "
        f"smartfunnel {t_sf_exact * 1e3:.1f} ms  ratio {t_np_exact / t_sf_exact:.0f}x"
    )


if __name__ == "__main__":
    main()
