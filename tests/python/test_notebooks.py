"""The notebooks under docs/notebooks are executed; their outputs are checked against numbers
computed here (from the sample and its known truth)."""

from __future__ import annotations

import ast
import re

import pandas as pd
import pytest

import smartfunnel as sf

nbformat = pytest.importorskip("nbformat", reason="nbformat is installed by .ci/setup")
nbclient = pytest.importorskip("nbclient", reason="nbclient is installed by .ci/setup")


def notebooks(root):
    return sorted((root / "docs" / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks(root):
    assert [p.name for p in notebooks(root)] == [
        "coaching.ipynb",
        "conversion_and_forecasting.ipynb",
        "public_datasets.ipynb",
        "quickstart.ipynb",
    ]


def test_notebooks_are_saved_without_outputs(root):
    """The site shows them as saved and the tests execute them: outputs are never committed."""
    for path in notebooks(root):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path


def execute(root, tmp_path, name):
    nb = nbformat.read(root / "docs" / "notebooks" / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    texts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            texts.append(o["text"])
        elif "text/plain" in o.get("data", {}):
            texts.append(o["data"]["text/plain"])
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    return "\n".join(texts), images


def test_conversion_and_forecasting_notebook(root, tmp_path, monkeypatch):
    # the kernel's inline backend: each plt.show() is an image output (needs no display)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    text, images = execute(root, tmp_path, "conversion_and_forecasting.ipynb")
    assert images >= 5  # funnel, time in stage, p_win by age, forecast, calibration

    # the quarter's actual wins, printed by the notebook, are recomputed here from the sample
    events = sf.datasets.sample().events
    won = events[
        (events["stage"] == "Won")
        & (events["time"] >= pd.Timestamp("2025-04-01", tz="UTC"))
        & (events["time"] < pd.Timestamp("2025-07-01", tz="UTC"))
    ]
    m = re.search(r"actual ([\d,]+); forecast P10 ([\d,]+), P50 ([\d,]+), P90 ([\d,]+)", text)
    assert m, text[-2000:]
    actual, p10, p50, p90 = (float(g.replace(",", "")) for g in m.groups())
    assert actual == round(won["amount"].sum())
    assert p10 < p50 < p90 and p10 <= actual <= p90  # the simulated truth falls in the band

    # censoring-aware vs naive, three months into the data: the naive loss rate is the higher in
    # every stage, and the aware win probability from Prospecting is the closer to the truth
    block = text[text.index("censoring-aware  naive (closed only)  truth") :]
    rows = {
        line.split()[0]: [float(x) for x in line.split()[1:4]] for line in block.splitlines()[2:6]
    }
    truth = sf.datasets.sample().true_win_probability()
    assert list(rows) == list(truth.index)
    for stage, (aware, naive, true) in rows.items():
        assert true == pytest.approx(truth[stage], abs=5e-4)
        assert abs(aware - true) < abs(naive - true), stage

    # exact vs Monte Carlo quantiles agree to 1%
    m = re.search(r"mean\s+\S+\s+\S+\s+(\S+)", text)
    assert m and abs(float(m.group(1))) < 0.01
    assert "Backtest(5 dates, horizon 90 days)" in text


def test_coaching_notebook(root, tmp_path, monkeypatch):
    # the kernel's inline backend: each plt.show() is an image output (needs no display)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    text, images = execute(root, tmp_path, "coaching.ipynb")
    assert images >= 2  # scorecard, new deals per week

    # the planted weakness is the one row flagged below the team, and the top focus
    flagged = text[text.index("advance  advance_low  advance_high  team_advance\nowner") :]
    rows = [line for line in flagged.splitlines()[2:] if line.strip()][:2]
    assert rows[0].split()[:2] == ["Dev", "Proposal"] and not rows[1].startswith(("Ana", "Ben"))
    low, high = (float(x) for x in rows[0].split()[3:5])
    assert low < 0.30 < high  # the true rate, planted in the simulation
    assert re.search(r"Dev: Proposal \(\+[\d,]+ expected\)", text)

    # the planted association is found, and the unrelated calls stay near 1
    m = re.search(r"demo in Proposal: risk ratio ([\d.]+) \[([\d.]+), ([\d.]+)\]", text)
    assert m and float(m.group(2)) > 1.0
    calls = re.search(r"calls, by stage: (\{.*\})", text)
    assert calls and all(0.8 < v < 1.25 for v in ast.literal_eval(calls.group(1)).values())


@pytest.mark.parametrize("name", ["quickstart.ipynb"])
def test_notebook_runs(root, tmp_path, name, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(root / "docs" / "notebooks" / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("Forecast(" in str(o) for o in outputs)


def test_public_datasets_notebook_runs(root, tmp_path, monkeypatch, shared_data):
    """Loads each public dataset from SMARTFUNNEL_SHARED_DATA (the notebook's working dir is a
    tmp path) and compares numbers with pandas in its own cells."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("SMARTFUNNEL_SHARED_DATA", str(shared_data))
    nb = nbformat.read(root / "docs" / "notebooks" / "public_datasets.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o) for o in outputs)
    assert "Imported(Olist marketing funnel" in text and "naive win rate: smartfunnel" in text


def test_public_datasets_notebook_skips_without_the_data(root, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTFUNNEL_SHARED_DATA", str(tmp_path / "absent"))
    nb = nbformat.read(root / "docs" / "notebooks" / "public_datasets.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert "The cells below skip" in "\n".join(str(o) for o in outputs)
