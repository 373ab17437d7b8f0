from __future__ import annotations

import pathlib
import subprocess
import sys

import pandas as pd

from smartfunnel.cli import main


def test_report_sample_runs_as_a_command():
    exe = pathlib.Path(sys.executable).parent / "smartfunnel"
    out = subprocess.run(
        [str(exe), "report", "--sample"], check=True, capture_output=True, text=True
    )
    for stage in ["Prospecting", "Qualification", "Proposal", "Negotiation"]:
        assert stage in out.stdout
    assert "Win probability by stage" in out.stdout
    assert "Forecast of revenue won" in out.stdout and "P90" in out.stdout


def test_report_forecast_period_and_target(capsys):
    assert (
        main(
            [
                "report",
                "--sample",
                "--as-of",
                "2025-03-31",
                "--period",
                "2025-04-01",
                "2025-06-30",
                "--target",
                "1e6",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2025-04-01 .. 2025-06-30" in out
    assert "P(revenue >= 1,000,000) = " in out


def test_report_on_a_csv(tmp_path, capsys):
    rows = [
        ("o1", "A", "2024-01-01"),
        ("o1", "B", "2024-01-03"),
        ("o1", "Won", "2024-01-06"),
        ("o2", "A", "2024-01-01"),
        ("o2", "Lost", "2024-01-02"),
    ]
    path = tmp_path / "events.csv"
    pd.DataFrame(rows, columns=["opportunity_id", "stage", "time"]).to_csv(path, index=False)
    assert main(["report", str(path), "--stages", "A,B", "--prior", "0"]) == 0
    out = capsys.readouterr().out
    # A: one exit to B, one to Lost -> P(win from A) = 1/2 * P(win from B) = 1/2 * 1.
    assert "50.0%" in out


def test_report_without_input_is_a_usage_error(capsys):
    assert main(["report"]) == 2
    assert "--sample" in capsys.readouterr().err
