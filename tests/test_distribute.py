"""tf.distribute: the strategy from the configuration, the chief, and multi-worker training."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import TINY, compose_config, event_tags, run_cli
from taskzoo.distribute import build_strategy, chief_task
from taskzoo.errors import ConfigError


@pytest.mark.parametrize(
    "task_type, task_id, cluster, expected",
    [
        (None, None, {}, True),
        ("worker", 0, {"worker": ["a:1", "b:1"]}, True),
        ("worker", 1, {"worker": ["a:1", "b:1"]}, False),
        ("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]}, True),
        ("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]}, False),
    ],
)
def test_the_chief_is_the_chief_task_or_else_worker_zero(task_type, task_id, cluster, expected):
    assert chief_task(task_type, task_id, cluster) is expected


def test_a_slurm_cluster_outside_slurm_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    cfg = compose_config(*TINY, "trainer.strategy=multi_worker", "trainer.cluster=slurm")
    with pytest.raises(ConfigError, match="trainer.cluster=slurm needs a Slurm job"):
        build_strategy(cfg.trainer)


def test_an_unknown_strategy_is_refused_when_the_configuration_is_composed():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="strategy"):
        compose_config(*TINY, "trainer.strategy=horovod")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for item in sockets:
        item.bind(("127.0.0.1", 0))
    ports = [item.getsockname()[1] for item in sockets]
    for item in sockets:
        item.close()
    return ports


def start_workers(tmp_path, run_dir, *overrides):
    """Starts two local worker processes of one multi-worker run."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        # Each worker's temporary files go to its own directory, to check what it leaves behind.
        temporary = tmp_path / f"tmp{index}"
        temporary.mkdir(exist_ok=True)
        environment = dict(os.environ, TMPDIR=str(temporary),
                           TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        environment.pop("HYDRA_FULL_ERROR", None)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "taskzoo", "task=sentiment", *TINY, "trainer.strategy=multi_worker",
             *overrides, f"hydra.run.dir={run_dir}"],
            cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    return processes


@pytest.mark.slow
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path):
    run_dir = tmp_path / "run"
    processes = start_workers(tmp_path, run_dir, "trainer.steps_per_epoch=6")
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    assert "Worker done (worker 1 of 2 workers)" in outputs[1][0]
    assert f"Run directory: {run_dir}" in outputs[0][0]

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and metrics["train_steps"] == 12
    assert set(metrics["test"]) == {"accuracy", "loss"}
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()
    assert event_tags(run_dir / "train")["gradient_norm/global"] > 0
    assert event_tags(run_dir / "validation")["epoch_accuracy"] == 2
    # The second worker wrote its logs and backups to a temporary directory, and removed it.
    assert list((tmp_path / "tmp1").iterdir()) == []


@pytest.mark.slow
def test_the_multi_worker_loop_gives_the_numbers_of_keras_fit(tmp_path):
    """Without TF_CONFIG the multi-worker strategy has one worker: its training loop must then
    reproduce Keras' fit, step for step."""
    results = {}
    for strategy in ("auto", "multi_worker"):
        run_dir = tmp_path / strategy
        completed = run_cli(["task=sentiment", *TINY, "trainer.deterministic=true", "trainer.epochs=3",
                             f"trainer.strategy={strategy}", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
        assert completed.returncode == 0, completed.stderr
        results[strategy] = json.loads((run_dir / "metrics.json").read_text())
    for split in ("test", "validation"):
        for name, value in results["auto"][split].items():
            assert results["multi_worker"][split][name] == pytest.approx(value, rel=1e-6), (split, name)
    for key in ("epochs_completed", "train_steps", "best_epoch"):
        assert results["multi_worker"][key] == results["auto"][key]


@pytest.mark.slow
def test_a_missing_tpu_is_one_clear_error(tmp_path):
    completed = run_cli(["task=sentiment", *TINY, "trainer.strategy=tpu", f"hydra.run.dir={tmp_path / 'run'}"],
                        cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("Error: trainer.strategy=tpu: no TPU found (")


@pytest.mark.slow
def test_a_stop_signal_to_the_chief_stops_both_workers_and_the_same_command_resumes(tmp_path):
    run_dir = tmp_path / "run"
    overrides = ("trainer.epochs=3", "trainer.steps_per_epoch=60", "trainer.evaluation_steps=1")
    processes = start_workers(tmp_path, run_dir, *overrides)
    # The first epoch's backup exists once the second epoch has begun.
    deadline = time.monotonic() + 300
    while not (run_dir / "backup" / "state.json").exists():
        assert time.monotonic() < deadline and processes[0].poll() is None, processes[0].communicate()[1][-3000:]
        time.sleep(0.2)
    processes[0].send_signal(signal.SIGTERM)
    outputs = [process.communicate(timeout=300) for process in processes]
    # Both workers stop at the same step, and exit as a SIGTERM demands.
    assert [process.returncode for process in processes] == [143, 143], outputs[1][1][-3000:]
    interrupted = json.loads((run_dir / "metrics.json").read_text())
    assert interrupted["interrupted"] is True and 60 <= interrupted["train_steps"] < 180

    processes = start_workers(tmp_path, run_dir, *overrides)
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs[0][1][-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 3 and "interrupted" not in metrics
    # The interrupted epoch is replayed from its start, as a single-process run resumes; the
    # steps taken before the signal count too.
    completed, steps = interrupted["epochs_completed"], interrupted["train_steps"]
    assert metrics["train_steps"] == steps + (3 - completed) * 60


def test_single_machine_strategies_train_with_fit_and_mirrored_on_one_device_is_one_device(tmp_path):
    """tf.distribute rebuilds the input pipeline, so the shuffled order (and the numbers) differ
    from a run without a strategy; a mirrored strategy over this machine's one device must give
    exactly what the one-device strategy gives."""
    from taskzoo import train

    results = {}
    for name in ("one_device", "mirrored"):
        cfg = compose_config("task=sentiment", *TINY, "trainer.deterministic=true", f"trainer.strategy={name}")
        results[name] = train.run(cfg, run_dir=tmp_path / name)
        assert results[name]["train_steps"] == 8 and (tmp_path / name / "model.keras").is_file()
    for split in ("test", "validation"):
        assert results["mirrored"][split] == pytest.approx(results["one_device"][split], rel=1e-6)
