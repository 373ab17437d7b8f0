"""Every code snippet in the docs runs: Python blocks are executed, C++ blocks are compiled."""

from __future__ import annotations

import os
import re

import pytest

DOC_FILES = [
    "README.md",
    "docs/index.md",
    "docs/quickstart.md",
    "docs/guide/fitting.md",
    "docs/statistics.md",
    "docs/cpp.md",
    "docs/benchmarks.md",
    "docs/guide/forecast.md",
    "docs/guide/coaching.md",
    "docs/guide/persistence.md",
    "docs/guide/reliability.md",
    "docs/guide/dask.md",
    "docs/guide/imports.md",
    "docs/guide/report.md",
    "docs/api/python.md",
    "docs/api/cpp.md",
]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def all_doc_files(root):
    found = [*sorted(str(p.relative_to(root)) for p in (root / "docs").rglob("*.md")), "README.md"]
    return found


def test_doc_list_is_complete(root):
    assert sorted(DOC_FILES) == sorted(all_doc_files(root))


@pytest.mark.parametrize("doc", DOC_FILES)
def test_python_snippets_run(root, doc, tmp_path, monkeypatch):
    code = blocks((root / doc).read_text(), "python")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"{doc}[python block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{doc}, python block {i} failed: {exc!r}\n{block}") from exc


@pytest.mark.parametrize("doc", DOC_FILES)
def test_cpp_snippets_are_compiled_programs(root, doc):
    """A C++ block must be a file under docs/examples/, which ctest builds and runs."""
    examples = [p.read_text() for p in (root / "docs" / "examples").glob("*.cpp")]
    for block in blocks((root / doc).read_text(), "cpp"):
        assert any(block.strip() in ex for ex in examples), (
            f"{doc}: C++ snippet not in docs/examples:\n{block}"
        )


def test_bash_quick_start_commands_exist(root):
    text = (root / "README.md").read_text()
    quick = blocks(text.split("## Quick start", 1)[1], "bash")[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["bash .ci/setup && .venv/bin/smartfunnel report --sample", "bash .ci/test"]
    for script in (".ci/setup", ".ci/test"):
        assert os.access(root / script, os.X_OK)
    assert "bash .ci/test" in (root / ".ci" / "run").read_text()
