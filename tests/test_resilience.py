"""Training that survives faults: kill and resume, stop signals, non-finite losses, determinism,
damaged model files."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest

from conftest import TINY, compose_config, event_values, run_cli
from taskzoo import train
from taskzoo.errors import ConfigError, DataError, TrainingError
from taskzoo.resilience import Backup, GracefulStop, keep_run_settings
from taskzoo.tasks.sentiment import SentimentTask

# A sentiment run slow enough to be caught mid-training: 12 epochs of 10 steps.
LONG_RUN = [
    "task=sentiment", *TINY, "trainer.epochs=12", "trainer.steps_per_epoch=10",
    "task.data.num_train=640", "trainer.batch_size=16", "trainer.early_stopping_patience=null",
]


def start_run(arguments, cwd):
    environment = dict(os.environ)
    environment.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "taskzoo", *arguments], cwd=cwd, env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_backup(run_dir, process, epoch=1, timeout=300):
    """Waits until the run's backup covers `epoch` epochs; returns the backup state."""
    state_path = run_dir / "backup" / "state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        if state_path.is_file():
            state = json.loads(state_path.read_text())
            if state["epoch"] >= epoch:
                return state
        time.sleep(0.02)
    raise AssertionError("no backup appeared")


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_backup_with_the_same_command(tmp_path):
    run_dir = tmp_path / "run"
    arguments = [*LONG_RUN, f"hydra.run.dir={run_dir}"]
    process = start_run(arguments, tmp_path)
    wait_for_backup(run_dir, process, epoch=2)
    process.kill()
    process.wait()
    assert not (run_dir / "metrics.json").exists()

    resumed = run_cli(arguments, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed from the backup after epoch" in (run_dir / "taskzoo.log").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 12 and metrics["stop_reason"] == "epochs"
    # The optimizer's step count was restored: the run took exactly its 12 x 10 steps.
    assert metrics["train_steps"] == 120
    assert not (run_dir / "backup").exists()

    # A fresh run never sees that backup, and a finished run is not overwritten.
    again = run_cli(arguments, cwd=tmp_path)
    assert again.returncode == 2 and "already holds a finished run" in again.stderr


@pytest.mark.slow
def test_sigterm_stops_saves_and_the_same_command_resumes(tmp_path):
    run_dir = tmp_path / "run"
    arguments = [*LONG_RUN, f"hydra.run.dir={run_dir}"]
    process = start_run(arguments, tmp_path)
    wait_for_backup(run_dir, process, epoch=1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: Stopped by SIGTERM after ") and "resumes the run" in last_line
    stopped = json.loads((run_dir / "metrics.json").read_text())
    assert stopped["interrupted"] is True and stopped["signal"] == "SIGTERM"
    assert (run_dir / "model.keras").is_file()
    # The epoch cut short by the signal is not counted: the steps taken reach into the next one.
    completed, steps = stopped["epochs_completed"], stopped["train_steps"]
    assert 1 <= completed < 12
    assert completed * 10 <= steps <= (completed + 1) * 10
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    assert state["epoch"] == completed

    resumed = run_cli(arguments, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "interrupted" not in metrics and metrics["epochs_completed"] == 12
    # The resumed run starts from the saved step count and redoes the interrupted epoch.
    assert metrics["train_steps"] == steps + (12 - completed) * 10
    assert metrics["train_steps"] >= 120 and "accuracy" in metrics["test"]


def test_a_second_signal_exits_at_once(monkeypatch):
    stopper = GracefulStop()
    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    stopper.handle(signal.SIGINT, None)
    assert stopper.received == "SIGINT" and exits == []
    stopper.handle(signal.SIGINT, None)
    assert exits == [130]


class PoisonWeights(keras.callbacks.Callback):
    """Makes every weight NaN at the second step of the second epoch: a numerical blow-up."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == 1 and batch == 1:
            for variable in self.model.network.trainable_variables:
                variable.assign(np.full(variable.shape, np.nan, dtype=variable.dtype))


def test_a_non_finite_loss_stops_with_the_epoch_and_step_and_keeps_the_last_good_backup(tmp_path, monkeypatch):
    original = SentimentTask.callbacks
    monkeypatch.setattr(SentimentTask, "callbacks", lambda self, run_dir: [*original(self, run_dir), PoisonWeights()])
    cfg = compose_config("task=sentiment", *TINY, "trainer.epochs=4")
    with pytest.raises(TrainingError) as error:
        train.run(cfg, run_dir=tmp_path)
    message = str(error.value)
    assert message.startswith("Non-finite loss (nan) at epoch 2, step 2; the last good state is in ")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["stop_reason"] == "non_finite_loss" and metrics["epochs_completed"] == 1
    assert not (tmp_path / "model.keras").exists()
    state = json.loads((tmp_path / "backup" / "state.json").read_text())
    assert state["epoch"] == 1
    # The backed-up weights, read straight from the file, are finite.
    with h5py.File(tmp_path / "backup" / state["weights"]) as weights:
        arrays = []
        weights.visititems(lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    assert arrays and all(np.all(np.isfinite(array)) for array in arrays if array.dtype.kind == "f")


@pytest.mark.slow
def test_deterministic_runs_give_identical_metrics(tmp_path):
    results = []
    for name in ("first", "second"):
        completed = run_cli(
            ["task=sentiment", *TINY, "trainer.deterministic=true", f"hydra.run.dir={tmp_path / name}"],
            cwd=tmp_path,
        )
        assert completed.returncode == 0, completed.stderr
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        metrics.pop("train_seconds"), metrics.pop("evaluation_seconds")
        results.append(metrics)
    assert results[0] == results[1]


@pytest.mark.slow
def test_a_truncated_model_file_gives_one_line(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_cli(["task=sentiment", *TINY, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    model_file = run_dir / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    completed = run_cli([f"run_dir={run_dir}", "text=fine"], cwd=tmp_path, module="taskzoo.predict")
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {model_file}: cannot load the model (")


@pytest.mark.slow
def test_one_command_per_run_directory_and_a_killed_holder_never_blocks_the_resume(tmp_path):
    run_dir = tmp_path / "run"
    # Two epochs of 100 steps, and the first command is paused once it trains: it holds the run
    # directory for as long as the second command needs to find it at work.
    arguments = ["task=sentiment", *TINY, "task.data.num_train=800", "trainer.steps_per_epoch=null",
                 f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen([sys.executable, "-m", "taskzoo", *arguments], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "train").is_dir() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (run_dir / "train").is_dir(), "the first run did not start training"
        os.kill(first.pid, signal.SIGSTOP)
        assert first.poll() is None, "the first run ended before it was paused"
        before = (run_dir / ".hydra" / "config.yaml").read_bytes()
        second = run_cli(["task=sentiment", *TINY, "model=lstm", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
        assert second.returncode == 2
        [line] = [line for line in second.stderr.splitlines() if line.startswith("Error:")]
        assert line.startswith(f"Error: {run_dir} is in use by process {first.pid} on ")
        assert "Traceback" not in second.stderr
        # The second command touched nothing: the run's configuration is still the first's.
        assert (run_dir / ".hydra" / "config.yaml").read_bytes() == before
    finally:
        first.kill()
        first.communicate()
    # The killed process held the lock; the same command resumes the run all the same.
    resumed = run_cli(arguments, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_completed"] == 2


def test_a_run_directory_under_a_file_gives_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    completed = run_cli(["task=sentiment", *TINY, f"hydra.run.dir={tmp_path / 'file' / 'run'}"], cwd=tmp_path)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].startswith(f"Error: cannot use {tmp_path / 'file' / 'run'} as a run directory")


# Exact resume: a deterministic run interrupted at any moment and resumed with the same
# command ends with the same figures and the same weights as the run never interrupted.

EXACT_RUNS = {
    # A repeating, shuffled dataset read half a pass per epoch, with dropout.
    "sentiment": ["task=sentiment", *TINY, "model.dropout=0.3", "trainer.epochs=4", "task.data.num_train=96"],
    # A finite dataset read in one shuffled pass per epoch.
    "video": ["task=video", "trainer=smoke", "model.units=8", "task.cnn_filters=[4,8]", "task.frame_features=8",
              "task.frame_size=16", "task.data.num_train=24", "task.data.num_validation=8", "task.data.num_test=8",
              # No time budget: with one, the cosine schedule follows the clock, which no rerun repeats.
              "trainer.epochs=4", "trainer.steps_per_epoch=null", "trainer.max_minutes=null"],
}


class SimulatedCrash(BaseException):
    """Stands for a kill -9: nothing in the run catches it and nothing is saved on the way out."""


class Fault(keras.callbacks.Callback):
    """Interrupts a run at one moment: `kind` is "crash" (SimulatedCrash) or "sigterm"."""

    def __init__(self, moment, kind):
        super().__init__()
        self.moment, self.kind = moment, kind
        self.epoch, self.fired = 0, False

    def fire(self):
        if self.fired:
            return
        self.fired = True
        if self.kind == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            raise SimulatedCrash(self.moment)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.moment == "between epochs" and epoch == 2:
            self.fire()

    def on_train_batch_end(self, batch, logs=None):
        if self.moment == "mid-epoch" and self.epoch == 1 and batch == 1:
            self.fire()

    def on_test_batch_end(self, batch, logs=None):
        if self.moment == "validation" and self.epoch == 2:
            self.fire()


def run_in_process(cfg, run_dir, monkeypatch, fault=None):
    """Runs `train.run` in this process; a fault interrupts it. Returns the error, if any."""
    task_class = type(train.build_task(cfg))
    original = task_class.callbacks
    with monkeypatch.context() as patch:
        if fault is not None:
            patch.setattr(task_class, "callbacks", lambda self, directory: [*original(self, directory), fault])
        try:
            train.run(cfg, run_dir)
        except (TrainingError, SimulatedCrash) as error:
            return error
    return None


def final_state(run_dir):
    """metrics.json, the saved weights, and every epoch's training and validation loss (the last
    value written for each epoch: a resumed run writes the interrupted epoch again)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("train_seconds", "evaluation_seconds"):
        metrics.pop(key)
    weights = keras.saving.load_model(run_dir / "model.keras", compile=False).get_weights()
    curves = {split: dict(event_values(run_dir / split, "epoch_loss")) for split in ("train", "validation")}
    return metrics, weights, curves


def assert_same_run(resumed, uninterrupted):
    (metrics, weights, curves), (expected_metrics, expected_weights, expected_curves) = resumed, uninterrupted
    for split, losses in expected_curves.items():
        assert sorted(curves[split]) == sorted(losses)
        np.testing.assert_allclose([curves[split][epoch] for epoch in sorted(losses)], list(losses.values()), atol=1e-6)
    assert metrics.keys() == expected_metrics.keys()
    for split in ("test", "validation"):
        for name, value in expected_metrics[split].items():
            assert metrics[split][name] == pytest.approx(value, abs=1e-6), (split, name)
    for key in ("epochs_completed", "train_steps", "best_epoch", "stop_reason"):
        assert metrics[key] == expected_metrics[key], key
    for array, expected in zip(weights, expected_weights):
        np.testing.assert_allclose(array, expected, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("task_name", sorted(EXACT_RUNS))
def test_a_deterministic_run_resumes_to_the_same_result_whenever_it_is_interrupted(task_name, tmp_path, monkeypatch):
    cfg = compose_config(*EXACT_RUNS[task_name], "trainer.deterministic=true", "trainer.verbose=0")
    assert run_in_process(cfg, tmp_path / "uninterrupted", monkeypatch) is None
    uninterrupted = final_state(tmp_path / "uninterrupted")
    assert uninterrupted[0]["epochs_completed"] == 4

    moments = [("mid-epoch", "sigterm"), ("mid-epoch", "crash"), ("between epochs", "crash"), ("validation", "crash"),
               ("validation", "sigterm")]
    if task_name == "video":
        moments = moments[1:3]  # The finite dataset: one crash in an epoch and one between epochs.
    # The epochs each interruption leaves whole: a crash loses the epoch in progress; a stop signal
    # during the third epoch's validation comes after its last training step, so that epoch is kept.
    kept = {"mid-epoch": 1, "between epochs": 2, "validation": 2}
    for moment, kind in moments:
        run_dir = tmp_path / f"{moment}-{kind}".replace(" ", "-")
        error = run_in_process(cfg, run_dir, monkeypatch, Fault(moment, kind))
        assert error is not None, (moment, kind)
        whole = kept[moment] + (moment == "validation" and kind == "sigterm")
        if kind == "sigterm":
            # The interrupted run says how far it got; its best epoch is a whole epoch.
            interrupted = json.loads((run_dir / "metrics.json").read_text())
            assert interrupted["stop_reason"] == "interrupted" and interrupted["epochs_completed"] == whole
            assert interrupted["best_epoch"] is not None and interrupted["best_epoch"] <= whole
        # Resumed from the last whole epoch: an epoch in progress is replayed.
        backup = json.loads((run_dir / "backup" / "state.json").read_text())
        assert backup["epoch"] == whole, (moment, kind)
        assert run_in_process(cfg, run_dir, monkeypatch) is None
        assert_same_run(final_state(run_dir), uninterrupted)


@pytest.mark.slow
def test_a_crash_while_saving_the_model_keeps_the_best_epoch_on_resume(tmp_path, monkeypatch):
    cfg = compose_config(*EXACT_RUNS["sentiment"], "trainer.deterministic=true", "trainer.verbose=0")
    assert run_in_process(cfg, tmp_path / "uninterrupted", monkeypatch) is None
    uninterrupted = final_state(tmp_path / "uninterrupted")

    def crash_while_saving(model, path):
        path.with_name(f".{path.stem}.tmp.keras").write_bytes(b"PK\x03\x04 half a file")
        raise SimulatedCrash("saving")

    run_dir = tmp_path / "saving"
    with monkeypatch.context() as patch:
        patch.setattr(train, "save_model_atomic", crash_while_saving)
        with pytest.raises(SimulatedCrash):
            train.run(cfg, run_dir)
    assert not (run_dir / "model.keras").exists() and not (run_dir / "metrics.json").exists()
    assert run_in_process(cfg, run_dir, monkeypatch) is None
    assert_same_run(final_state(run_dir), uninterrupted)


def test_a_backup_resumes_only_under_the_settings_it_was_trained_with(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- model.units=8\n")
    cfg = compose_config("task=sentiment", *TINY)
    keep_run_settings(run_dir, cfg)  # A fresh run records its settings and Hydra's files.
    (run_dir / "backup" / "state.json").write_text("{}")  # It was interrupted after a backup.

    # How long it trains and what it logs may change on resume; nothing else may.
    keep_run_settings(run_dir, compose_config("task=sentiment", *TINY, "trainer.epochs=9", "observe.every_n_steps=5"))
    # The new command has written its own files over Hydra's; refusing puts the run's back.
    (run_dir / ".hydra" / "overrides.yaml").write_text("- model.units=16\n")
    other = compose_config("task=sentiment", *TINY, "model.units=16", "trainer.learning_rate=0.01")
    with pytest.raises(ConfigError) as raised:
        keep_run_settings(run_dir, other)
    assert str(raised.value) == (
        f"{run_dir} holds an interrupted run with other settings (model.units=8, not 16; trainer.learning_rate=0.003, "
        f"not 0.01); the command that started it resumes it (its settings: {run_dir / '.hydra' / 'overrides.yaml'}), "
        "or choose another hydra.run.dir.")
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == "- model.units=8\n"


def test_a_backup_that_does_not_fit_the_model_is_one_line(tmp_path):
    # A backup of an earlier version records no settings: loading it into another model fails.
    def model(units):
        network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units)])
        network.compile(optimizer="adam", loss="mse")
        return network

    saved = Backup(tmp_path / "backup")
    saved.set_model(model(4))
    saved.on_train_begin()
    saved.save()
    resumed = Backup(tmp_path / "backup")
    resumed.set_model(model(8))
    with pytest.raises(ConfigError, match=r"backup: the backup does not fit this model \(.*\); the command that started"):
        resumed.on_train_begin()


@pytest.mark.parametrize("damage", ["state cut", "weights cut", "weights missing", "best weights cut"])
def test_a_damaged_backup_is_one_line_and_left_as_it_is(tmp_path, damage):
    def model():
        network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
        network.compile(optimizer="adam", loss="mse")
        return network

    directory = tmp_path / "backup"
    early_stopping = keras.callbacks.EarlyStopping()
    saved = Backup(directory, best_weights=early_stopping)
    saved.set_model(model())
    saved.on_train_begin()
    early_stopping.on_train_begin()
    early_stopping.best_weights, early_stopping.best = saved.model.get_weights(), 0.5
    saved.save()
    state = json.loads((directory / "state.json").read_text())
    name = {"state cut": "state.json", "weights cut": state["weights"], "weights missing": state["weights"],
            "best weights cut": state["best"]["weights"]}[damage]
    if damage == "weights missing":
        (directory / name).unlink()
    else:
        (directory / name).write_bytes((directory / name).read_bytes()[:40])
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    resumed = Backup(directory, best_weights=keras.callbacks.EarlyStopping())
    resumed.set_model(model())
    with pytest.raises(DataError) as error:
        resumed.on_train_begin()
        resumed.on_epoch_begin(0)  # The best weights are read when the first epoch begins.
    message = str(error.value)
    assert message.startswith(f"{directory / name}: the run's backup is damaged (") and "\n" not in message
    assert message.endswith(f"move {directory} aside to train the run again from its start, or choose another hydra.run.dir.")
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before
