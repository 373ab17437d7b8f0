"""The notebooks under docs/notebooks are executed and must run without an error."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is installed by .ci/setup")
nbclient = pytest.importorskip("nbclient", reason="nbclient is installed by .ci/setup")


def notebooks(root):
    return sorted((root / "docs" / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks(root):
    assert [p.name for p in notebooks(root)] == ["public_datasets.ipynb", "quickstart.ipynb"]


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
