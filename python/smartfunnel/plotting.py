"""Plots (matplotlib, imported lazily). Each takes ``ax=None`` and returns the axes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .backtesting import Backtest
    from .coaching import Coaching
    from .forecasting import Forecast
    from .model import FunnelModel


def _axes(ax: Any) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4))[1]


def plot_funnel(model: FunnelModel, ax: Any = None) -> Axes:
    """P(win) from each stage with its interval; stages no deal was seen in are left out (their
    P(win) is the prior's, not an estimate)."""
    ax = _axes(ax)
    s = model.stage_summary()
    s = s[s["n"] > 0] if (s["n"] > 0).any() else s
    prior_only = (s["exits"] == 0).to_numpy()  # no stay ended: the prior's guess, greyed
    y = np.arange(len(s))[::-1]
    ax.barh(
        y,
        s["p_win"],
        color=np.where(prior_only, "#bcccdc", "#4C72B0"),
        label="P(win) from the stage",
    )
    ax.errorbar(
        s["p_win"],
        y,
        xerr=[s["p_win"] - s["p_win_low"], s["p_win_high"] - s["p_win"]],
        fmt="none",
        color="black",
    )
    ax.set_yticks(y, [f"{n} (no exits)" if p else str(n) for n, p in zip(s.index, prior_only)])
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.set_title(f"Win probability by stage (as of {model.as_of:%Y-%m-%d})")
    ax.legend(loc="lower right")
    return ax


def plot_time_in_stage(model: FunnelModel, ax: Any = None) -> Axes:
    """Kaplan-Meier curves: the share of stays still in each stage after t days."""
    ax = _axes(ax)
    tick_days = model.core.options.tick_seconds / 86400.0
    for i, stage in enumerate(model.funnel.stages):
        durations, _, survival, _ = model.core.curve(0, i)
        t = np.concatenate([[0.0], np.asarray(durations) * tick_days])
        sv = np.concatenate([[1.0], np.asarray(survival)])
        ax.step(t, sv, where="post", label=stage)
    ax.set_xlabel("days in stage")
    ax.set_ylabel("still in the stage")
    ax.set_ylim(0, 1.02)
    ax.set_title("Time in stage (Kaplan-Meier)")
    ax.legend()
    return ax


def plot_forecast(forecast: Forecast, target: float | None = None, ax: Any = None) -> Axes:
    """The distribution of revenue won in the period, with P10 / P50 / P90 (and a target)."""
    ax = _axes(ax)
    d = forecast.exact
    values = d.values()
    cdf = d.cdf / d.cdf[-1]
    ax.plot(values, 1.0 - cdf + d.pmf / d.cdf[-1], color="#4C72B0", label="P(revenue >= x)")
    # P10 to the left of its line, P90 to the right, P50 above both: readable when they are close
    for q, ha, y in ((0.1, "right", 1.01), (0.5, "center", 1.08), (0.9, "left", 1.01)):
        ax.axvline(forecast.quantile(q), color="grey", linestyle="--", linewidth=1)
        ax.text(forecast.quantile(q), y, f"P{round(q * 100)}", ha=ha, va="bottom", fontsize=8)
    if target is not None:
        ax.axvline(
            target,
            color="#C44E52",
            label=f"target: P = {forecast.probability_at_least(target):.0%}",
        )
    # The lattice spans +-8 sd: show where the probability is (and the target).
    lo, hi = forecast.quantile(0.0005), forecast.quantile(0.9995)
    if target is not None:
        lo, hi = min(lo, target), max(hi, target)
    pad = 0.05 * (hi - lo) if hi > lo else max(1.0, 0.05 * abs(hi))
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel("revenue won in the period")
    ax.set_ylim(0, 1.18)
    ax.set_title(f"Forecast {forecast.start:%Y-%m-%d} .. {forecast.end:%Y-%m-%d}")
    ax.legend(loc="lower left")
    return ax


def plot_scorecard(coaching: Coaching, ax: Any = None) -> Axes:
    """Each rep's advance rate per stage against the team's (heat map; the team in the title).
    Stages no deal was seen in are left out (their rates are the prior's)."""
    ax = _axes(ax)
    sc = coaching.scorecard()
    n = coaching.model.stage_summary()["n"]
    stages = [s for s in coaching.model.funnel.stages if int(n[s]) > 0]  # no deal seen: prior only
    stages = stages or list(coaching.model.funnel.stages)
    table = sc["advance"].unstack("stage")[stages]
    team = sc["team_advance"].unstack("stage")[stages].iloc[0]
    diff = table - team
    image = ax.imshow(diff.to_numpy(), cmap="RdBu", vmin=-0.3, vmax=0.3, aspect="auto")
    ax.set_xticks(np.arange(diff.shape[1]), list(diff.columns))
    ax.set_yticks(np.arange(diff.shape[0]), list(diff.index))
    # Long stage names (Salesforce's "Id. Decision Makers", "Proposal/Price Quote") overlap when
    # set side by side: turn them upright once the names would not fit under their columns.
    width_chars = ax.figure.get_figwidth() * ax.get_position().width * 72 / 6.5
    if sum(len(str(c)) + 2 for c in diff.columns) > width_chars:
        ax.tick_params(axis="x", labelrotation=90)
    for (i, j), v in np.ndenumerate(table.to_numpy()):
        flag = "*" if sc["below_team"].unstack("stage")[list(diff.columns)].to_numpy()[i, j] else ""
        ax.text(j, i, f"{v:.0%}{flag}", ha="center", va="center", fontsize=8)
    # The label under the bar, horizontal: along a one-rep bar it was longer than the bar and cut
    bar = ax.figure.colorbar(image, ax=ax)
    bar.ax.set_xlabel("rep −\nteam", fontsize=8)
    ax.set_title("Advance rate by rep and stage (* below the team's, interval excluded)")
    return ax


def plot_backtest(backtest: Backtest, method: str = "smartfunnel", ax: Any = None) -> Axes:
    """Each replayed period: the method's P10-P90 band and P50 against what was actually won, and
    the other methods' expected revenue."""
    ax = _axes(ax)
    t = backtest.table
    if method not in set(t["method"]):
        raise ValueError(f"method {method!r} is not in the backtest ({sorted(set(t['method']))})")
    own = t[t["method"] == method].sort_values("as_of")
    x = np.arange(len(own))
    ax.vlines(
        x,
        own["P10"],
        own["P90"],
        color="#4C72B0",
        linewidth=6,
        alpha=0.45,
        label=f"{method} P10-P90",
    )
    ax.plot(x, own["P50"], "_", color="#4C72B0", markersize=16, label=f"{method} P50")
    markers = iter("sD^v")
    for other, g in t[t["method"] != method].groupby("method", sort=False):
        g = g.set_index("as_of").loc[own["as_of"]]
        ax.plot(
            x,
            g["expected"],
            linestyle="none",
            marker=next(markers, "."),
            markersize=4,
            color="grey",
            alpha=0.8,
            label=f"{other} expected",
        )
    ax.plot(x, own["actual"], "o", color="#C44E52", label="actually won")
    ax.set_xticks(x, [f"{d:%Y-%m-%d}" for d in own["as_of"]], rotation=30, ha="right")
    ax.set_xlabel(f"forecast made on (next {backtest.horizon_days} days)")
    ax.set_ylabel("revenue won")
    ax.set_title("Backtest: forecasts replayed against what was won")
    ax.legend(fontsize=8)
    return ax
