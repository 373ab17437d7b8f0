"""Persistence: obj.save / sf.load in every format, pickling through the same archives (hypothesis
over random logs and fits), typed errors for damaged files, and objects sent to worker processes.

The envelope is checked against its specification with a CRC-32C written here from the
definition (RFC 3720), independent of the library's own.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import pickle
import stat
import struct
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smartfunnel as sf
from smartfunnel import _core

FORMATS = ["binary", "text", "xml"]
FUNNEL = sf.Funnel(["Discovery", "Demo", "Proposal"], won="Won", lost=["Lost", "No decision"])
DAY0 = pd.Timestamp("2024-01-01", tz="UTC")


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C from its definition: reflected polynomial 0x82F63B78, init and final XOR ~0."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def reseal(b: bytes) -> bytes:
    """Recomputes payload length and both checksums, as a forger (not an accident) would."""
    b = bytearray(b)
    meta = struct.unpack_from("<I", b, 24)[0]
    struct.pack_into("<Q", b, 16, len(b) - 40 - meta)
    struct.pack_into("<I", b, 28, crc32c(bytes(b[40:])))
    struct.pack_into("<I", b, 36, crc32c(bytes(b[:36])))
    return bytes(b)


def events_frame() -> pd.DataFrame:
    """String ids, amounts, owners, a segment; a duplicate row and a row with an unknown stage."""
    rows = [
        ("acme", "Discovery", 0, 1000.0, "Ana", "ENT"),
        ("acme", "Demo", 3, 1500.0, "Ana", "ENT"),
        ("acme", "Won", 9, 1500.0, "Ben", "ENT"),
        ("globex", "Discovery", 1, 500.0, "Ben", "SMB"),
        ("globex", "Discovery", 1, 500.0, "Ben", "SMB"),
        ("globex", "Lost", 4, 500.0, "Ben", "SMB"),
        ("initech", "Discovery", 2, 2000.0, "Chloé", "SMB"),
        ("hooli", "Nurture", 3, 10.0, "Dev", "ENT"),
    ]
    return pd.DataFrame(
        {
            "Id": [r[0] for r in rows],
            "Stage": [r[1] for r in rows],
            "When": [DAY0 + pd.Timedelta(days=r[2]) for r in rows],
            "Amount": [r[3] for r in rows],
            "Rep": [r[4] for r in rows],
            "Segment": [r[5] for r in rows],
        }
    )


def make_log() -> sf.EventLog:
    return sf.EventLog.from_frame(
        FUNNEL,
        events_frame(),
        opportunity="Id",
        stage="Stage",
        time="When",
        amount="Amount",
        owner="Rep",
        attributes=["Segment"],
        validation="lenient",
    )


def assert_same_log(a: sf.EventLog, b: sf.EventLog, rejected: bool = True) -> None:
    assert a.core == b.core
    assert a.quality == b.quality
    assert a.first_time == b.first_time and a.last_time == b.last_time
    assert a._columns == b._columns
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    if rejected:
        pd.testing.assert_frame_equal(a.rejected, b.rejected)
    else:  # loaded from a file: the reasons without the input rows' values
        cols = ["row", "source", "rejected_column", "reason"]
        pd.testing.assert_frame_equal(
            a.rejected[cols].reset_index(drop=True), b.rejected[cols].reset_index(drop=True)
        )


def assert_same_model(a: sf.FunnelModel, b: sf.FunnelModel) -> None:
    assert a == b  # the sufficient statistics
    assert a.options == b.options
    assert a.groups == b.groups
    for g in a.groups:
        pd.testing.assert_series_equal(a.win_probability(g), b.win_probability(g), check_exact=True)
        pd.testing.assert_frame_equal(a.stage_summary(g), b.stage_summary(g), check_exact=True)
        pd.testing.assert_frame_equal(
            a.transition_matrix(g), b.transition_matrix(g), check_exact=True
        )


@pytest.fixture(scope="module")
def log() -> sf.EventLog:
    return make_log()


@pytest.fixture(scope="module")
def model(log) -> sf.FunnelModel:
    return sf.fit(log, as_of="2024-01-20", tick="1h", groups=["Segment"], draws=40, half_life=60)


# -- pickle ----------------------------------------------------------------------------------------


def test_every_public_object_pickles(log, model):
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        assert pickle.loads(pickle.dumps(FUNNEL, protocol)) == FUNNEL
        opts = sf.FitOptions(as_of=pd.Timestamp("2024-02-01"), groups=("owner",), tick="1h")
        assert pickle.loads(pickle.dumps(opts, protocol)) == opts
        assert_same_log(pickle.loads(pickle.dumps(log, protocol)), log)
        assert_same_model(pickle.loads(pickle.dumps(model, protocol)), model)


def test_pickles_of_compiled_objects_are_the_binary_archives(log, model):
    for obj in (FUNNEL, log.core, model.core, model.core.options):
        state = obj.__getstate__()
        assert state[:8] == b"SFNL\r\n\x1a\n"
        assert state == _core.dumps(obj, "binary")
        again = pickle.loads(pickle.dumps(obj))
        assert type(again) is type(obj)
    assert pickle.loads(pickle.dumps(log.core)) == log.core
    assert pickle.loads(pickle.dumps(model.core)).statistics_equal(model.core)


def test_a_pickle_of_another_type_is_a_wrong_archive_type():
    state = FUNNEL.__getstate__()
    with pytest.raises(
        sf.WrongArchiveTypeError, match="holds a smartfunnel funnel, not the event_log"
    ):
        _core.EventLog.__new__(_core.EventLog).__setstate__(state)


def _win_probability_in_worker(model: sf.FunnelModel) -> pd.Series:
    return model.win_probability()


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_models_and_logs_travel_to_worker_processes(log, model):
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        got = pool.submit(_win_probability_in_worker, model).result()
        n_events = pool.submit(len, log).result()
    pd.testing.assert_series_equal(got, model.win_probability(), check_exact=True)
    assert n_events == len(log)


# -- files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_and_load_every_public_object(tmp_path, log, model, fmt):
    FUNNEL.save(tmp_path / "f", fmt)
    assert sf.load(tmp_path / "f") == FUNNEL
    log.save(tmp_path / "log", fmt)
    loaded = sf.load(tmp_path / "log")
    assert isinstance(loaded, sf.EventLog)
    assert_same_log(loaded, log, rejected=False)
    model.save(str(tmp_path / "model"), format=fmt)
    loaded_model = sf.load(tmp_path / "model")
    assert isinstance(loaded_model, sf.FunnelModel)
    assert_same_model(loaded_model, model)
    assert loaded_model.options.as_of == "2024-01-20"  # the options as given, not converted
    opts = sf.FitOptions(
        as_of=pd.Timestamp("2024-03-01 12:00"), tick=pd.Timedelta(hours=6), half_life=14.5
    )
    opts.save(tmp_path / "opts", fmt)
    assert sf.load(tmp_path / "opts") == opts
    info = _core.archive_info(tmp_path / "model")
    assert info["type"] == "funnel_model" and info["format"] == fmt and info["format_version"] == 1


def test_a_loaded_log_keeps_the_callers_column_names(tmp_path, log):
    log.save(tmp_path / "log")
    loaded = sf.load(tmp_path / "log")
    more = pd.DataFrame(
        {
            "Id": ["initech"],
            "Stage": ["Won"],
            "When": [DAY0 + pd.Timedelta(days=12)],
            "Amount": [2100.0],
            "Rep": ["Chloé"],
            "Segment": ["SMB"],
        }
    )
    assert loaded.append(more).core == log.append(more).core


def test_files_saved_without_python_metadata_load_with_defaults(tmp_path, model):
    # What a C++ program writes: no metadata, so the wrapper's settings are rebuilt.
    model.core.save(tmp_path / "m", "text")
    loaded = sf.load(tmp_path / "m")
    assert loaded == model
    assert loaded.options.as_of == pd.Timestamp("2024-01-20", tz="UTC")
    assert loaded.options.tick == pd.Timedelta(hours=1)
    assert loaded.options.half_life == pd.Timedelta(days=60)
    assert loaded.options.groups == ("Segment",)
    a, b = loaded.options.to_core(), model.options.to_core()
    for field in (
        "as_of",
        "tick_seconds",
        "prior",
        "half_life_seconds",
        "groups",
        "draws",
        "seed",
        "level",
    ):
        assert getattr(a, field) == getattr(b, field), field
    model.core.options.save(tmp_path / "o", "xml")
    assert sf.load(tmp_path / "o").to_core().draws == 40
    sim = sf.datasets.sample()
    sim.log.core.save(tmp_path / "log")
    plain = sf.load(tmp_path / "log")
    assert plain.core == sim.log.core
    assert plain._columns.opportunity == "opportunity_id"
    assert plain._columns.amount == ("amount" if sim.log.core.has_amounts else None)


def test_save_replaces_a_file_atomically(tmp_path, log, model):
    path = tmp_path / "x.sfnl"
    log.save(path)
    model.save(path, "xml")
    assert isinstance(sf.load(path), sf.FunnelModel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.sfnl"]  # no temporary file left


# -- the envelope and typed errors -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_envelope_layout_and_checksums(fmt):
    b = _core.dumps(FUNNEL, fmt)
    magic, env, typ, version, kind, platform, payload, meta, body_crc, reserved, head_crc = (
        struct.unpack_from("<8sHHHBBQIIII", b)
    )
    assert magic == b"SFNL\r\n\x1a\n"
    assert (env, typ, version, kind) == (1, 1, 1, FORMATS.index(fmt) + 1)
    assert (platform != 0) == (fmt == "binary")
    assert payload == len(b) - 40 and meta == 0 and reserved == 0
    assert body_crc == crc32c(b[40:])
    assert head_crc == crc32c(b[:36])


def test_damaged_files_raise_typed_errors(tmp_path, log):
    data = _core.dumps(log.core)
    rng = np.random.default_rng(1)
    for i in rng.integers(0, len(data), 40):
        b = bytearray(data)
        b[i] ^= 0x5A
        (tmp_path / "d").write_bytes(bytes(b))
        with pytest.raises(sf.ArchiveError):
            sf.load(tmp_path / "d")
    for n in rng.integers(0, len(data), 20):
        (tmp_path / "t").write_bytes(data[:n])
        with pytest.raises(sf.CorruptArchiveError):
            sf.load(tmp_path / "t")
    (tmp_path / "n").write_text("not an archive")
    with pytest.raises(sf.CorruptArchiveError, match="not a smartfunnel archive"):
        sf.load(tmp_path / "n")
    with pytest.raises(FileNotFoundError):
        sf.load(tmp_path / "missing")
    assert issubclass(sf.ArchiveError, ValueError)
    for cls in (sf.CorruptArchiveError, sf.NewerArchiveFormatError, sf.WrongArchiveTypeError):
        assert issubclass(cls, sf.ArchiveError)


def test_newer_formats_and_forged_counts_are_refused(log):
    data = bytearray(_core.dumps(log.core))
    struct.pack_into("<H", data, 12, 2)  # format version 2
    with pytest.raises(sf.NewerArchiveFormatError, match="format version 2"):
        _core.loads(reseal(bytes(data)))
    # A forged count (the number of events, before the event times) with valid checksums.
    core = log.core
    data = _core.dumps(core)
    times = np.asarray(core.times)
    pattern = struct.pack("<Q", len(times)) + times[:2].astype("<i8").tobytes()
    assert data.count(pattern) == 1
    forged = data.replace(pattern, struct.pack("<Q", 1 << 44) + times[:2].astype("<i8").tobytes())
    with pytest.raises(sf.CorruptArchiveError, match="claims 17592186044416 elements"):
        _core.loads(reseal(forged))


def test_unknown_format_name_is_a_value_error(log):
    with pytest.raises(ValueError, match="'binary', 'text' or 'xml'"):
        _core.dumps(log.core, "json")


# -- property: random logs and fits ------------------------------------------------------------------

ids = st.one_of(
    st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=8, unique=True),
    st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=8, unique=True),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    opp_ids=ids,
    data=st.data(),
    fmt=st.sampled_from(FORMATS),
)
def test_random_logs_and_fits_round_trip(opp_ids, data, fmt):
    names = list(FUNNEL.names)
    rows = []
    for opp in opp_ids:
        n = data.draw(st.integers(1, 6))
        t = data.draw(st.integers(0, 200))
        for _ in range(n):
            rows.append(
                (
                    opp,
                    data.draw(st.sampled_from(names)),
                    DAY0 + pd.Timedelta(hours=t),
                    data.draw(st.floats(0, 1e7, allow_nan=False)),
                    data.draw(st.sampled_from(["Ana", "Ben", "李"])),
                )
            )
            t += data.draw(st.integers(0, 24 * 30))
    frame = pd.DataFrame(rows, columns=["opportunity_id", "stage", "time", "amount", "owner"])
    log = sf.EventLog.from_frame(
        FUNNEL, frame, amount="amount", owner="owner", validation="lenient", after_terminal="reopen"
    )
    assert_same_log(pickle.loads(pickle.dumps(log)), log)
    again = sf.EventLog._from_archive(_core.loads(_core.dumps(log.core, fmt)), {})
    assert again.core == log.core
    groups = data.draw(st.sampled_from([(), ("owner",)]))
    try:
        model = sf.fit(log, groups=groups, draws=20, prior=data.draw(st.sampled_from([0.0, 1.0])))
    except sf.SingularChainError:
        return
    assert_same_model(pickle.loads(pickle.dumps(model)), model)
    core = _core.loads(_core.dumps(model.core, fmt))
    assert_same_model(sf.FunnelModel(core, model.options), model)


# -- issue 13: forged archives with valid checksums, unusable save targets -------------------------


def with_metadata(b: bytes, metadata: bytes) -> bytes:
    """The archive `b` with its metadata replaced (lengths and checksums recomputed)."""
    old = struct.unpack_from("<I", b, 24)[0]
    head = bytearray(b[:40])
    struct.pack_into("<I", head, 24, len(metadata))
    return reseal(bytes(head) + metadata + b[40 + old :])


def test_non_utf8_names_in_a_valid_payload_are_corrupt_archives(tmp_path):
    # "Demo" -> "De\xffo": same length, so the text archive's length prefix still holds.
    data = _core.dumps(FUNNEL, "text")
    assert data.count(b" 4 Demo") == 1
    forged = reseal(data.replace(b" 4 Demo", b" 4 De\xffo"))
    with pytest.raises(
        sf.CorruptArchiveError, match=r"stage name 1 is not valid UTF-8 text \(byte 0xFF"
    ):
        _core.loads(forged)
    (tmp_path / "f").write_bytes(forged)
    with pytest.raises(sf.CorruptArchiveError, match="stage name 1"):
        sf.load(tmp_path / "f")
    # Through pickle (the binary archive) as well: an owner name of a log.
    log = make_log()
    binary = pickle.dumps(log.core)
    assert binary.count(b"\x03\x00\x00\x00\x00\x00\x00\x00Ana") == 1
    with pytest.raises(sf.CorruptArchiveError, match="owner name 0 is not valid UTF-8"):
        pickle.loads(
            binary.replace(
                _core.dumps(log.core), reseal(_core.dumps(log.core).replace(b"Ana", b"A\xc0a"))
            )
        )


def test_metadata_that_is_not_utf8_is_a_foreign_note(tmp_path, model):
    # Only a C++ caller writes such a note: ignored, the options come from the payload.
    (tmp_path / "m").write_bytes(with_metadata(_core.dumps(model.core), b"\xff\xfe note"))
    loaded = sf.load(tmp_path / "m")
    assert loaded == model and loaded.options.tick == pd.Timedelta(hours=1)
    assert _core.archive_info(tmp_path / "m")["metadata"] == b"\xff\xfe note"


def test_options_in_metadata_must_agree_with_the_payload(tmp_path, model):
    model.save(tmp_path / "m")
    good = (tmp_path / "m").read_bytes()
    meta = good[40 : 40 + struct.unpack_from("<I", good, 24)[0]]
    parsed = json.loads(meta)
    assert parsed["options"]["prior"] == 1.0
    parsed["options"]["prior"] = 123
    (tmp_path / "forged").write_bytes(with_metadata(good, json.dumps(parsed).encode()))
    with pytest.raises(
        sf.CorruptArchiveError,
        match=r"fit option prior=123 .* options in the archive have prior=1.0",
    ):
        sf.load(tmp_path / "forged")
    # The same for saved FitOptions, and the class named in the metadata.
    opts = sf.FitOptions(prior=2.0, draws=50)
    opts.save(tmp_path / "o")
    good = (tmp_path / "o").read_bytes()
    meta = json.loads(good[40 : 40 + struct.unpack_from("<I", good, 24)[0]])
    meta["options"]["draws"] = 7
    (tmp_path / "o2").write_bytes(with_metadata(good, json.dumps(meta).encode()))
    with pytest.raises(sf.CorruptArchiveError, match="draws=7"):
        sf.load(tmp_path / "o2")
    meta["options"]["draws"] = 50
    meta["class"] = "EventLog"
    (tmp_path / "o3").write_bytes(with_metadata(good, json.dumps(meta).encode()))
    with pytest.raises(sf.CorruptArchiveError, match="describes a 'EventLog'"):
        sf.load(tmp_path / "o3")
    assert sf.load(tmp_path / "o") == opts


def test_invalid_options_in_a_valid_payload_are_corrupt(tmp_path):
    # A C++ caller may archive invalid options; Python's FitOptions are always valid.
    o = _core.FitOptions()
    o.level = 1.5
    o.save(tmp_path / "o", "text")
    with pytest.raises(sf.CorruptArchiveError, match=r"fit options are invalid.*level"):
        sf.load(tmp_path / "o")


def test_column_names_in_metadata_must_agree_with_the_log(tmp_path, log):
    log.save(tmp_path / "l")
    good = (tmp_path / "l").read_bytes()
    meta = json.loads(good[40 : 40 + struct.unpack_from("<I", good, 24)[0]])
    assert meta["columns"]["attributes"] == ["Segment"]
    for key, value, says in [
        (
            "attributes",
            ["Region"],
            r"attribute columns \['Region'\] but the log holds \['Segment'\]",
        ),
        ("amount", None, "holds amount values but the metadata names no amount column"),
        ("stage", 5, "stage column is not a name"),
    ]:
        forged = json.loads(json.dumps(meta))
        forged["columns"][key] = value
        (tmp_path / "f").write_bytes(with_metadata(good, json.dumps(forged).encode()))
        with pytest.raises(sf.CorruptArchiveError, match=says):
            sf.load(tmp_path / "f")


def test_garbage_version_numbers_are_corrupt_not_newer(log):
    data = bytearray(_core.dumps(log.core))
    struct.pack_into("<H", data, 12, 0xBEEF)
    with pytest.raises(
        sf.CorruptArchiveError, match=r"format version 48879 is neither .* \(1\)"
    ) as err:
        _core.loads(reseal(bytes(data)))
    assert "upgrade" not in str(err.value)
    struct.pack_into("<H", data, 12, 1)
    struct.pack_into("<H", data, 10, 0x7777)
    with pytest.raises(sf.CorruptArchiveError, match=r"object type 30583 .* \(1 to 5\)"):
        _core.loads(reseal(bytes(data)))


def test_save_errors_name_the_target(tmp_path, model):
    target = tmp_path / "missing" / "m.sfnl"
    with pytest.raises(FileNotFoundError) as err:
        model.save(target)
    assert err.value.filename == str(target)


def test_save_replaces_only_regular_files_it_may_write(tmp_path, model, log):
    # /dev/null: a character device that the trial's save (as root) replaced with a file.
    with pytest.raises(OSError, match="is a character device, not a regular file") as err:
        model.save("/dev/null")
    assert err.value.filename == "/dev/null"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        log.save(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="is a FIFO"):
        FUNNEL.save(fifo)
    # A read-only file (0444) is refused even for root, which access(2) would let write it.
    ro = tmp_path / "ro.sfnl"
    log.save(ro)
    before = ro.read_bytes()
    ro.chmod(0o444)
    with pytest.raises(PermissionError, match=r"is read-only for this user \(mode 0444") as err:
        model.save(ro)
    assert err.value.filename == str(ro)
    assert ro.read_bytes() == before
    # A symbolic link to a regular file: the file is replaced, the link stays.
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "m.sfnl"
    log.save(real)
    link = tmp_path / "current.sfnl"
    link.symlink_to(real)
    model.save(link)
    assert link.is_symlink() and isinstance(sf.load(real), sf.FunnelModel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.sfnl", "fifo", "real", "ro.sfnl"]
