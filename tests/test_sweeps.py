"""Sweeps: a failing job does not stop the others, an interrupted sweep resumes, job directory
names, parallel jobs with joblib, experiment recipes, a hyperparameter search."""

import json
import signal
import time

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from conftest import TINY, run_cli
from test_resilience import start_run, wait_for_backup
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
def test_a_sweep_over_data_files_gives_each_file_its_own_job_directory(tmp_path):
    # Job names leave paths out, so without the swept file's name both jobs would share one
    # directory.
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        rows = [f"{'positive' if index % 2 else 'negative'}\tnot bad at all {index}" for index in range(48)]
        (tmp_path / name / "reviews.tsv").write_text("label\ttext\n" + "\n".join(rows) + "\n")
    sweep = tmp_path / "sweep"
    completed = run_cli(
        ["-m", "task=sentiment", *TINY, "task.data.source=files", "task.data.train=first/reviews.tsv,second/reviews.tsv",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert len(jobs) == 2 and all((job / "metrics.json").is_file() for job in jobs)
    assert "task.data.train=first_reviews.tsv," in jobs[0].name
    assert "task.data.train=second_reviews.tsv," in jobs[1].name


@pytest.mark.slow
def test_the_same_command_resumes_an_interrupted_sweep_and_keeps_the_jobs_that_ended(tmp_path):
    sweep = tmp_path / "sweep"
    arguments = ["-m", "task=sentiment", *TINY, "trainer.epochs=4", "trainer.steps_per_epoch=10", "task.data.num_train=640",
                 "trainer.batch_size=16", "trainer.early_stopping_patience=null", "model=rnn,gru", f"hydra.sweep.dir={sweep}"]
    process = start_run(arguments, tmp_path)
    deadline = time.time() + 300
    while not list(sweep.glob("*model=gru*")) and time.time() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    [second] = sweep.glob("*model=gru*")
    wait_for_backup(second, process, epoch=1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1].endswith(
        f"The sweep's command with hydra.sweep.dir={sweep} resumes the whole sweep, keeping the jobs that ended.")
    stopped = json.loads((second / "metrics.json").read_text())
    assert stopped["interrupted"] is True
    [first] = sweep.glob("*model=rnn*")
    # Marks the ended job's record of its settings: the resumed sweep must not write over it.
    with open(first / ".hydra" / "config.yaml", "a") as record:
        record.write("# the settings this run was trained with\n")
    first_outputs = {name: (first / name).read_bytes() for name in ("metrics.json", "model.keras", ".hydra/config.yaml")}

    other = run_cli([*arguments[:-2], "model=rnn,lstm", arguments[-1]], cwd=tmp_path)
    assert other.returncode == 2
    assert other.stderr.strip().splitlines()[-1].startswith(f"Error: {sweep} holds an interrupted sweep of other overrides (")

    resumed = run_cli(arguments, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Job 0 ended in an earlier attempt of this sweep; its outputs in {first} are kept." in resumed.stdout
    assert {name: (first / name).read_bytes() for name in first_outputs} == first_outputs
    assert not (first / ".hydra-ended").exists()
    metrics = json.loads((second / "metrics.json").read_text())
    # The interrupted job resumed from its backup: it redid its interrupted epoch, no more.
    assert "interrupted" not in metrics and metrics["epochs_completed"] == 4
    assert metrics["train_steps"] == stopped["train_steps"] + (4 - stopped["epochs_completed"]) * 10
    assert "Comparison of the sweep's 2 finished run(s)" in resumed.stdout

    again = run_cli(arguments, cwd=tmp_path)
    assert again.returncode == 2 and f"Error: {sweep} holds a sweep that ended;" in again.stderr


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


@pytest.mark.slow
def test_a_two_trial_optuna_search_maximises_the_validation_metric_and_reports_the_best(tmp_path):
    sweep = tmp_path / "sweep"
    completed = run_cli(
        ["-m", "task=sentiment", "hparams_search=sentiment_optuna", "hydra.sweeper.n_trials=2", *TINY,
         f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    trials = sorted(sweep.glob("trial_*"))
    assert [trial.name for trial in trials] == ["trial_0", "trial_1"]
    accuracies, sampled = [], []
    for trial in trials:
        metrics = json.loads((trial / "metrics.json").read_text())
        accuracies.append(metrics["validation"]["accuracy"])
        config = OmegaConf.load(trial / ".hydra" / "config.yaml")
        sampled.append((config.model.units, config.model.num_layers, config.model.dropout,
                        config.trainer.learning_rate, config.trainer.clipnorm))
        # model.units is fixed on the command line (TINY), which takes it out of the search.
        assert config.model.units == 8 and config.model.num_layers in (1, 2)
        assert 0 <= config.model.dropout <= 0.5 and 3e-4 <= config.trainer.learning_rate <= 1e-2
        assert 0.1 <= config.trainer.clipnorm <= 10
    assert sampled[0] != sampled[1]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(max(accuracies))
    assert set(best.best_params) == {"model.num_layers", "model.dropout", "trainer.learning_rate", "trainer.clipnorm"}
    assert f"Best value: {best.best_value}" in completed.stdout + completed.stderr
    best_trial = trials[accuracies.index(max(accuracies))]
    assert f"Best trial: {best_trial} (objective {best.best_value}" in completed.stdout

    # A search is not resumed in its directory: its trial_0 may sample other values at every
    # attempt, and the ended trial's outputs would be taken for the new one's.
    (sweep / "sweep_done.txt").unlink()
    repeated = run_cli(completed.args[3:], cwd=tmp_path)
    assert repeated.returncode == 2 and "already holds a finished run" in repeated.stderr

    # The study lives in the SQLite file: the same search continues where it stopped.
    again = run_cli(
        ["-m", "task=sentiment", "hparams_search=sentiment_optuna", "hydra.sweeper.n_trials=1", *TINY,
         f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}", f"hydra.sweep.dir={tmp_path / 'more'}"],
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    import optuna

    study = optuna.load_study(study_name="sentiment", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(study.trials) == 3


def test_a_long_job_name_is_shortened_to_a_valid_unique_directory_name():
    from taskzoo.config import job_directory_name

    short = "model=lstm,model.units=64"
    assert job_directory_name(short, 3) == short
    long = ",".join(f"trainer.learning_rate={index}.123456789012345" for index in range(12))
    other = long.replace("11.1", "11.2")
    name = job_directory_name(long, 7)
    assert len(name.encode()) <= 200 and name.startswith("7_trainer.learning_rate=0.1234")
    assert name != job_directory_name(other, 7)


def test_a_sweep_over_path_settings_keeps_them_in_the_job_names():
    from taskzoo.config import name_swept_paths

    setting = "hydra.job.config.override_dirname.exclude_keys"
    swept = name_swept_paths(["-m", "task=tagging", "task.data.train=en.conllu,fr.conllu", "task.data.test=t.conllu"])
    assert swept[:3] == ["-m", "task=tagging", "task.data.train=en.conllu,fr.conllu"]
    kept = swept[-1].partition("=[")[2].rstrip("]").split(",")
    assert swept[-1].startswith(f"{setting}=[") and "task.data.train" not in kept and "task.data.test" in kept
    # A path that every job shares stays out of the names; a single run has no job names.
    for arguments in (["-m", "task.data.train=a.tsv", "model=rnn,gru"], ["task.data.train=a.tsv"],
                      ["-m", "task.data.train=a.tsv,b.tsv", f"{setting}=[]"]):
        assert name_swept_paths(arguments) == arguments


def test_a_slash_in_a_job_name_does_not_nest_its_directory():
    from taskzoo.config import job_directory_name

    name = job_directory_name("task.data.name=universal_dependencies/en_ewt,task=tagging", 3)
    assert name == "task.data.name=universal_dependencies_en_ewt,task=tagging"


@pytest.mark.slow
def test_a_sweep_through_the_submitit_launcher_runs_every_job(tmp_path):
    # The local executor of the launcher that sends jobs to Slurm: the same pickling and job
    # set-up, in processes on this machine.
    sweep = tmp_path / "sweep"
    completed = run_cli(
        ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "task=sentiment", *TINY,
         "model=rnn,gru", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    cells = sorted(json.loads(path.read_text())["model"] for path in sweep.rglob("metrics.json"))
    assert cells == ["gru", "rnn"]


def test_the_slurm_launcher_config_sends_one_process_per_node():
    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=taskzoo_slurm", "hydra.launcher.nodes=2"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.timeout_min) == (2, 1, 240)
