"""Imports keep what the export says: ids as text, unreadable typed cells reported, no True/False
money, decimal commas never turned into 0 revenue (issue 13, items 1, 3 and 5)."""

from __future__ import annotations

import pathlib
import re
import sys

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from test_imports import salesforce_exports  # the hand-worked export

FUNNEL = sf.Funnel(["Discovery", "Proposal"], won="Won", lost="Lost")


def _long_csv(path, ids, amounts=None):
    rows = []
    for i, oid in enumerate(ids):
        rows.append({"opportunity_id": oid, "stage": "Discovery", "time": f"2024-01-{i + 1:02d}"})
    frame = pd.DataFrame(rows)
    if amounts is not None:
        frame["amount"] = amounts
    frame.to_csv(path, index=False)
    return path


def test_ids_that_differ_as_text_stay_different_deals(tmp_path):
    # 007, 07 and 7 are three deals in a CRM; read as numbers they were one.
    path = _long_csv(tmp_path / "events.csv", ["007", "07", "7"])
    imp = sf.imports.read(path, funnel=FUNNEL)
    assert sorted(map(str, imp.log.opportunity_ids())) == ["007", "07", "7"]
    assert imp.log.n_opportunities == 3


def test_eighteen_digit_ids_survive_a_blank_id_cell(tmp_path):
    big = ["123456789012345678", "123456789012345679", ""]
    path = _long_csv(tmp_path / "events.csv", big)
    imp = sf.imports.read(path, funnel=FUNNEL)
    # Two deals (the blank id is reported, not merged), each keeping all 18 digits.
    assert sorted(map(str, imp.log.opportunity_ids())) == big[:2]
    q = imp.quality
    assert ((q["column"] == "opportunity_id") & (q["action"] == "rejected")).sum() == 1


def test_float_ids_beyond_two_to_the_53_are_refused_not_merged():
    # What pandas gives for 18-digit ids with one blank cell: floats, the two ids now equal.
    ids = pd.Series([123456789012345678.0, 123456789012345679.0, np.nan])
    assert ids.iloc[0] == ids.iloc[1]  # the digits are already lost in the frame
    frame = pd.DataFrame(
        {"o": ids, "stage": "Discovery", "time": pd.to_datetime(["2024-01-01"] * 3)}
    )
    with pytest.raises(
        sf.DataError,
        match=r"row 0: o value 1\.234567890123456\d*e\+17 is a float beyond 2\*\*53.*as text",
    ):
        sf.EventLog.from_frame(FUNNEL, frame, opportunity="o", stage="stage", time="time")


def test_integral_float_ids_read_back_as_integers():
    frame = pd.DataFrame(
        {
            "o": [7.0, 8.0, 7.0],
            "stage": ["Discovery", "Discovery", "Proposal"],
            "time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        }
    )
    log = sf.EventLog.from_frame(FUNNEL, frame, opportunity="o", stage="stage", time="time")
    assert sorted(int(i) for i in log.opportunity_ids()) == [7, 8]


def test_true_false_are_neither_ids_nor_money():
    frame = pd.DataFrame(
        {
            "o": [True, False],
            "stage": ["Discovery", "Discovery"],
            "time": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "amount": [True, False],
        }
    )
    with pytest.raises(sf.DataError, match="o holds True/False, expected opportunity ids"):
        sf.EventLog.from_frame(FUNNEL, frame, opportunity="o", stage="stage", time="time")
    frame["o"] = ["a", "b"]
    with pytest.raises(sf.DataError, match="amount is a True/False column, expected amounts"):
        sf.EventLog.from_frame(
            FUNNEL, frame, opportunity="o", stage="stage", time="time", amount="amount"
        )
    with pytest.raises(sf.DataError, match="amount is a True/False column"):
        sf.imports.from_long(frame, FUNNEL, opportunity="o", amount="amount")
    # A True in an object column of amounts is one bad cell, reported by row.
    frame["amount"] = pd.Series([True, 100.0], dtype=object)
    imp = sf.imports.from_long(frame, FUNNEL, opportunity="o", amount="amount")
    q = imp.quality[imp.quality["column"] == "amount"]
    assert set(q["row"].dropna()) == {0} and q["reason"].str.contains("not a number").any()


def _first_amounts(log):
    offsets, _, values = log.core.amount_history
    return {o: float(values[offsets[i]]) for i, o in enumerate(log.opportunity_ids())}


def test_decimal_comma_amounts_are_an_error_or_read_never_zero():
    frame = pd.DataFrame(
        {
            "opportunity_id": ["a", "b", "c"],
            "stage": ["Discovery", "Discovery", "Won"],
            "time": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "amount": ["28.000,00", "1.500,50", "3,5"],
        }
    )
    with pytest.raises(sf.DataError, match=r"3 amount values such as '28\.000,00'.*decimal=','"):
        sf.imports.from_long(frame, FUNNEL, amount="amount")
    imp = sf.imports.from_long(frame, FUNNEL, amount="amount", decimal=",")
    amounts = _first_amounts(imp.log)
    assert amounts == {"a": 28000.0, "b": 1500.5, "c": 3.5}
    # Commas as thousands separators.
    frame["amount"] = ["5,000", "1,250,000.50", "70"]
    imp = sf.imports.from_long(frame, FUNNEL, amount="amount", decimal=".")
    amounts = _first_amounts(imp.log)
    assert amounts == {"a": 5000.0, "b": 1250000.5, "c": 70.0}
    # A single word among numbers is one reported cell, not an error.
    frame["amount"] = ["n/a", "100", "70"]
    imp = sf.imports.from_long(frame, FUNNEL, amount="amount")
    bad = imp.quality[imp.quality["column"] == "amount"]
    assert set(bad["row"].dropna()) == {0} and "not a number" in bad["reason"].iloc[0]


def test_salesforce_cells_that_cannot_be_read_are_reported():
    history, opps = salesforce_exports()
    opps = opps.astype({"IsWon": object, "StageSortOrder": object})
    opps.loc[1, "IsWon"] = "maybe"
    opps.loc[2, "StageSortOrder"] = "x"
    history = history.astype({"Amount": object})
    history.loc[0, "Amount"] = "abc"
    imp = sf.imports.from_salesforce(history, opps)
    q = imp.quality
    changed = q[q["action"] == "changed"].set_index(["table", "column"])
    won = changed.loc[("Opportunity", "IsWon")]
    assert won["row"] == 1 and won["id"] == "006B" and won["value"] == "maybe"
    assert "not true/false" in won["reason"] and "treated as false" in won["reason"]
    order = changed.loc[("Opportunity", "StageSortOrder")]
    assert order["row"] == 2 and order["value"] == "x" and "not a number" in order["reason"]
    amount = changed.loc[("OpportunityHistory", "Amount")]
    assert amount["row"] == 0 and amount["value"] == "abc"
    # The rest of the import is as without the bad cells (the funnel and the deals).
    clean = sf.imports.from_salesforce(*salesforce_exports())
    assert imp.funnel.stages == clean.funnel.stages
    assert sorted(imp.log.opportunity_ids()) == sorted(clean.log.opportunity_ids())


def _events_csv(path):
    pd.DataFrame(
        {
            "opportunity_id": ["a", "a", "b"],
            "stage": ["Discovery", "Won", "Discovery"],
            "time": ["2024-01-01", "2024-01-05", "2024-01-02"],
        }
    ).to_csv(path, index=False)


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("empty.csv", lambda p: p.write_bytes(b""), "empty (no header line)"),
        ("dir.csv", lambda p: p.mkdir(), "a directory, not a file"),
        ("loop.csv", lambda p: p.symlink_to(p.name), "symbolic links"),
        ("latin1.csv", lambda p: p.write_bytes(b"\xff\xfeo\x00"[2:] + b"\xe9t\xe9\n"), "UTF-8"),
        ("binary.csv", lambda p: p.write_bytes(bytes(range(256)) * 8), "no format reads it"),
    ],
)
def test_one_unusable_file_in_a_folder_is_a_note_naming_it(tmp_path, name, make, reason):
    _events_csv(tmp_path / "events.csv")
    make(tmp_path / name)
    imp = sf.imports.read(tmp_path, funnel=FUNNEL)
    assert imp.log.n_opportunities == 2  # the good file is read
    notes = imp.quality[(imp.quality["table"] == name) & (imp.quality["action"] == "note")]
    assert len(notes) == 1 and reason in notes["reason"].iloc[0], imp.quality
    assert not any(f.endswith(name) for f in imp.files)
    # Named explicitly, the same file is an error naming it.
    expected = {
        "binary.csv": "format not recognised",
        "dir.csv": "no CSV files in",
        "loop.csv": "cannot be read: a symbolic link to nothing",
    }.get(name, f"cannot be read: .*{re.escape(reason)}")
    with pytest.raises(sf.DataError, match=rf"{name}.*") as err:
        sf.imports.read(tmp_path / name, funnel=FUNNEL)
    assert re.search(expected, str(err.value)), str(err.value)


def test_utf16_export_is_read_by_its_byte_order_mark(tmp_path):
    # Excel's "Unicode text" is UTF-16 with a BOM, tab-separated.
    text = "opportunity_id\tstage\ttime\namélie-1\tDiscovery\t2024-01-01\nb\tWon\t2024-01-02\n"
    (tmp_path / "export.csv").write_text(text, encoding="utf-16")
    imp = sf.imports.read(tmp_path / "export.csv", funnel=FUNNEL)
    assert sorted(imp.log.opportunity_ids()) == ["amélie-1", "b"]


def test_rejected_cells_name_the_callers_column():
    frame = pd.DataFrame(
        {
            "o": pd.Series([[1], "x"], dtype=object),
            "stage": ["Discovery", "Discovery"],
            "time": ["2024-01-01", "2024-01-02"],
        }
    )
    imp = sf.imports.from_long(frame, FUNNEL, opportunity="o")
    bad = imp.quality[imp.quality["action"] == "rejected"]
    assert list(bad["row"]) == [0] and list(bad["column"]) == ["o"]
    assert bad["reason"].iloc[0].startswith("o value [1] is not a label")


def test_ids_that_read_as_missing_words_are_kept(tmp_path):
    # "NA" (an account in North America) or "None" is an id; only an empty cell is missing.
    path = _long_csv(tmp_path / "events.csv", ["NA", "None", "null", ""], amounts=[1, "n/a", 3, 4])
    imp = sf.imports.read(path, funnel=FUNNEL)
    assert sorted(imp.log.opportunity_ids()) == ["NA", "None", "null"]
    amount = imp.quality[imp.quality["column"] == "amount"]  # n/a: missing, counted as 0, reported
    assert list(amount["id"].dropna()) == ["None"]
