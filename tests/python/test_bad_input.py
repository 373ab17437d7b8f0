"""The bad-input matrix from Python: every class of malformed input, with its error or its
documented handling (the C++ side is tests/cpp/bad_input_test.cpp; docs/guide/reliability.md
lists both)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

import smartfunnel as sf

FUNNEL = sf.Funnel(["A", "B"], won="Won", lost="Lost")
COLUMNS = ["opportunity_id", "stage", "time"]

# The supported range of times, worked out by hand: 0001-01-01 and 9999-12-31T23:59:59 UTC.
YEAR_1 = -719_162 * 86_400
YEAR_10000 = 2_932_897 * 86_400


def rows(*r: tuple) -> pd.DataFrame:
    return pd.DataFrame(list(r), columns=COLUMNS)


def with_amount(bad: Any) -> pd.DataFrame:
    df = rows((1, "A", "2024-01-01"), (1, "B", "2024-01-02"))
    df["amount"] = [10.0, bad]
    return df


def check_sorted(log: sf.EventLog) -> None:
    out = log.to_frame()
    assert list(out["stage"]) == ["A", "B", "Won"]
    assert out["time"].is_monotonic_increasing


def check_times(first: int, last: int) -> Callable[[sf.EventLog], None]:
    def check(log: sf.EventLog) -> None:
        times = np.asarray(log.core.times)
        assert (int(times.min()), int(times.max())) == (first, last)

    return check


def check_huge_ids(log: sf.EventLog) -> None:
    assert log.n_opportunities == 2
    assert set(log.to_frame()["opportunity_id"]) == {2**63 - 1, -(2**63)}


# name, frame, keyword arguments of from_frame, then either an exception type with the column and
# row it must name (row None: not tied to one row), or a check of the documented handling.
CASES: list[tuple[str, Callable[[], pd.DataFrame], dict, Any, str, Any]] = [
    ("unknown_stage", lambda: rows((1, "A", "2024-01-01"), (1, "Demo", "2024-01-02")), {},
     sf.UnknownStageError, "stage", 1),
    ("unsorted_rows_are_sorted",
     lambda: rows((1, "Won", "2024-01-05"), (1, "A", "2024-01-01"), (1, "B", "2024-01-03")), {},
     None, "", check_sorted),
    ("duplicates_are_collapsed",
     lambda: rows((1, "A", "2024-01-01"), (1, "A", "2024-01-01"), (1, "B", "2024-01-02")), {},
     None, "", lambda log: (log.n_events, log.quality["duplicates_collapsed"]) == (2, 1)),
    ("nan_amount", lambda: with_amount(np.nan), {"amount": "amount"}, sf.DataError, "amount", 1),
    ("infinite_amount", lambda: with_amount(np.inf), {"amount": "amount"}, sf.DataError, "amount", 1),
    ("negative_amount", lambda: with_amount(-1.0), {"amount": "amount"}, sf.DataError, "amount", 1),
    ("times_before_1970_are_valid", lambda: rows((1, "A", "1960-01-01"), (1, "Won", "1969-12-31")), {},
     None, "", check_times(-315_619_200, -86_400)),
    ("far_future_inside_the_range_is_valid",
     lambda: rows((1, "A", YEAR_1), (1, "B", YEAR_10000 - 1)), {},
     None, "", check_times(YEAR_1, YEAR_10000 - 1)),
    ("year_10000_epoch_seconds", lambda: rows((1, "A", 1_704_067_200), (1, "B", YEAR_10000)), {},
     sf.DataError, "time", 1),
    ("time_beyond_int64_as_float", lambda: rows((1, "A", 1.7e9), (1, "B", 1e300)), {},
     sf.DataError, "time", 1),
    ("empty_log", lambda: rows(), {}, None, "", lambda log: (log.n_events, log.n_opportunities) == (0, 0)),
    ("one_event_deals_are_open", lambda: rows((1, "A", "2024-01-01"), (2, "B", "2024-01-02")), {},
     None, "", lambda log: (log.n_events, log.n_opportunities) == (2, 2)),
    ("event_after_terminal",
     lambda: rows((1, "A", "2024-01-01"), (1, "Lost", "2024-01-02"), (1, "B", "2024-01-03")), {},
     sf.DataError, "stage", 2),
    ("event_after_terminal_reopened",
     lambda: rows((1, "A", "2024-01-01"), (1, "Lost", "2024-01-02"), (1, "B", "2024-01-03")),
     {"after_terminal": "reopen"}, None, "", lambda log: log.quality["reopened"] == 1),
    ("unknown_opportunity_in_activities", rows, {}, "n/a", "", None),  # checked on an ActivityLog
    ("time_of_a_wrong_dtype", lambda: rows((1, "A", "2024-01-01"), (1, "B", True)), {},
     sf.DataError, "time", 1),
    ("amount_of_a_wrong_dtype", lambda: with_amount("ten"), {"amount": "amount"}, sf.DataError, "amount", 1),
    ("missing_column", lambda: rows((1, "A", "2024-01-01")), {"owner": "owner"}, sf.DataError, "owner", None),
    ("non_utf8_stage_name", lambda: rows((1, "A", "2024-01-01"), (1, b"A\xff", "2024-01-02")), {},
     sf.UnknownStageError, "stage", 1),
    ("non_utf8_surrogates_in_ids",
     # object dtype: pandas' pyarrow-backed strings cannot even hold surrogates
     lambda: pd.DataFrame([("plain", "A", "2024-01-01"), ("deal-\udcff", "B", "2024-01-02")],
                          columns=COLUMNS, dtype=object), {},
     sf.DataError, "opportunity_id", 1),
    ("non_utf8_bytes_ids_are_kept_as_their_text",
     lambda: rows((b"deal-\xc3\x28", "A", "2024-01-01"), (b"\xff", "B", "2024-01-02")), {},
     None, "", lambda log: sorted(log.to_frame()["opportunity_id"]) == ["b'\\xff'", "b'deal-\\xc3('"]),
    ("huge_integer_ids",
     lambda: pd.DataFrame({"opportunity_id": np.array([2**63 - 1, -(2**63)], dtype=np.int64),
                           "stage": ["A", "B"], "time": ["2024-01-01", "2024-01-02"]}), {},
     None, "", check_huge_ids),
    ("unsigned_id_beyond_int64",
     lambda: pd.DataFrame({"opportunity_id": np.array([1, 2**64 - 1], dtype=np.uint64),
                           "stage": ["A", "B"], "time": ["2024-01-01", "2024-01-02"]}), {},
     sf.DataError, "opportunity_id", 1),
    # Issue 13, items 11 and 4 (lenient for each of these: tests/python/test_bad_input.py below).
    ("time_text_not_a_time", lambda: rows((1, "A", "2024-01-01"), (1, "B", "yesterday")), {},
     sf.DataError, "time", 1),
    ("amount_text_n_a", lambda: with_amount("n/a"), {"amount": "amount"}, sf.DataError, "amount", 1),
    ("amount_with_thousands_separator", lambda: with_amount("5,000"), {"amount": "amount"},
     sf.DataError, "amount", 1),
    ("list_in_a_stage_cell", lambda: rows((1, "A", "2024-01-01"), (1, ["B"], "2024-01-02")), {},
     sf.DataError, "stage", 1),
    ("missing_nullable_integer_id",
     lambda: rows((1, "A", "2024-01-01"), (None, "B", "2024-01-02")).astype({"opportunity_id": "Int64"}),
     {}, sf.DataError, "opportunity_id", 1),
    ("same_stage_entry_with_different_amounts",
     lambda: rows((1, "A", "2024-01-01"), (1, "A", "2024-01-01")).assign(amount=[10.0, 20.0]),
     {"amount": "amount"}, sf.DataError, "amount", 0),
    # Issue 13, items 1 and 5: ids and money keep what the export says.
    ("true_false_ids", lambda: rows((True, "A", "2024-01-01"), (False, "B", "2024-01-02")), {},
     sf.DataError, "opportunity_id", None),
    ("true_false_amount_column", lambda: with_amount(False).astype({"amount": bool}),
     {"amount": "amount"}, sf.DataError, "amount", None),
    ("float_ids_beyond_2_53_lost_digits",
     lambda: rows((1.2345678901234568e17, "A", "2024-01-01"), (np.nan, "B", "2024-01-02")), {},
     sf.DataError, "opportunity_id", 0),
    ("integral_float_ids_with_a_blank_are_integers",
     lambda: rows((7.0, "A", "2024-01-01"), (8.0, "B", "2024-01-02"), (np.nan, "B", "2024-01-03")),
     {"validation": "lenient"}, None, "",
     lambda log: sorted(log.opportunity_ids()) == ["7", "8"] and len(log.rejected) == 1),
]  # fmt: skip

LENIENT = [c for c in CASES if c[0] in {
    "time_text_not_a_time", "amount_text_n_a", "amount_with_thousands_separator",
    "list_in_a_stage_cell", "missing_nullable_integer_id", "same_stage_entry_with_different_amounts",
}]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "kwargs", "error", "column", "row"), LENIENT,
                         ids=[c[0] for c in LENIENT])  # fmt: skip
def test_lenient_rejects_the_bad_row_and_keeps_the_other(
    name: str, make: Callable, kwargs: dict, error: Any, column: str, row: int
) -> None:
    log = sf.EventLog.from_frame(FUNNEL, make(), validation="lenient", **kwargs)
    assert list(log.rejected["row"]) == [row]
    assert list(log.rejected["rejected_column"]) == [column]
    assert log.n_events == 1


@pytest.mark.parametrize(
    ("name", "make", "kwargs", "error", "column", "expect"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input(
    name: str, make: Callable, kwargs: dict, error: Any, column: str, expect: Any
) -> None:
    if error == "n/a":  # activities: an id the event log does not know is an error naming the row
        log = sf.EventLog.from_frame(FUNNEL, make(), **kwargs)
        acts = pd.DataFrame({"opportunity_id": [999_999], "time": ["2024-01-02"], "kind": ["call"]})
        if log.core.string_ids:
            acts["opportunity_id"] = acts["opportunity_id"].astype(str)
        with pytest.raises(
            sf.DataError, match="row 0: opportunity '999999' is not in the event log"
        ) as info:
            sf.ActivityLog.from_frame(log, acts)
        assert info.value.column == "opportunity_id" and info.value.row == 0
        return
    df = make()
    if error is None:
        log = sf.EventLog.from_frame(FUNNEL, df, **kwargs)
        result = expect(log)
        assert result is None or result is True
        return
    with pytest.raises(error) as info:
        sf.EventLog.from_frame(FUNNEL, df, **kwargs)
    assert info.value.column == column, str(info.value)
    assert info.value.row == (-1 if expect is None else expect) or info.value.row == expect, str(
        info.value
    )


def test_datetime_objects_beyond_pandas_range_are_rejected_or_kept_exactly() -> None:
    # Python datetimes reach years 1..9999, the supported range; pandas' datetime64[ns] does not,
    # so such values are not silently shifted: they are read or refused with the row named.
    df = rows((1, "A", dt.datetime(2024, 1, 1)), (1, "B", dt.datetime(9999, 12, 31)))
    try:
        log = sf.EventLog.from_frame(FUNNEL, df)
    except sf.DataError as e:
        assert e.row == 1 and e.column == "time"
    else:
        assert int(np.asarray(log.core.times).max()) == YEAR_10000 - 86_400


# Archives and save targets (issue 13; details in test_persistence.py): one row per class.
def test_bad_archives_and_save_targets(tmp_path) -> None:
    import struct

    from smartfunnel import _core

    def crc32c(data: bytes) -> int:  # from the definition (RFC 3720)
        crc = 0xFFFFFFFF
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF

    def reseal(b: bytes) -> bytes:
        out = bytearray(b)
        struct.pack_into("<I", out, 28, crc32c(bytes(out[40:])))
        struct.pack_into("<I", out, 36, crc32c(bytes(out[:36])))
        return bytes(out)

    text = _core.dumps(FUNNEL, "text")
    with pytest.raises(sf.CorruptArchiveError, match="stage name 0 is not valid UTF-8"):
        _core.loads(reseal(text.replace(b" 1 A", b" 1 \xff")))
    garbage = bytearray(text)
    struct.pack_into("<H", garbage, 12, 0xBEEF)
    with pytest.raises(sf.CorruptArchiveError, match="format version 48879"):
        _core.loads(reseal(bytes(garbage)))
    with pytest.raises(OSError, match="character device"):
        FUNNEL.save("/dev/null")
    ro = tmp_path / "ro"
    FUNNEL.save(ro)
    ro.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        FUNNEL.save(ro)


# Options out of range (issue 13, items 8 and 12): one short line naming the option and what it
# accepts, before any work (no pybind11 signature dump, no minutes of work, no unbounded memory).
QUARTER = ("2025-07-01", "2025-09-30")
OPTION_CASES: list[tuple[str, str, dict, str]] = [
    ("fit_draws_negative", "fit", {"draws": -1}, r"^draws must be an integer in \[0, 100,000\], got -1$"),
    ("fit_draws_huge", "fit", {"draws": 2**64}, r"^draws must be an integer in \[0, 100,000\]"),
    ("fit_unresolved_threshold_nan", "fit", {"unresolved_threshold": float("nan")},
     r"^unresolved_threshold must be in \[0, 1\]"),
    ("fit_prior_text", "fit", {"prior": "flat"}, r"^prior must be a number, got 'flat'$"),
    ("fit_as_of_text_not_a_time", "fit", {"as_of": "2024-13-45"}, r"^as_of must be a time, got '2024-13-45'"),
    ("scenarios_negative", "forecast", {"scenarios": -1},
     r"^scenarios must be an integer in \[0, 10,000,000\], got -1$"),
    ("scenarios_not_an_integer", "forecast", {"scenarios": 2.5}, r"^scenarios must be an integer"),
    ("seed_beyond_uint64", "forecast", {"seed": 2**64},
     r"^seed must be an integer in \[0, 18,446,744,073,709,551,615\]"),
    ("threads_negative", "forecast", {"threads": -1}, r"^threads must be an integer in \[1, 256\], got -1$"),
    ("lattice_cells_negative", "forecast", {"lattice_cells": -1},
     r"^lattice_cells must be an integer in \[16, 65,536\], got -1$"),
    ("lattice_cells_2_26", "forecast", {"lattice_cells": 2**26}, r"^lattice_cells must be an integer in \[16, 65,536\]"),
    ("parameter_draws_100000", "forecast", {"parameter_uncertainty": True, "parameter_draws": 100_000},
     r"^parameter_draws must be an integer in \[0, 10,000\]"),
    ("arrivals_lookback_days_1e12", "forecast", {"arrivals_lookback_days": 1e12},
     r"^arrivals_lookback_days must be > 0 and at most 3652425 \(10,000 years\), got 1000000000000$"),
    ("arrivals_lookback_days_text", "forecast", {"arrivals_lookback_days": "half a year"},
     r"^arrivals_lookback_days must be a number, got 'half a year'$"),
    ("stale_after_days_nan", "forecast", {"stale_after_days": float("nan")}, r"^stale_after_days must be >= 0, got nan$"),
    ("grid_days_longer_than_the_period", "forecast", {"grid_days": 365},
     r"^grid_days: the grid step of 365 days is longer than the period \(92 days\)"),
    ("end_none", "forecast", {"end": None}, r"^end must be a date, got None$"),
    ("backtest_threads_negative", "backtest", {"threads": -1}, r"^threads must be an integer in \[1, 256\], got -1$"),
    ("backtest_parameter_draws_negative", "backtest", {"parameter_draws": -1},
     r"^parameter_draws must be an integer in \[0, 10,000\], got -1$"),
    ("backtest_horizon_days_zero", "backtest", {"horizon_days": 0}, r"^horizon_days must be an integer in \[1, "),
    ("period_ending_9999_12_31_beyond_the_recursion", "forecast", {"start": "9999-10-01", "end": "9999-12-31"},
     r"^the period ends \d+ grid steps of 86400 s after as_of; the recursion reaches at most 65536 steps"),
]  # fmt: skip


@pytest.fixture(scope="module")
def sample_fit() -> tuple[sf.EventLog, sf.FunnelModel]:
    log = sf.datasets.sample().log
    return log, sf.fit(log, draws=0)


@pytest.mark.parametrize(("name", "call", "kwargs", "message"), OPTION_CASES,
                         ids=[c[0] for c in OPTION_CASES])  # fmt: skip
def test_bad_options(name: str, call: str, kwargs: dict, message: str, sample_fit) -> None:
    log, model = sample_fit
    with pytest.raises(sf.InvalidOptionsError, match=message) as info:
        if call == "fit":
            sf.fit(log, **kwargs)
        elif call == "backtest":
            sf.backtest(log, ["2025-01-01"], **kwargs)
        else:
            period = {"start": QUARTER[0], "end": QUARTER[1]}
            period.update({k: kwargs.pop(k) for k in ("start", "end") if k in kwargs})
            sf.forecast(model, log, period["start"], period["end"], **kwargs)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_years_9999_as_of_and_period_work() -> None:
    """fit(as_of="9999-12-31") and a period ending 9999-12-31 gave pandas OverflowError: the
    supported range of times is years 1 to 9999, so they work (epoch seconds worked out by hand)."""
    log = sf.datasets.sample().log
    model = sf.fit(log, as_of="9999-12-31", draws=0)
    assert model.as_of == pd.Timestamp("9999-12-31", tz="UTC")
    assert int(model.core.as_of) == YEAR_10000 - 86_400
    fc = sf.forecast(model, log, "9999-10-01", "9999-12-31", scenarios=10)
    assert fc.end == pd.Timestamp("9999-12-31", tz="UTC")
    assert fc.expected >= 0.0
    # Planning and coaching read as_of in seconds too (were Timestamp.value nanoseconds).
    plan = sf.plan(model, log, 1e6, "9999-10-01", "9999-12-31")
    assert "team" in plan.index
