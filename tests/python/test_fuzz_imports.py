"""The CSV-import fuzz target's corpus (tests/fuzz/corpus/imports: seeds and every input a fuzz run
found) replayed through the target's own check: each input imports consistently or raises
DataError with a message. .ci/test runs the fuzzer itself (atheris) for a fixed number of runs."""

from __future__ import annotations

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "fuzz" / "corpus" / "imports").iterdir())
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))
import fuzz_imports  # noqa: E402  (beside the corpus, not a package)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_fuzz_imports_corpus(path: pathlib.Path) -> None:
    fuzz_imports.one_input(path.read_bytes())


def test_corpus_reaches_every_case() -> None:
    # first byte % 4 picks the case: long file, given funnel, Salesforce pair, folder with a bad file
    assert {p.read_bytes()[0] % 4 for p in CORPUS} == {0, 1, 2, 3}
