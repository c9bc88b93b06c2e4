"""Sweeps: a failing job does not stop the others, parallel jobs with joblib, experiment recipes."""

import json

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from conftest import TINY, run_cli
from test_video import TINY_VIDEO


@pytest.mark.slow
def test_a_failing_job_is_reported_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    completed = run_cli(["-m", "task=sentiment", *TINY, "model.dropout=1.5,0.1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert completed.returncode == 1
    [failed_job] = sweep.glob("*model.dropout=1.5*")
    [good_job] = sweep.glob("*model.dropout=0.1*")
    assert (
        f"Error in job 0 ({failed_job.name}): Invalid value for model.dropout: 1.5 (expected a number in [0, 1))."
        in completed.stderr
    )
    assert completed.stderr.strip().splitlines()[-1].startswith(f"Error: 1 job(s) of the sweep failed: {failed_job} ")
    assert (failed_job / "failed.txt").is_file() and not (failed_job / "metrics.json").exists()
    assert json.loads((good_job / "metrics.json").read_text())["epochs_completed"] == 2


@pytest.mark.slow
def test_two_jobs_in_parallel_with_the_joblib_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    completed = run_cli(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "task=sentiment", *TINY, "model=rnn,gru",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    for cell in ("rnn", "gru"):
        [job] = sweep.glob(f"*model={cell}*")
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["model"] == cell and "accuracy" in metrics["test"]


@pytest.mark.parametrize(
    "experiment, task, sweep",
    [("char_lm_cells", "char_lm", {"model": "rnn,lstm,gru"}),
     ("video_directions", "video", {"model.bidirectional": "false,true"}),
     ("translation_attention", "translation", {"task.attention": "none,additive,multiplicative"})],
)
def test_experiment_recipes_choose_the_task_and_the_sweep(experiment, task, sweep):
    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={experiment}"], return_hydra_config=True)
    assert cfg.task.name == task
    assert dict(cfg.hydra.sweeper.params) == sweep


@pytest.mark.slow
def test_an_experiment_recipe_runs_as_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    overrides = [item for item in TINY_VIDEO if item != "task=video"]
    completed = run_cli(["-m", "+experiment=video_directions", *overrides, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    bidirectional = sorted(
        OmegaConf.load(path.parent / ".hydra" / "config.yaml").model.bidirectional
        for path in sweep.rglob("metrics.json")
    )
    assert bidirectional == [False, True]
