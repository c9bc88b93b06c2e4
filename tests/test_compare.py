"""taskzoo-compare on runs made here: the table of differing overrides and the curves; what a
sweep writes for comparison when it ends (the table, the curves, the HParams experiment)."""

import csv
import io
import json
import pathlib
import subprocess
import sys

import pytest

from conftest import TINY, hparams_experiment, hparams_records, hparams_trial_ids, run_cli

COMMAND = [sys.executable, "-m", "taskzoo.compare"]


@pytest.mark.slow
def test_compare_runs_of_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    completed = run_cli(
        ["-m", "task=sentiment", *TINY, "model=rnn,gru", "model.units=8,16", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    jobs = sorted(path.parent for path in sweep.glob("*/metrics.json"))

    # The sweep declared one HParams experiment at its root: the identifying hyperparameters and
    # the swept keys (marked as varied), the main metric first; each job's trial ID is its values
    # of the swept keys.
    hyperparameters, metrics = hparams_experiment(sweep)
    assert {name for name, varied in hyperparameters.items() if varied} == {"model.cell", "model.units"}
    assert {"task.name", "model.num_layers", "trainer.learning_rate", "trainer.batch_size"} <= set(hyperparameters)
    assert metrics[:2] == ["main_metric/test", "main_metric/validation"]
    assert sorted(trial for job in jobs for trial in hparams_trial_ids(job)) == [
        "model=gru,model.units=16", "model=gru,model.units=8", "model=rnn,model.units=16", "model=rnn,model.units=8"
    ]
    for job in jobs:
        assert not list(hparams_records(job, "experiment"))

    # At its end the sweep printed the comparison and wrote it with the curves into its directory.
    printed = completed.stdout[completed.stdout.index("Comparison of the sweep's 4 finished run(s)"):]
    header = printed.splitlines()[1].split()
    assert header[:3] == ["run", "model", "model.units"] and "validation.accuracy" in header
    assert (sweep / "comparison.md").read_text().startswith("| run | model | model.units |")
    assert (sweep / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (sweep / "curves.png").unlink()

    # An interrupted run in the same directory is left out of the table.
    interrupted = sweep / "interrupted"
    interrupted.mkdir()
    (interrupted / "metrics.json").write_text(json.dumps({"task": "sentiment", "interrupted": True}))

    result = subprocess.run(
        [*COMMAND, str(sweep), "--csv"], capture_output=True, text=True, cwd=tmp_path
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
        [*COMMAND, str(sweep), "--markdown", "--out", str(tmp_path / "figure.png")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert markdown.returncode == 0 and markdown.stdout.startswith("| run | model | model.units |")
    assert (tmp_path / "figure.png").is_file()
    # The curves replace an earlier picture of their name, never a file of another kind.
    again = subprocess.run([*COMMAND, str(sweep), "--out", str(tmp_path / "figure.png")], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    (tmp_path / "notes.png").write_text("my notes")
    refused = subprocess.run([*COMMAND, str(sweep), "--out", str(tmp_path / "notes.png")], capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (f"Error: {tmp_path / 'notes.png'}: the file exists and is not a PNG picture; "
                                      "nothing was written over it (give another name).")
    assert (tmp_path / "notes.png").read_text() == "my notes"


def test_the_table_gives_metrics_four_decimals_and_seconds_one():
    from taskzoo.compare import render

    rows = [{"run": "a", "validation.accuracy": 0.5, "epochs": 2, "train_seconds": 2.69}]
    columns = list(rows[0])
    assert render(rows, columns, "markdown").splitlines()[-1] == "| a | 0.5000 | 2 | 2.7 |"
    assert render(rows, columns, "csv").splitlines()[-1] == "a,0.5,2,2.69"


def test_compare_runs_without_runs_says_so(tmp_path):
    result = subprocess.run([*COMMAND, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.strip() == f"Error: no finished runs (metrics.json) in {tmp_path}."


def test_the_installed_commands_exist_beside_the_interpreter():
    # pip installs the console scripts in the interpreter's scripts directory.
    scripts = pathlib.Path(sys.executable).parent
    for command in ("taskzoo", "taskzoo-predict", "taskzoo-compare", "taskzoo-plot-gradients", "taskzoo-evaluate"):
        assert (scripts / command).is_file(), command
    result = subprocess.run([str(scripts / "taskzoo-compare"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "taskzoo-compare" in result.stdout
