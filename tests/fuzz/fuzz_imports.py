"""Fuzz target for the CSV import path (``smartfunnel.imports.read``), with atheris (libFuzzer for
Python). The bytes become one or two CSV files in a scratch folder; ``read`` must either import
them (a log and a quality table that agree with it) or raise ``smartfunnel.DataError`` (or a
subclass) with a message: any other exception, a crash or a hang is a finding.

The first byte chooses the case:
  0: one file, read as a path, with the funnel inferred;
  1: one file with a given funnel (Discovery, Proposal; Won / Lost);
  2: two files split at the first NUL byte pair: OpportunityHistory.csv and Opportunity.csv
     (a Salesforce pair, when their columns say so), read as a folder;
  3: one file and a stage map, read from a folder with a file that cannot be read beside it.

    .venv/bin/python tests/fuzz/fuzz_imports.py -runs=3000 -seed=1 tests/fuzz/corpus/imports
    (the suite replays tests/fuzz/corpus/imports through one_input, without atheris)
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

SCRATCH = pathlib.Path(tempfile.mkdtemp(prefix="smartfunnel-fuzz-imports-"))


def _write(name: str, data: bytes) -> pathlib.Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


def _clear() -> None:
    for p in SCRATCH.iterdir():
        if p.is_dir() and not p.is_symlink():
            for q in p.iterdir():
                q.unlink()
            p.rmdir()
        else:
            p.unlink()


def one_input(data: bytes) -> None:
    import pandas as pd

    import smartfunnel as sf

    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    _clear()
    funnel = None
    kwargs: dict = {}
    if mode == 0:
        target: pathlib.Path = _write("events.csv", body)
    elif mode == 1:
        target = _write("events.csv", body)
        funnel = sf.Funnel(["Discovery", "Proposal"], won="Won", lost="Lost")
    elif mode == 2:
        history, _, opps = body.partition(b"\x00\x00")
        _write("OpportunityHistory.csv", history)
        _write("Opportunity.csv", opps)
        target = SCRATCH
    else:
        _write("events.csv", body)
        (SCRATCH / "broken.csv").mkdir()
        kwargs["stage_map"] = {"Demo": "Discovery"}
        target = SCRATCH
    try:
        imp = sf.imports.read(target, funnel=funnel, **kwargs)
    except sf.DataError as e:
        assert str(e), "a DataError without a message"
        return
    # Imported: the quality table has its columns, the log is consistent with itself.
    q = imp.quality
    assert list(q.columns) == list(sf.imports.QUALITY_COLUMNS), q.columns
    assert set(q["action"].dropna()) <= {"rejected", "changed", "added", "note"}
    assert imp.log.n_events >= imp.log.n_opportunities >= 0
    if imp.log.n_events:
        frame = imp.log.to_frame()
        assert isinstance(frame, pd.DataFrame) and len(frame) == imp.log.n_events


def main() -> None:
    import atheris

    with atheris.instrument_imports(include=["smartfunnel"]):
        import smartfunnel  # noqa: F401  (instrumented)
    atheris.Setup(sys.argv, one_input)
    try:
        atheris.Fuzz()
    finally:
        _clear()
        os.rmdir(SCRATCH)


if __name__ == "__main__":
    main()
