"""The command line: user errors are one line and exit status 2; what the export readers need."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf
from smartfunnel.cli import main

# Four deals, hand-made: o1 Lead -> Demo -> Won, o2 Lead -> Lost, o3 Lead -> Demo (open),
# o4 Lead (open). First event 2024-01-02, last 2024-03-01.
EVENTS = [
    ("o1", "Lead", "2024-01-02", 100.0),
    ("o1", "Demo", "2024-01-10", 100.0),
    ("o1", "Won", "2024-02-01", 100.0),
    ("o2", "Lead", "2024-01-05", 50.0),
    ("o2", "Lost", "2024-01-20", 50.0),
    ("o3", "Lead", "2024-01-15", 80.0),
    ("o3", "Demo", "2024-02-20", 80.0),
    ("o4", "Lead", "2024-03-01", 30.0),
]


@pytest.fixture
def events_csv(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame(EVENTS, columns=["opportunity_id", "stage", "time", "amount"]).to_csv(
        path, index=False
    )
    return path


def run(*argv: str) -> subprocess.CompletedProcess:
    """The real command, in a child process, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "smartfunnel", "report", "--progress", "never", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(pathlib.Path(sf.__file__).parents[1])},
        timeout=300,
    )


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("smartfunnel report: "), err
    return lines[0]


# -- user errors: one line, exit status 2 (the inputs the trial used) ----------------------------
def test_as_of_before_the_data_in_a_child_process(events_csv):
    out = run(str(events_csv), "--as-of", "2010-01-01")
    assert out.returncode == 2 and out.stdout == ""
    line = one_line(out.stderr)
    assert "--as-of 2010-01-01 is before the data" in line
    assert "first event 2024-01-02" in line and "expected a date from 2024-01-02 on" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--as-of", "2024-13-45"], "argument --as-of: '2024-13-45' is not a date (expected e.g."),
        (["--target", "nan"], "argument --target: 'nan' is out of range (expected a revenue"),
    ],
)
def test_bad_values_in_a_child_process(events_csv, argv, expected):
    out = run(str(events_csv), *argv)
    assert out.returncode == 2
    assert expected in one_line(out.stderr)


def test_empty_file_in_a_child_process(tmp_path):
    empty = tmp_path / "export.csv"
    empty.write_bytes(b"")
    out = run(str(empty))
    assert out.returncode == 2
    assert f"INPUT '{empty}': the file is empty (0 bytes" in one_line(out.stderr)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--target", "-5"], "argument --target: '-5' is out of range (expected a revenue target >= 0"),
        (["--target", "inf"], "argument --target: 'inf' is out of range"),
        (["--target", "lots"], "argument --target: 'lots' is not a number"),
        (["--backtest", "-1"], "argument --backtest: '-1' is out of range (expected a number of past"),
        (["--backtest", "2.5"], "argument --backtest: '2.5' is not a whole number"),
        (["--scenarios", "-1"], "argument --scenarios: '-1' is out of range (expected a number of scen"),
        (["--seed", str(2**64)], f"argument --seed: '{2**64}' is out of range (expected a seed from 0"),
        (["--prior", "-1"], "argument --prior: '-1' is out of range (expected a prior concentration"),
        (["--level", "1.5"], "argument --level: '1.5' is out of range (expected an interval level"),
        (["--level", "0"], "argument --level: '0' is out of range"),
        (["--stale-after", "0"], "argument --stale-after: '0' is out of range (expected a number of days > 0)"),
        (["--period", "2024-04-01", "2024-02-30"], "argument --period: '2024-02-30' is not a date"),
        (["--as-of", "9999-12-31"], "argument --as-of: '9999-12-31' is out of range (expected a date from 1678-01-01 to 2261-12-31)"),
        (["--period", "2024-06-30", "2024-04-01"], "--period 2024-06-30 2024-04-01: the end is before the start"),
        (["--progress", "bogus"], "argument --progress: invalid choice: 'bogus'"),
        (["--after-terminal", "keep"], "argument --after-terminal: invalid choice: 'keep'"),
        (["--sep", ";;"], "argument --sep: ';;' is not one character"),
        (["--decimal", ";"], "argument --decimal: invalid choice: ';' (choose from '.', ',')"),
        (["--time-format", "dd/mm/yyyy"], "argument --time-format: 'dd/mm/yyyy' is no strptime format"),
        (["--stage-map", "Demo"], "argument --stage-map: 'Demo' is not OLD=NEW"),
        (["--groups", "region"], "--groups 'region' is no attribute of the data (attributes: none"),
        (["--stages", "Lead,Demo", "--won", "Lead"], "'Lead' appears more than once"),
        (["--sample"], "give INPUT files or --sample, not both"),
    ],
)  # fmt: skip
def test_every_user_error_is_one_line_and_status_2(events_csv, capsys, argv, expected):
    assert status(["report", str(events_csv), "--progress", "never", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in one_line(captured.err)


def status(argv: list[str]) -> int:
    """main's exit status, also where argparse exits itself."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_period_ends_checked_after_parsing(events_csv, capsys):
    assert main(["report", str(events_csv), "--period", "2024-06-30", "2024-04-01"]) == 2
    assert "the end is before the start" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00", "cannot be read: not UTF-8 text"),
        # UTF-16 with its byte-order mark (Excel's "Unicode text") is read: it fails on its content
        ("opportunity_id,stage,time\no1,Lead,2024-01-01\n".encode("utf-16"), "x.csv: cannot infer the funnel: no stage reads as won among ['Lead']"),
        (b"opportunity_id,stage,time\n", "x.csv: no rows (only a header: ['opportunity_id', 'stage', 'time'])"),
        (b"opportunity_id,stage,time\n,Lead,2024-01-01\n,Won,2024-01-02\n", "x.csv: none of the 2 rows is usable (2 no opportunity id"),
    ],
)  # fmt: skip
def test_files_that_are_no_usable_export(tmp_path, capsys, content, expected):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    assert main(["report", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert expected in line and path.name in line


def test_a_symlink_loop(tmp_path, capsys):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    assert main(["report", str(loop)]) == 2
    assert "a symbolic link to nothing (or in a loop)" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("what", ["missing", "folder", "empty folder", "directory named x.csv"])
def test_inputs_that_are_not_exports(tmp_path, capsys, what):
    if what == "missing":
        path = tmp_path / "missing.csv"
        expected = f"INPUT '{path}': no such file or folder"
    elif what == "folder":  # a folder whose only CSV no format reads
        path = tmp_path / "exports"
        path.mkdir()
        (path / "notes.csv").write_text("a,b\n1,2\n")
        expected = "no stage history among the files (found: nothing usable). Expected one of:"
    elif what == "empty folder":
        path = tmp_path / "nothing"
        path.mkdir()
        expected = "no CSV files in"
    else:
        path = tmp_path / "x.csv"
        path.mkdir()
        expected = "no CSV files in"
    assert main(["report", str(path)]) == 2
    assert expected in one_line(capsys.readouterr().err)


# -- dates: a US file read as ISO or day-first says so, not "no stage reads as won" --------------
def us_dates(tmp_path):
    """The events with month-first dates (03/25/2024...)."""
    frame = pd.DataFrame(EVENTS, columns=["opportunity_id", "stage", "time", "amount"])
    frame["time"] = pd.to_datetime(frame["time"]).dt.strftime("%m/%d/%Y")
    path = tmp_path / "us.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_us_dates_without_a_format_name_the_format(tmp_path, capsys):
    path, _ = us_dates(tmp_path)
    assert main(["report", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "no stage reads as won" not in line
    # All 8 times fail as ISO 8601; every one reads month-first.
    assert (
        "column 'time': 8 of 8 times (100%) are not ISO 8601 dates, e.g. row 0 '01/02/2024'" in line
    )
    assert "month-first (US)" in line and "--time-format '%m/%d/%Y'" in line


def test_us_dates_read_day_first_name_the_impossible_month(tmp_path, capsys):
    path, frame = us_dates(tmp_path)
    assert main(["report", str(path), "--dayfirst"]) == 2
    line = one_line(capsys.readouterr().err)
    # Day-first, a date fails when its second field (the day, really) is above 12: by pandas.
    day = frame["time"].str.split("/").str[1].astype(int)
    n_bad = int((day > 12).sum())
    first = int(np.flatnonzero(day > 12)[0])
    assert n_bad == 3  # 01/20, 01/15, 02/20
    assert f"{n_bad} of 8 times ({n_bad / 8:.0%}) are not dates in the format '%d/%m/%Y'" in line
    month = frame["time"].iloc[first].split("/")[1]
    assert f"row {first} {frame['time'].iloc[first]!r}: month {month} is impossible" in line
    assert "--time-format '%m/%d/%Y'" in line


def test_us_dates_with_their_format_read_as_the_iso_ones(tmp_path, events_csv, capsys):
    path, _ = us_dates(tmp_path)
    us = sf.imports.read(path, time_format="%m/%d/%Y")
    iso = sf.imports.read(events_csv)
    pd.testing.assert_frame_equal(us.log.to_frame(), iso.log.to_frame())
    assert main(["report", str(path), "--time-format", "%m/%d/%Y"]) == 0
    assert "8 events, 4 opportunities, 2024-01-02 .. 2024-03-01" in capsys.readouterr().out


def test_day_first_dates(tmp_path):
    frame = pd.DataFrame(EVENTS, columns=["opportunity_id", "stage", "time", "amount"])
    frame["time"] = pd.to_datetime(frame["time"]).dt.strftime("%d.%m.%Y")
    path = tmp_path / "eu.csv"
    frame.to_csv(path, index=False)
    imp = sf.imports.read(path, dayfirst=True)
    expected = pd.to_datetime(frame["time"], format="%d.%m.%Y", utc=True)
    got = imp.log.to_frame().sort_values(["opportunity_id", "time"])["time"]
    assert sorted(got) == sorted(expected)
    assert "times read day-first as '%d.%m.%Y' (the format of the first time" in " ".join(
        imp.quality["reason"]
    )


# -- separators, decimal marks ---------------------------------------------------------------------
def test_semicolons_and_decimal_commas_are_sniffed_and_said(tmp_path, capsys):
    text = "opportunity_id;stage;time;amount\n" + "".join(
        f"{o};{s};{t};{str(a).replace('.', ',')}5\n" for o, s, t, a in EVENTS
    )
    path = tmp_path / "semi.csv"
    path.write_text(text)
    imp = sf.imports.read(path)
    # Each amount as written: 100,05 is 100.05 (the written text, with the appended 5).
    offsets, _, values = imp.log.core.amount_history
    last = {oid: values[int(offsets[i + 1]) - 1] for i, oid in enumerate(imp.log.opportunity_ids())}
    assert last == pytest.approx({"o1": 100.05, "o2": 50.05, "o3": 80.05, "o4": 30.05})
    notes = imp.quality[(imp.quality["action"] == "note") & (imp.quality["table"] == "semi.csv")]
    assert any("separated by semicolons and a decimal comma (sniffed" in r for r in notes["reason"])
    # Told otherwise, the reader does as told: with ',' as the separator there is one column.
    assert main(["report", str(path), "--sep", ","]) == 2
    assert "format not recognised" in one_line(capsys.readouterr().err)
    assert main(["report", str(path), "--sep", ";", "--decimal", ","]) == 0


def test_a_plain_csv_gets_no_separator_note(events_csv):
    imp = sf.imports.read(events_csv)
    assert not imp.quality["reason"].astype(str).str.contains("sniffed").any()


def test_tab_separated(tmp_path):
    frame = pd.DataFrame(EVENTS, columns=["opportunity_id", "stage", "time", "amount"])
    path = tmp_path / "events.tsv.csv"
    frame.to_csv(path, index=False, sep="\t")
    imp = sf.imports.read(path)
    assert imp.log.n_events == len(EVENTS)
    assert imp.quality["reason"].astype(str).str.contains("separated by tabs").any()


# -- stage names: trimmed, mapped; events after Won/Lost ---------------------------------------
def test_trailing_spaces_make_no_second_stage(tmp_path, capsys):
    frame = pd.DataFrame(EVENTS, columns=["opportunity_id", "stage", "time", "amount"])
    frame.loc[[1], "stage"] = "Demo "  # o1's Demo with a trailing space, o3's without
    frame.loc[[4], "stage"] = " Lost"
    path = tmp_path / "events.csv"
    frame.to_csv(path, index=False)
    imp = sf.imports.read(path)
    assert list(imp.funnel.stages) == ["Lead", "Demo"]
    n_spaced = int((frame["stage"] != frame["stage"].str.strip()).sum())
    trimmed = imp.quality[imp.quality["reason"].str.contains("trimmed", na=False)]
    assert len(trimmed) == 1 and trimmed["reason"].iloc[0].startswith(
        f"{n_spaced:,} stage names trimmed"
    )
    assert "'Demo ' → 'Demo'" in trimmed["reason"].iloc[0]
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"^  Demo\s+2\s", out, flags=re.M)) == 1  # one Demo row: o1 and o3


def test_stage_map_is_repeatable(tmp_path, events_csv, capsys):
    frame = pd.read_csv(events_csv)
    frame["stage"] = frame["stage"].replace({"Won": "Closed Won", "Demo": "Dmo"})
    path = tmp_path / "renamed.csv"
    frame.to_csv(path, index=False)
    argv = ["report", str(path), "--stage-map", "Dmo=Demo", "--stage-map", "Nope=X"]
    assert main([*argv, "--stage-map", "Closed Won=Won"]) == 0
    assert re.search(r"Demo\s+2\s", capsys.readouterr().out)  # o1 and o3 reached Demo
    imp = sf.imports.read(path, stage_map={"Dmo": "Demo", "Nope": "X"})
    assert list(imp.funnel.stages) == ["Lead", "Demo"] and list(imp.funnel.won) == ["Closed Won"]
    reasons = imp.quality["reason"].tolist()
    assert "stage map: 'Dmo' renamed 'Demo' (2 rows)" in reasons
    assert any(r.startswith("stage map: 'Nope' is no stage in the data") for r in reasons)


def test_after_terminal_reopen_or_reject(tmp_path, capsys):
    rows = [*EVENTS, ("o2", "Demo", "2024-02-05", 50.0)]  # o2 was lost on 2024-01-20
    path = tmp_path / "reopened.csv"
    pd.DataFrame(rows, columns=["opportunity_id", "stage", "time", "amount"]).to_csv(
        path, index=False
    )
    rejected = sf.imports.read(path, after_terminal="reject")
    assert rejected.log.n_events == len(EVENTS)
    bad = rejected.quality[rejected.quality["action"] == "rejected"]
    assert list(bad["row"]) == [len(EVENTS)] and list(bad["id"]) == ["o2"]
    reopened = sf.imports.read(path, after_terminal="reopen")
    assert reopened.log.n_events == len(rows) and reopened.log.quality["reopened"] == 1
    for imp, said in ((rejected, "0 deals reopened, 1 event rejected"), (reopened, "1 deal reopened, 0 events")):  # fmt: skip
        assert imp.quality["reason"].str.contains(said, regex=False).any()
    assert main(["report", str(path), "--after-terminal", "reopen"]) == 0
    assert "reopened 1" in capsys.readouterr().out


# -- HubSpot: the web app's export --------------------------------------------------------------
PIPE = "Sales Pipeline"


def hubspot_ui(tmp_path, name="hubspot-crm-exports-all-deals.csv"):
    def col(kind, stage, pipe=PIPE):
        return f'Date {kind} "{stage} ({pipe})"'

    frame = pd.DataFrame(
        {
            "Record ID": ["101", "102", "103", "104"],
            "Deal Name": ["Acme", "Globex", "Initech", "Umbrella"],
            "Deal Stage": ["Closed Won", "Demo Scheduled", "Closed Lost", "Appointment Scheduled"],
            "Pipeline": [PIPE] * 4,
            "Amount": ["1200", "800", "", "300"],
            "Deal owner": ["Ada Lovelace", "Alan Turing", "Ada Lovelace", None],
            "Create Date": ["2024-01-01 09:00", "2024-01-03 10:00", "2024-01-04 11:00", "2024-02-01 12:00"],
            col("entered", "Appointment Scheduled"): ["2024-01-01 09:00", "2024-01-03 10:00", "2024-01-04 11:00", "2024-02-01 12:00"],
            col("exited", "Appointment Scheduled"): ["2024-01-05 09:00", "2024-01-08 10:00", "2024-01-06 11:00", ""],
            col("entered", "Demo Scheduled"): ["2024-01-05 09:00", "2024-01-08 10:00", "", ""],
            col("exited", "Demo Scheduled"): ["2024-01-20 09:00", "", "", ""],
            col("entered", "Closed Won"): ["2024-01-20 09:00", "", "", ""],
            col("entered", "Closed Lost"): ["", "", "2024-01-06 11:00", ""],
        }
    )  # fmt: skip
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path, frame


def test_hubspot_web_app_export(tmp_path):
    path, frame = hubspot_ui(tmp_path)
    imp = sf.imports.read(path)
    assert imp.source == "HubSpot deals (web app export)"
    assert list(imp.funnel.stages) == ["Appointment Scheduled", "Demo Scheduled"]
    assert list(imp.funnel.won) == ["Closed Won"] and list(imp.funnel.lost) == ["Closed Lost"]
    # One event per non-empty "Date entered" cell, counted by pandas.
    entered = [c for c in frame.columns if c.startswith("Date entered")]
    assert imp.log.n_events == int((frame[entered].fillna("") != "").to_numpy().sum()) == 8
    events = imp.log.to_frame()
    first = events[events["opportunity_id"] == "101"]
    assert list(first["stage"]) == ["Appointment Scheduled", "Demo Scheduled", "Closed Won"]
    assert first["time"].iloc[-1] == pd.Timestamp("2024-01-20 09:00", tz="UTC")
    # Owners are the names the export gives; the deal without one is unassigned and reported.
    assert set(imp.log.core.owner_names) == {"Ada Lovelace", "Alan Turing", sf.imports.UNASSIGNED}
    q = imp.quality
    owner = q[(q["column"] == "Deal owner") & (q["action"] == "changed")]
    assert list(owner["id"]) == ["104"]
    # The export's own column names in the report: 103's empty Amount.
    amount = q[q["column"] == "Amount"]
    assert list(amount["id"]) == ["103"] and set(q["table"]) == {path.name}
    assert q["reason"].str.contains("order of the export's columns").any()


def test_hubspot_web_app_export_names_its_columns_in_errors(tmp_path):
    path, frame = hubspot_ui(tmp_path)
    col = f'Date entered "Demo Scheduled ({PIPE})"'
    frame.loc[1, col] = "someday"
    frame.to_csv(path, index=False)
    imp = sf.imports.read(path)
    bad = imp.quality[imp.quality["action"] == "rejected"]
    assert list(bad["column"]) == [col] and list(bad["id"]) == ["102"]
    assert list(bad["value"]) == ["someday"]


def test_hubspot_web_app_export_with_several_pipelines(tmp_path, capsys):
    path, frame = hubspot_ui(tmp_path)
    frame['Date entered "Intro (Partners)"'] = ["", "", "", "2024-02-02 10:00"]
    frame.to_csv(path, index=False)
    assert main(["report", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "several pipelines ['Sales Pipeline', 'Partners']" in line and "--pipeline" in line
    imp = sf.imports.read(path, pipeline=PIPE)
    assert imp.log.n_events == 8  # the Sales Pipeline's entries alone


def test_hubspot_web_app_export_with_the_pipeline_stages(tmp_path):
    folder = tmp_path / "hubspot"
    folder.mkdir()
    hubspot_ui(folder)
    # The stages file orders Demo Scheduled before Appointment Scheduled (its displayOrder), and
    # says which closed stage is won by isWon, whatever the names.
    pd.DataFrame(
        {
            "id": ["appt", "demo", "won", "lost"],
            "label": ["Appointment Scheduled", "Demo Scheduled", "Closed Won", "Closed Lost"],
            "displayOrder": [1, 0, 2, 3],
            "isClosed": [False, False, True, True],
            "isWon": [False, False, True, False],
        }
    ).to_csv(folder / "stages.csv", index=False)
    imp = sf.imports.read(folder)
    assert imp.source == "HubSpot deals (web app export)"
    assert list(imp.funnel.stages) == ["Demo Scheduled", "Appointment Scheduled"]
    assert not imp.quality["reason"].str.contains("order of the export's columns").any()
    assert imp.log.n_events == 8


# -- Salesforce owner names from a User export ----------------------------------------------------
def salesforce_folder(tmp_path, users=True):
    folder = tmp_path / "salesforce"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "Id": ["006A", "006B", "006C"],
            "StageName": ["Closed Won", "Prospecting", "Closed Lost"],
            "StageSortOrder": [3, 1, 4],
            "IsWon": [1, 0, 0],
            "IsClosed": [1, 0, 1],
            "Amount": [1000, 500, 200],
            "CloseDate": ["2024-02-01", "2024-04-01", "2024-01-20"],
            "OwnerId": ["005X", "005Y", "005Z"],
            "CreatedDate": ["2024-01-01 10:00:00", "2024-01-02 10:00:00", "2024-01-03 10:00:00"],
        }
    ).to_csv(folder / "Opportunity.csv", index=False)
    pd.DataFrame(
        {
            "OpportunityId": ["006A", "006A", "006A", "006B", "006C", "006C"],
            "StageName": ["Prospecting", "Proposal", "Closed Won", "Prospecting", "Prospecting", "Closed Lost"],
            "CreatedDate": ["2024-01-01 10:00:00", "2024-01-10 10:00:00", "2024-02-01 10:00:00", "2024-01-02 10:00:00", "2024-01-03 10:00:00", "2024-01-20 10:00:00"],
        }
    ).to_csv(folder / "OpportunityHistory.csv", index=False)  # fmt: skip
    if users:
        pd.DataFrame({"Id": ["005X", "005Y"], "Name": ["Grace Hopper", "Edsger Dijkstra"]}).to_csv(
            folder / "User.csv", index=False
        )
    return folder


def test_salesforce_owner_names_from_the_user_export(tmp_path):
    imp = sf.imports.read(salesforce_folder(tmp_path))
    core = imp.log.core
    codes = core.owners_at(np.arange(core.n_opportunities), core.last_time)
    owner = dict(zip(imp.log.opportunity_ids(), (core.owner_names[c] for c in codes)))
    # 005Z is no user in User.csv: its id stays the owner, and a note says so.
    assert owner == {"006A": "Grace Hopper", "006B": "Edsger Dijkstra", "006C": "005Z"}
    q = imp.quality
    assert q["reason"].str.contains("owners named from User.csv: 2 of 3 OwnerIds").any()
    unknown = q[q["reason"].str.contains("is not in User.csv", na=False)]
    assert list(unknown["id"]) == ["006C"] and list(unknown["value"]) == ["005Z"]
    # Without the User export the owners are the ids, as before.
    plain = sf.imports.read(salesforce_folder(tmp_path / "no-users", users=False))
    assert set(plain.log.core.owner_names) == {"005X", "005Y", "005Z"}


def test_salesforce_stage_names_are_trimmed(tmp_path):
    folder = salesforce_folder(tmp_path)
    hist = pd.read_csv(folder / "OpportunityHistory.csv")
    hist.loc[1, "StageName"] = "Proposal  "
    hist.to_csv(folder / "OpportunityHistory.csv", index=False)
    imp = sf.imports.read(folder)
    assert list(imp.funnel.stages) == ["Prospecting", "Proposal"]
    trimmed = imp.quality[imp.quality["reason"].str.contains("trimmed", na=False)]
    assert list(trimmed["table"]) == ["OpportunityHistory"]
    assert trimmed["reason"].iloc[0].startswith("1 stage name trimmed of surrounding spaces")


def test_a_user_export_alone_is_an_unused_file(tmp_path, events_csv):
    pd.DataFrame({"Id": ["005X"], "Name": ["Grace Hopper"]}).to_csv(
        tmp_path / "User.csv", index=False
    )
    imp = sf.imports.read(tmp_path)
    unused = imp.quality[imp.quality["reason"] == "file not used: no format reads it"]
    assert list(unused["table"]) == ["User.csv"]


# -- the team table of the snapshot datasets ---------------------------------------------------
def test_maven_teams_join_against_pandas(shared_data):
    folder = shared_data / "maven-crm-sales-opportunities"
    imp = sf.imports.read(folder)
    pipeline = pd.read_csv(folder / "sales_pipeline.csv")
    teams = pd.read_csv(folder / "sales_teams.csv")
    expected = pipeline.merge(teams, on="sales_agent", how="left").set_index("opportunity_id")
    attrs = {name: (names, codes) for name, names, codes in imp.log.core.attributes}
    ids = imp.log.opportunity_ids()
    for col in ("manager", "regional_office"):
        names, codes = attrs[col]
        got = pd.Series(np.asarray(names, dtype=object)[codes], index=ids)
        want = expected.loc[got.index, col].fillna("(no team)")
        assert (got == want).all(), col
    assert expected["manager"].notna().all()  # every agent of the export has a team
    notes = imp.quality[imp.quality["action"] == "note"]
    notes = notes[~notes["reason"].str.contains("list price while open")]
    assert set(notes["table"]) == {"accounts.csv", "sales_teams.csv"}
    assert notes["reason"].str.contains(f"({len(teams)} agents;", regex=False).any()


def test_an_agent_without_a_team_is_reported(tmp_path, shared_data):
    folder = shared_data / "maven-crm-sales-opportunities"
    pipeline = pd.read_csv(folder / "sales_pipeline.csv")
    teams = pd.read_csv(folder / "sales_teams.csv")
    gone = teams["sales_agent"].iloc[0]
    teams.iloc[1:].to_csv(tmp_path / "sales_teams.csv", index=False)
    pipeline.to_csv(tmp_path / "sales_pipeline.csv", index=False)
    imp = sf.imports.read(tmp_path)
    changed = imp.quality[imp.quality["reason"].str.contains("agent not in", na=False)]
    # Two records per placed row of that agent (manager, regional_office), by pandas.
    placed = (pipeline["sales_agent"] == gone) & (pipeline["deal_stage"] != "Prospecting")
    assert len(changed) == 2 * int((pipeline["sales_agent"] == gone).sum())
    assert set(changed["id"]) == set(
        pipeline.loc[pipeline["sales_agent"] == gone, "opportunity_id"]
    )
    attrs = {name: (names, codes) for name, names, codes in imp.log.core.attributes}
    names, codes = attrs["manager"]
    assert int((np.asarray(names, dtype=object)[codes] == "(no team)").sum()) == int(placed.sum())


def test_report_by_regional_office(shared_data, tmp_path, capsys):
    out_path = tmp_path / "maven.html"
    folder = shared_data / "maven-crm-sales-opportunities"
    assert main(["report", str(folder), "--groups", "regional_office", "-o", str(out_path)]) == 0
    text = out_path.read_text(encoding="utf-8")
    assert "regional_office" in text  # the assumptions name the groups of the fit
    model = sf.fit(sf.imports.read(folder).log, groups=["regional_office"])
    offices = pd.read_csv(folder / "sales_teams.csv")["regional_office"].unique()
    assert {k[0] for k in model.groups if k} == set(offices)


def test_sparklesquad_teams_join_against_pandas(shared_data):
    folder = shared_data / "sparklesquad-crm-dataset"
    imp = sf.imports.read(folder)
    pipeline = pd.read_csv(folder / "sales-pipeline.csv")
    teams = pd.read_csv(folder / "sales-teams.csv")
    expected = pipeline.merge(teams, on="Sales_Agent", how="left").set_index("Opportunity_ID")
    attrs = {name: (names, codes) for name, names, codes in imp.log.core.attributes}
    ids = imp.log.opportunity_ids()
    for col in ("Manager", "Regional_Office"):
        names, codes = attrs[col]
        got = pd.Series(np.asarray(names, dtype=object)[codes], index=ids)
        assert (got == expected.loc[got.index, col].fillna("(no team)")).all(), col


# -- imports.read: its reading options are checked, and what they mean ---------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sep": ";;"}, "sep must be one character, got ';;'"),
        ({"decimal": ""}, "decimal must be one character, got ''"),
        ({"sep": ",", "decimal": ","}, "sep and decimal must differ, both are ','"),
        ({"after_terminal": "keep"}, "after_terminal must be 'reopen' or 'reject', got 'keep'"),
        ({"time_format": 5}, "time_format must be a strptime format or 'mixed', got 5"),
    ],
)
def test_read_refuses_bad_options(events_csv, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sf.imports.read(events_csv, **kwargs)


def test_a_decimal_comma_in_a_comma_separated_file_needs_its_separator(events_csv):
    with pytest.raises(sf.DataError, match="columns separated by ',', the decimal mark given"):
        sf.imports.read(events_csv, decimal=",")


def test_dates_that_fail_as_a_whole_name_the_column(tmp_path):
    _, frame = us_dates(tmp_path)
    with pytest.raises(sf.DataError) as info:
        sf.imports.from_long(frame, amount="amount")
    assert info.value.column == "time"
    # Among good ISO times, one bad cell is rejected row by row, not an error about the format.
    iso = pd.DataFrame(EVENTS, columns=["opportunity_id", "stage", "time", "amount"])
    iso.loc[3, "time"] = "02/30/2024"
    imp = sf.imports.from_long(iso)
    bad = imp.quality[imp.quality["action"] == "rejected"]
    assert list(bad["row"]) == [3] and list(bad["column"]) == ["time"]


def test_named_columns_with_a_separator(tmp_path, capsys):
    frame = pd.DataFrame(EVENTS, columns=["deal", "phase", "when", "value"])
    path = tmp_path / "odd.csv"
    frame.to_csv(path, index=False, sep=";")
    argv = ["report", str(path), "--opportunity", "deal", "--stage", "phase", "--time", "when"]
    assert main([*argv, "--amount", "value"]) == 0
    out = capsys.readouterr().out
    assert "8 events, 4 opportunities" in out
    assert "import note 2" in out  # the separator sniffed, the funnel inferred


def test_stage_map_on_a_snapshot_dataset_is_refused(shared_data, capsys):
    folder = shared_data / "maven-crm-sales-opportunities"
    assert main(["report", str(folder), "--stage-map", "Engaging=Demo"]) == 2
    assert "the funnel of this dataset is fixed" in one_line(capsys.readouterr().err)


def test_snapshot_dates_follow_the_time_format(tmp_path, shared_data):
    folder = shared_data / "maven-crm-sales-opportunities"
    frame = pd.read_csv(folder / "sales_pipeline.csv")
    us = frame.copy()
    for col in ("engage_date", "close_date"):
        us[col] = pd.to_datetime(frame[col]).dt.strftime("%m/%d/%Y")
    us.to_csv(tmp_path / "sales_pipeline.csv", index=False)
    got = sf.imports.read(tmp_path / "sales_pipeline.csv", time_format="%m/%d/%Y")
    want = sf.imports.read(folder / "sales_pipeline.csv")
    pd.testing.assert_frame_equal(got.log.to_frame(), want.log.to_frame())
    assert got.as_of == want.as_of == pd.Timestamp(frame["close_date"].max(), tz="UTC")


def test_stage_map_renames_at_once(events_csv):
    # Lead <-> Demo: each row renamed once, by the map as given (not Lead -> Demo -> Lead).
    imp = sf.imports.read(events_csv, stage_map={"Lead": "Demo", "Demo": "Lead"})
    events = imp.log.to_frame()
    first = events.groupby("opportunity_id", sort=True)["stage"].first().astype(str)
    assert first.to_dict() == {"o1": "Demo", "o2": "Demo", "o3": "Demo", "o4": "Demo"}
    o1 = events[events["opportunity_id"] == "o1"]["stage"].astype(str).tolist()
    assert o1 == ["Demo", "Lead", "Won"]
