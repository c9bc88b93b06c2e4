"""scripts/compare_runs.py on runs made here: the table of differing overrides and the curves."""

import csv
import io
import json
import pathlib
import subprocess
import sys

import pytest

from conftest import TINY, run_cli

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "compare_runs.py"


@pytest.mark.slow
def test_compare_runs_of_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    completed = run_cli(
        ["-m", "task=sentiment", *TINY, "model=rnn,gru", "model.units=8,16", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    # An interrupted run in the same directory is left out of the table.
    interrupted = sweep / "interrupted"
    interrupted.mkdir()
    (interrupted / "metrics.json").write_text(json.dumps({"task": "sentiment", "interrupted": True}))

    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(sweep), "--csv"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 4
    assert {(row["model"], row["model.units"]) for row in rows} == {
        ("rnn", "8"), ("rnn", "16"), ("gru", "8"), ("gru", "16")
    }
    assert "task" not in rows[0]  # The same in every run: not a column.
    # Best first by the task's main metric, and the figures are the runs' own.
    accuracies = [float(row["validation.accuracy"]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in rows:
        metrics = json.loads((pathlib.Path(row["run"]) / "metrics.json").read_text())
        assert float(row["test.accuracy"]) == pytest.approx(metrics["test"]["accuracy"])
        assert int(row["epochs"]) == metrics["epochs_completed"] == 2
    assert (sweep / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    markdown = subprocess.run(
        [sys.executable, str(SCRIPT), str(sweep), "--markdown", "--out", str(tmp_path / "figure.png")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert markdown.returncode == 0 and markdown.stdout.startswith("| run | model | model.units |")
    assert (tmp_path / "figure.png").is_file()


def test_compare_runs_without_runs_says_so(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.strip() == f"Error: no finished runs (metrics.json) in {tmp_path}."
