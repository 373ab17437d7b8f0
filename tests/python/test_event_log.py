"""EventLog.from_frame: conversion, sorting, validation with errors that name the row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

FUNNEL = sf.Funnel(["A", "B", "C"], won="Won", lost=["Lost", "Disqualified"])


def frame(rows, columns=("opportunity_id", "stage", "time")):
    return pd.DataFrame(rows, columns=list(columns))


def test_funnel_validation_and_repr():
    with pytest.raises(sf.InvalidFunnelError, match="'A' appears more than once"):
        sf.Funnel(["A", "B"], won="A", lost="Lost")
    with pytest.raises(sf.InvalidFunnelError, match="at least one open stage"):
        sf.Funnel([], won="Won", lost="Lost")
    assert FUNNEL.names == ["A", "B", "C", "Won", "Lost", "Disqualified"]
    assert "Disqualified" in repr(FUNNEL)


def test_sorted_interned_and_round_trips_to_frame():
    df = frame(
        [
            ("x", "B", "2024-01-05"),
            ("y", "A", "2024-01-02"),
            ("x", "A", "2024-01-01"),
            ("x", "Won", "2024-01-09"),
        ]
    )
    log = sf.EventLog.from_frame(FUNNEL, df)
    assert (log.n_events, log.n_opportunities) == (4, 2)
    out = log.to_frame()
    assert list(out["opportunity_id"]) == ["x", "x", "x", "y"]
    assert list(out["stage"]) == ["A", "B", "Won", "A"]
    assert out["time"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_times_tz_aware_naive_and_iso_agree():
    base = pd.to_datetime(["2024-03-01 10:00", "2024-03-02 12:30"])
    rows = {"opportunity_id": [1, 1], "stage": ["A", "Won"]}
    naive = sf.EventLog.from_frame(FUNNEL, pd.DataFrame({**rows, "time": base}))
    aware = sf.EventLog.from_frame(
        FUNNEL, pd.DataFrame({**rows, "time": base.tz_localize("UTC").tz_convert("Europe/Paris")})
    )
    iso = sf.EventLog.from_frame(
        FUNNEL,
        pd.DataFrame({**rows, "time": ["2024-03-01T10:00:00Z", "2024-03-02T12:30:00+00:00"]}),
    )
    expected = [
        pd.Timestamp("2024-03-01 10:00", tz="UTC").value // 10**9,
        pd.Timestamp("2024-03-02 12:30", tz="UTC").value // 10**9,
    ]
    for log in (naive, aware, iso):
        assert list(np.asarray(log.core.times)) == expected


def test_unknown_stage_names_row_stage_and_funnel():
    df = frame([(1, "A", "2024-01-01"), (1, "Demo", "2024-01-02")])
    with pytest.raises(sf.UnknownStageError) as info:
        sf.EventLog.from_frame(FUNNEL, df)
    assert info.value.row == 1 and info.value.column == "stage"
    assert (
        "row 1" in str(info.value)
        and "'Demo'" in str(info.value)
        and "'default'" in str(info.value)
    )
    assert isinstance(info.value, sf.DataError) and isinstance(info.value, ValueError)


def test_unparseable_time_names_row_and_value():
    df = frame([(1, "A", "2024-01-01"), (1, "B", "not a date")])
    with pytest.raises(sf.DataError, match=r"row 1: time value 'not a date' is not a time") as info:
        sf.EventLog.from_frame(FUNNEL, df)
    assert info.value.row == 1


def test_missing_time_and_bad_amounts():
    df = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 2],
            "stage": ["A", "B", "A"],
            "time": pd.to_datetime(["2024-01-01", None, "2024-01-01"]),
        }
    )
    with pytest.raises(sf.DataError, match="row 1: time is missing"):
        sf.EventLog.from_frame(FUNNEL, df)
    for bad, message in (
        (np.nan, "amount is missing"),
        (-5.0, "amount must be a finite number >= 0, got -5"),
        (np.inf, "amount must be a finite number >= 0, got inf"),
    ):
        df = frame(
            [(1, "A", "2024-01-01", 10.0), (2, "A", "2024-01-01", bad)],
            ("opportunity_id", "stage", "time", "amount"),
        )
        with pytest.raises(sf.DataError, match=f"row 1: {message}") as info:
            sf.EventLog.from_frame(FUNNEL, df, amount="amount")
        assert info.value.column == "amount"


def test_missing_column_and_non_numeric_amount():
    df = frame([(1, "A", "2024-01-01")])
    with pytest.raises(sf.DataError, match="column 'owner' is not in the frame"):
        sf.EventLog.from_frame(FUNNEL, df, owner="owner")
    df["amount"] = ["ten"]
    with pytest.raises(sf.DataError, match="row 0: amount value 'ten' is not a number"):
        sf.EventLog.from_frame(FUNNEL, df, amount="amount")


def test_index_label_is_added_to_row_errors():
    df = frame([(1, "A", "2024-01-01"), (1, "Nope", "2024-01-02")])
    df.index = ["first", "second"]
    with pytest.raises(sf.UnknownStageError, match="index label 'second'"):
        sf.EventLog.from_frame(FUNNEL, df)


def test_event_after_terminal_is_an_error_or_a_reopening():
    df = frame([(7, "A", "2024-01-01"), (7, "Lost", "2024-01-02"), (7, "B", "2024-01-05")])
    with pytest.raises(
        sf.DataError,
        match=r"row 2: opportunity '7' has stage 'B' after its terminal stage 'Lost' at row 1",
    ):
        sf.EventLog.from_frame(FUNNEL, df)
    log = sf.EventLog.from_frame(FUNNEL, df, after_terminal="reopen")
    assert log.quality["reopened"] == 1 and log.n_events == 3


def test_duplicates_are_collapsed_and_counted():
    df = frame([(1, "A", "2024-01-01"), (1, "A", "2024-01-01"), (1, "B", "2024-01-02")])
    log = sf.EventLog.from_frame(FUNNEL, df)
    assert log.n_events == 2
    assert log.quality["duplicates_collapsed"] == 1
    assert log.quality["rows_read"] == 3


def test_lenient_mode_returns_exactly_the_bad_rows():
    df = pd.DataFrame(
        {
            "opportunity_id": ["a", "a", "b", None, "c", "c", "c"],
            "stage": ["A", "Demo", "A", "A", "A", "Won", "B"],
            "time": [
                "2024-01-01",
                "2024-01-02",
                "2024-01-01",
                "2024-01-01",
                "2024-01-01",
                "2024-01-03",
                "2024-01-04",
            ],
            "amount": [1.0, 2.0, -1.0, 3.0, 4.0, 4.0, 4.0],
        }
    )
    log = sf.EventLog.from_frame(FUNNEL, df, amount="amount", validation="lenient")
    rej = log.rejected
    assert list(rej["row"]) == [1, 2, 3, 6]
    assert list(rej["rejected_column"]) == ["stage", "amount", "opportunity_id", "stage"]
    assert rej["reason"].str.len().min() > 10
    # Every other row is kept.
    assert log.n_events == 3 and log.n_opportunities == 2
    assert log.quality["rejected"] == 4


def test_field_history_keeps_changes_only():
    df = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 1, 1],
            "stage": ["A", "B", "C", "Won"],
            "time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]),
            "amount": [100.0, 100.0, 80.0, 80.0],
            "owner": ["ann", "ann", "bob", "bob"],
        }
    )
    log = sf.EventLog.from_frame(FUNNEL, df, amount="amount", owner="owner")
    offsets, _times, values = log.core.amount_history
    assert list(np.asarray(values)) == [100.0, 80.0]
    assert list(np.asarray(offsets)) == [0, 2]
    _, _, owners = log.core.owner_history
    assert [log.core.owner_names[i] for i in np.asarray(owners)] == ["ann", "bob"]


def test_append_equals_one_build():
    rows = [
        (1, "A", "2024-01-01"),
        (2, "A", "2024-01-02"),
        (1, "B", "2024-01-04"),
        (2, "Lost", "2024-01-05"),
        (1, "Won", "2024-01-07"),
    ]
    whole = sf.EventLog.from_frame(FUNNEL, frame(rows))
    first = sf.EventLog.from_frame(FUNNEL, frame(rows[:3]))
    both = first.append(frame(rows[3:]))
    assert both.core == whole.core


def test_attributes_constant_per_opportunity():
    df = frame(
        [(1, "A", "2024-01-01", "smb"), (1, "B", "2024-01-02", "ent")],
        ("opportunity_id", "stage", "time", "segment"),
    )
    with pytest.raises(
        sf.DataError,
        match="row 1: attribute 'segment' of opportunity '1' is 'ent' but was 'smb' at row 0",
    ):
        sf.EventLog.from_frame(FUNNEL, df, attributes=["segment"])


def test_columns_are_not_copied_when_dtypes_match():
    n = 1000
    df = pd.DataFrame(
        {
            "opportunity_id": np.arange(n, dtype=np.int64),
            "stage": pd.Categorical(["A"] * n, categories=["A", "B"]),
            "time": np.full(n, 1_700_000_000, dtype=np.int64),
        }
    )
    log = sf.EventLog.from_frame(FUNNEL, df)
    assert log.n_events == n
    assert log.memory_bytes <= 16 * n + 64 * n  # events plus per-opportunity columns


def test_append_numbers_rows_of_the_new_frame_and_flags_existing_events():
    base = sf.EventLog.from_frame(FUNNEL, frame([(1, "A", "2024-01-01"), (1, "B", "2024-01-06")]))
    with pytest.raises(sf.DataError, match=r"^row 1: stage 'Nope'") as info:
        base.append(frame([(2, "A", "2024-01-02"), (2, "Nope", "2024-01-03")]))
    assert info.value.row == 1
    # An earlier Lost appended before the existing B event makes that event invalid.
    lenient = base.append(frame([(1, "Lost", "2024-01-03")]), validation="lenient")
    rej = lenient.rejected
    assert list(rej["row"]) == [-1]
    assert "existing event 1" not in rej["reason"].iloc[0]  # the reason, without the row label
    assert "after its terminal stage 'Lost' at row 0" in rej["reason"].iloc[0]
    assert lenient.n_events == 2


def _changes_fixture():
    day = lambda d: pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d)  # noqa: E731
    events = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 1],
            "stage": ["A", "B", "Won"],
            "time": [day(0), day(5), day(9)],
            "amount": [100.0, 100.0, 100.0],
            "owner": ["ann", "ann", "ann"],
        }
    )
    changes = pd.DataFrame(
        {
            "opportunity_id": [1, 1],
            "time": [day(3), day(7)],
            "amount": [80.0, np.nan],  # NaN: amount not changed in this row
            "owner": [None, "bob"],
        }
    )
    return events, changes, day


def test_changes_table_merges_field_history_between_events():
    events, changes, day = _changes_fixture()
    log = sf.EventLog.from_frame(FUNNEL, events, amount="amount", owner="owner", changes=changes)
    s = lambda d: day(d).value // 10**9  # noqa: E731
    _, times, values = log.core.amount_history
    # Events say 100 at days 0, 5, 9; the change says 80 at day 3: 100 -> 80 -> 100.
    assert list(np.asarray(times)) == [s(0), s(3), s(5)]
    assert list(np.asarray(values)) == [100.0, 80.0, 100.0]
    _, times, owners = log.core.owner_history
    assert [log.core.owner_names[i] for i in np.asarray(owners)] == ["ann", "bob", "ann"]
    assert list(np.asarray(times)) == [s(0), s(7), s(9)]
    # As of day 8 the B stay (entered day 5) is open and belongs to bob, the owner at day 8.
    m = sf.fit(log, as_of=day(8), groups=["owner"], prior=0)
    assert ("bob",) in m.groups and ("ann",) in m.groups
    assert m.stage_summary(group="bob").loc["B", "censored"] == 1
    assert m.stage_summary(group="ann").loc["A", "exits"] == 1


def test_changes_table_errors_name_the_changes_row():
    events, changes, day = _changes_fixture()
    bad = pd.concat(
        [changes, pd.DataFrame({"opportunity_id": [9], "time": [day(2)], "amount": [5.0]})],
        ignore_index=True,
    )
    with pytest.raises(
        sf.DataError, match=r"changes row 2: opportunity '9' has no stage events"
    ) as info:
        sf.EventLog.from_frame(FUNNEL, events, amount="amount", owner="owner", changes=bad)
    assert info.value.row == 2 and info.value.column == "changes.opportunity_id"
    log = sf.EventLog.from_frame(
        FUNNEL, events, amount="amount", owner="owner", changes=bad, validation="lenient"
    )
    rej = log.rejected
    assert list(rej["source"]) == ["changes"] and list(rej["row"]) == [2]


def test_append_keeps_changes_between_events():
    events, changes, _day = _changes_fixture()
    whole = sf.EventLog.from_frame(FUNNEL, events, amount="amount", owner="owner", changes=changes)
    first = sf.EventLog.from_frame(
        FUNNEL, events.iloc[:2], amount="amount", owner="owner", changes=changes.iloc[:1]
    )
    both = first.append(events.iloc[2:], changes=changes.iloc[1:])
    assert both.core == whole.core


# -- issue 13, item 11: lenient is lenient for cells that cannot be parsed -------------------------
def _messy_export() -> pd.DataFrame:
    """A text export: every column object dtype, with one bad cell of each class."""
    return pd.DataFrame(
        {
            "opportunity_id": ["a", "a", "b", "b", "c", "c", "d"],
            "stage": ["A", "B", "A", ["B"], "A", "Won", "A"],
            "time": [
                "2024-01-01",
                "yesterday",
                "2024-01-01",
                "2024-01-02",
                "2024-01-01",
                "2024-01-05",
                "2024-01-03",
            ],
            "amount": ["100", "200", "n/a", "50", "5,000", "70", "80.5"],
            "owner": ["ann", "ann", "bob", "bob", "cid", ["cid"], "dan"],
        },
        index=pd.Index([f"r{i}" for i in range(7)], name="line"),
    )


def test_lenient_rejects_every_unparseable_cell_and_keeps_the_other_rows():
    df = _messy_export()
    log = sf.EventLog.from_frame(FUNNEL, df, amount="amount", owner="owner", validation="lenient")
    rej = log.rejected
    # Worked out by hand: r1 time 'yesterday', r2 amount 'n/a', r3 stage ['B'], r4 amount
    # '5,000', r5 owner ['cid']; r0 and r6 are kept.
    assert list(rej["row"]) == [1, 2, 3, 4, 5]
    assert list(rej.index) == ["r1", "r2", "r3", "r4", "r5"]
    assert list(rej["rejected_column"]) == ["time", "amount", "stage", "amount", "owner"]
    assert "'yesterday'" in rej["reason"].iloc[0] and "not a time" in rej["reason"].iloc[0]
    assert "'n/a'" in rej["reason"].iloc[1] and "not a number" in rej["reason"].iloc[1]
    assert "['B']" in rej["reason"].iloc[2]
    assert "'5,000'" in rej["reason"].iloc[3]
    assert "['cid']" in rej["reason"].iloc[4]
    out = log.to_frame()
    assert list(out["opportunity_id"]) == ["a", "d"]
    assert list(out["stage"]) == ["A", "A"]
    assert log.quality["rejected"] == 5 and log.quality["rows_kept"] == 2
    # The kept rows' amounts: 100 (r0) and 80.5 (r6).
    assert list(log.core.amount_history[2]) == [100.0, 80.5]


def test_strict_names_the_first_bad_row_column_value_and_what_was_expected():
    df = _messy_export()
    with pytest.raises(sf.DataError) as err:
        sf.EventLog.from_frame(FUNNEL, df, amount="amount", owner="owner")
    assert (err.value.row, err.value.column) == (1, "time")
    assert "row 1:" in str(err.value) and "'yesterday'" in str(err.value)
    assert "expected ISO 8601" in str(err.value) and "'r1'" in str(err.value)
    # The first bad row is what counts, whatever the check: an unknown stage before it wins.
    df2 = df.copy()
    df2.iloc[0, df2.columns.get_loc("stage")] = "Demo"
    with pytest.raises(sf.UnknownStageError) as err2:
        sf.EventLog.from_frame(FUNNEL, df2, amount="amount", owner="owner")
    assert err2.value.row == 0
    df3 = df.iloc[[0, 2]]
    with pytest.raises(sf.DataError, match=r"row 1: amount value 'n/a' is not a number") as err3:
        sf.EventLog.from_frame(FUNNEL, df3, amount="amount")
    assert err3.value.column == "amount"


def test_lenient_unparseable_cells_in_renamed_columns_and_append():
    df = pd.DataFrame(
        {
            "Id": ["a", "a", "b"],
            "Stage": ["A", "B", "A"],
            "When": ["2024-01-01", "2024-01-02", "tomorrow"],
            "Closes": ["2024-03-01", "someday", None],
        }
    )
    log = sf.EventLog.from_frame(
        FUNNEL,
        df,
        opportunity="Id",
        stage="Stage",
        time="When",
        close_date="Closes",
        validation="lenient",
    )
    assert list(log.rejected["row"]) == [1, 2]
    assert list(log.rejected["rejected_column"]) == ["Closes", "When"]
    more = pd.DataFrame(
        {"Id": ["a", "a"], "Stage": ["B", "Won"], "When": ["noon", "2024-01-09"], "Closes": None}
    )
    appended = log.append(more, validation="lenient")
    assert list(appended.rejected["row"]) == [0]
    assert appended.rejected["rejected_column"].tolist() == ["When"]
    assert list(appended.to_frame()["stage"]) == ["A", "Won"]
    with pytest.raises(sf.DataError, match="row 0: When value 'noon'"):
        log.append(more)


def test_nullable_integer_ids_with_missing_values_name_the_row():
    df = frame([(1, "A", "2024-01-01"), (None, "A", "2024-01-02"), (2, "A", "2024-01-03")])
    df["opportunity_id"] = df["opportunity_id"].astype("Int64")
    with pytest.raises(sf.DataError, match="row 1: opportunity_id is missing") as err:
        sf.EventLog.from_frame(FUNNEL, df)
    assert err.value.column == "opportunity_id"
    log = sf.EventLog.from_frame(FUNNEL, df, validation="lenient")
    assert list(log.rejected["row"]) == [1]
    assert list(log.opportunity_ids()) == [1, 2]


def test_activity_log_lenient_rejects_unparseable_cells():
    events = frame([(1, "A", "2024-01-01"), (1, "B", "2024-01-05")])
    log = sf.EventLog.from_frame(FUNNEL, events)
    acts = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 1, 1],
            "time": ["2024-01-02", "yesterday", "2024-01-06", "2024-01-07"],
            "kind": ["call", "call", ["email"], "demo"],
            "buyer": [True, False, "maybe", False],
        }
    )
    a = sf.ActivityLog.from_frame(log, acts, buyer="buyer", validation="lenient")
    assert list(a.rejected["row"]) == [1, 2]
    assert list(a.rejected["rejected_column"]) == ["time", "kind"]
    # Row 2 has a bad kind and a bad buyer flag: reported once, for the first column read.
    assert "'yesterday'" in a.rejected["reason"].iloc[0]
    out = a.to_frame()
    assert list(out["kind"]) == ["call", "demo"]
    assert list(out["stage"]) == ["A", "B"]
    with pytest.raises(sf.DataError, match="row 1: time value 'yesterday'") as err:
        sf.ActivityLog.from_frame(log, acts, buyer="buyer")
    assert err.value.column == "time"
    only_buyer = acts.iloc[[0, 3]].assign(buyer=[True, "maybe"]).reset_index(drop=True)
    b = sf.ActivityLog.from_frame(log, only_buyer, buyer="buyer", validation="lenient")
    assert list(b.rejected["row"]) == [1] and list(b.rejected["rejected_column"]) == ["buyer"]
    assert "'maybe'" in b.rejected["reason"].iloc[0]


# -- issue 13, item 4: one stage entry, two different amounts ---------------------------------------
def test_same_stage_entry_with_different_amounts_strict_names_both_rows():
    df = frame(
        [
            ("x", "A", "2024-01-01", 100.0),
            ("x", "B", "2024-01-02", 100.0),
            ("x", "B", "2024-01-02", 250.0),
        ],
        columns=("opportunity_id", "stage", "time", "amount"),
    )
    with pytest.raises(sf.DataError) as err:
        sf.EventLog.from_frame(FUNNEL, df, amount="amount")
    assert (err.value.row, err.value.column) == (1, "amount")
    assert "row 1 and row 2" in str(err.value) and "(100 and 250)" in str(err.value)


def test_same_stage_entry_lenient_keeps_the_later_row_and_reports_the_earlier():
    df = frame(
        [
            ("x", "A", "2024-01-01", 100.0, "ann"),
            ("x", "B", "2024-01-02", 100.0, "ann"),
            ("y", "A", "2024-01-01", 10.0, "bob"),
            ("x", "B", "2024-01-02", 250.0, "ann"),
            ("y", "A", "2024-01-01", 10.0, "bob"),  # identical to row 2: collapsed
        ],
        columns=("opportunity_id", "stage", "time", "amount", "owner"),
    )
    log = sf.EventLog.from_frame(FUNNEL, df, amount="amount", owner="owner", validation="lenient")
    assert list(log.rejected["row"]) == [1]
    assert list(log.rejected["rejected_column"]) == ["amount"]
    assert "the later row is kept" in log.rejected["reason"].iloc[0]
    assert log.quality["duplicates_collapsed"] == 1
    assert log.n_events == 3
    # x's amount: 100 from Jan 1, then the later row's 250 from Jan 2 (pandas: the last row of
    # each (opportunity, stage, time), kept in order of first appearance).
    expected = df.drop_duplicates(["opportunity_id", "stage", "time"], keep="last")
    x = expected[expected["opportunity_id"] == "x"]
    offsets, _, values = log.core.amount_history
    assert list(values[offsets[0] : offsets[1]]) == list(x["amount"])


# -- issue 13, item 10: text columns interned in C++ give the log that categoricals give ----------
def _text_frame() -> pd.DataFrame:
    """String ids, stages, owners and a segment, with missing values in each text column."""
    rng = np.random.default_rng(7)
    n = 400
    ids = np.array([f"OPP-{i:04d}" for i in rng.integers(0, 120, n)], dtype=object)
    stages = np.array(["A", "B", "C", "Won", "Lost", "Demo ünï"], dtype=object)[
        rng.choice(6, n, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    ]
    owners = np.array(["ann", "bob", "", "a" * 20, "Zoë Ångström"], dtype=object)[
        rng.integers(0, 5, n)
    ]
    segment = np.array(["smb", "enterprise"], dtype=object)[rng.integers(0, 2, n)]
    for col, p in ((ids, 0.02), (stages, 0.03), (owners, 0.05)):
        col[rng.random(n) < p] = None
    per_opp = {o: s for o, s in zip(ids, segment)}  # constant per opportunity
    return pd.DataFrame(
        {
            "opportunity_id": ids,
            "stage": stages,
            "time": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 86400 * 200, n), unit="s"),
            "owner": owners,
            "segment": [per_opp[o] for o in ids],
        }
    )


TEXT_DTYPES = {
    "object": object,
    "str (pyarrow)": pd.StringDtype("pyarrow", na_value=np.nan),
    "string (pyarrow)": pd.StringDtype("pyarrow"),
    "str (python)": pd.StringDtype("python", na_value=np.nan),
    "string (python)": pd.StringDtype("python"),
    "ArrowDtype": "string[pyarrow]",
}


def _build(df: pd.DataFrame) -> sf.EventLog:
    return sf.EventLog.from_frame(
        FUNNEL,
        df,
        owner="owner",
        attributes=["segment"],
        validation="lenient",
        after_terminal="reopen",
    )


def _categorical(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns as categoricals with categories in order of first appearance (their codes
    go to the core as they are: the reference path, without any interning of text)."""
    return df.assign(
        **{c: pd.Categorical(df[c], categories=pd.unique(df[c].dropna())) for c in columns}
    )


@pytest.mark.parametrize("dtype", list(TEXT_DTYPES), ids=list(TEXT_DTYPES))
def test_text_columns_give_the_log_of_categorical_columns(dtype):
    pa = pytest.importorskip("pyarrow")
    base = _text_frame()
    text = ["opportunity_id", "stage", "owner", "segment"]
    target = pd.ArrowDtype(pa.string()) if dtype == "ArrowDtype" else TEXT_DTYPES[dtype]
    as_dtype = base.astype(dict.fromkeys(text, target))
    # The whole frame, and rows 7 on (a slice: Arrow arrays with an offset).
    for df, same in ((as_dtype, base), (as_dtype.iloc[7:], base.iloc[7:])):
        ref = _build(_categorical(same, text))
        got = _build(df)
        assert got.core == ref.core
        pd.testing.assert_frame_equal(got.to_frame(), ref.to_frame())
        assert list(got.rejected["row"]) == list(ref.rejected["row"])
        assert list(got.rejected["reason"]) == list(ref.rejected["reason"])
        assert got.core.owner_names == list(pd.unique(same["owner"].dropna()))
    # Missing ids, stages and owners are rejected rows, worked out with pandas.
    missing = base[text[:3]].isna().any(axis=1).to_numpy()
    ref = _build(_categorical(base, text))
    assert set(np.flatnonzero(missing)) <= set(ref.rejected["row"])
    assert missing.sum() > 10


def test_text_columns_in_several_arrow_chunks():
    pa = pytest.importorskip("pyarrow")
    chunked = pa.chunked_array(
        [pa.array(["A", None, "B"]), pa.array([], pa.string()), pa.array(["B", "A", "Won"])]
    )
    wide = pa.chunked_array([c.cast(pa.large_string()) for c in chunked.chunks], pa.large_string())
    df = pd.DataFrame(
        {
            "opportunity_id": [1, 1, 1, 2, 2, 1],
            "time": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-02", "2024-01-09"]
            ),
        }
    )
    reference = sf.EventLog.from_frame(
        FUNNEL, df.assign(stage=["A", None, "B", "B", "A", "Won"]), validation="lenient"
    )
    assert list(reference.rejected["row"]) == [1]
    for stage in (
        pd.arrays.ArrowStringArray(chunked),
        pd.array(wide, dtype=pd.ArrowDtype(pa.large_string())),
    ):
        got = sf.EventLog.from_frame(FUNNEL, df.assign(stage=stage), validation="lenient")
        assert got.core == reference.core
        assert list(got.rejected["row"]) == [1]


def test_text_interning_matches_pandas_factorize():
    from smartfunnel import _convert

    values = ["b", None, "a", "b", "ünï", "", np.nan, "x" * 30, "x" * 30, "Negotiation", "Won", "a"]
    for dtype in TEXT_DTYPES.values():
        s = pd.Series(values, dtype=dtype)
        codes, names = _convert.codes_and_names(s, "stage")
        expected_codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=True)
        assert codes.tolist() == expected_codes.tolist()
        assert names == [str(u) for u in uniques]
    # Objects that are not text (numbers, mixed) keep pandas' own factorize.
    codes, names = _convert.codes_and_names(pd.Series([3, "a", 3, None], dtype=object), "stage")
    assert codes.tolist() == [0, 1, 0, -1] and names == ["3", "a"]
