"""The command line end to end: runs, sweeps, TensorBoard output, and one-line errors.

Each test runs `python -m taskzoo` in a temporary directory, outside the source tree, so it is
the installed package (with its packaged configuration) that runs.
"""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import compose_config, event_tags, hparams_trial_ids, run_cli
from taskzoo import predict, train
from taskzoo.errors import ConfigError, DataError, TaskzooError

SMOKE = ["trainer=smoke", "model.units=8", "model.embedding_dim=8", "task.data.num_train=200",
         "task.data.num_validation=40", "task.data.num_test=40"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_smoke_run_writes_metrics_model_and_tensorboard_scalars(tmp_path, model):
    run_dir = tmp_path / "run"
    # Logging every 3 steps, with 4 steps an epoch: epoch ends fall between logged steps.
    result = run_cli([f"model={model}", *SMOKE, "trainer.log_every_n_steps=3", "trainer.verbose=auto",
                      f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Run directory: {run_dir}" in result.stdout
    # The output is a pipe, not a terminal: one line per epoch, no progress bar redrawing itself,
    # and no line of this healthy run that looks like an error.
    output = result.stdout + result.stderr
    assert "\b" not in output and "\x1b" not in output and "\r" not in output
    assert [line.split(" - ")[0] for line in result.stdout.splitlines() if line.startswith("4/4 - ")] == ["4/4"] * 2
    assert not [line for line in result.stderr.splitlines() if line.startswith(("E0000", "Error", "Traceback"))]

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "sentiment" and metrics["model"] == model
    assert set(metrics["test"]) == {"accuracy", "loss"} and set(metrics["validation"]) == {"accuracy", "loss"}
    assert metrics["epochs_completed"] == 2 and metrics["train_seconds"] > 0 and metrics["evaluation_seconds"] > 0
    assert (run_dir / "model.keras").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()

    train_tags = event_tags(run_dir / "train")
    # 2 epochs of 4 steps: per-step scalars at steps 3 and 6, epoch scalars at both epoch ends.
    assert train_tags["batch_loss"] == 2 and train_tags["epoch_loss"] == 2
    assert train_tags["gradient_norm/global"] == 2
    assert train_tags[f"gradient_norm/recurrent_stack/{model}_0"] == 2
    assert train_tags["gradient_norm/classifier"] == 2 and train_tags["learning_rate"] == 2
    assert train_tags["epoch_learning_rate"] == 2
    # The default clips by global norm 1.0: the fraction of clipped steps, once per epoch.
    assert train_tags["epoch_clipped_fraction"] == 2
    assert event_tags(run_dir / "validation")["epoch_accuracy"] == 2
    root_tags = event_tags(run_dir)
    # A single run declares its own HParams experiment, named after its directory.
    assert root_tags["_hparams_/experiment"] == 1 and root_tags["_hparams_/session_start_info"] == 1
    assert hparams_trial_ids(run_dir) == ["run"]
    assert root_tags["test/accuracy"] == 1 and root_tags["main_metric/test"] == 1


@pytest.mark.slow
def test_multirun_gives_one_readable_directory_per_job(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_cli(["-m", "model=rnn,gru", *SMOKE, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = sorted(path.parent.name for path in sweep_dir.glob("*/metrics.json"))
    assert len(jobs) == 2
    # Job names are the job's overrides, sorted by key.
    assert "model=gru" in jobs[0].split(",") and "model=rnn" in jobs[1].split(",")
    for job in jobs:
        assert event_tags(sweep_dir / job)["_hparams_/session_start_info"] == 1


@pytest.mark.slow
def test_a_finished_run_is_never_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli([*SMOKE, f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    again = run_cli([*SMOKE, "model=lstm", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert again.returncode == 2
    assert "already holds a finished run" in again.stderr and "hydra.run.dir" in again.stderr
    after = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    assert after == before


def write_bad_inputs(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    (tmp_path / "bytes.tsv").write_bytes(b"label\tsentence\n1\tgood\n0\tbad \xff\n")
    (tmp_path / "good.tsv").write_text("label\tsentence\n1\tgood\n0\tbad\n")


@pytest.mark.slow
def test_bad_input_gives_one_line_and_a_nonzero_exit(tmp_path):
    write_bad_inputs(tmp_path)
    result = run_cli([*SMOKE, "task.data.source=files", "task.data.train=bytes.tsv",
                      f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error_lines and error_lines[0].startswith("Error: bytes.tsv, line 3: invalid UTF-8 byte 0xff"), result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["model.units=-3"], "Invalid value for model.units: -3 (expected a number greater than 0)."),
        (["model.dropout=1.5"], "Invalid value for model.dropout: 1.5 (expected a number in [0, 1))."),
        (["task.data.source=files", "task.data.train={}/missing.tsv"], "{}/missing.tsv: no such file or directory."),
        (["task.data.source=files", "task.data.train={}/empty.tsv"], "{}/empty.tsv: the file is empty."),
        (["task.data.source=files", "task.data.train={}/good.tsv", "task.data.label_column=stars"],
         "{}/good.tsv: no column 'stars' for the label (columns: label, sentence)."),
    ],
)
def test_bad_input_is_one_message_before_any_output(tmp_path, arguments, message):
    # The same errors in this process: the command prints them as the one line checked above.
    write_bad_inputs(tmp_path)
    with pytest.raises(TaskzooError) as raised:
        train.run(compose_config(*SMOKE, *(argument.format(tmp_path) for argument in arguments)), run_dir=tmp_path / "run")
    assert str(raised.value).startswith(message.format(tmp_path))
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_misspelt_setting_is_one_line_naming_the_setting_meant(tmp_path):
    result = run_cli(["trainer.lr=0.1", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("Error: trainer.lr is not a setting; did you mean trainer.learning_rate? "
                                     "(`taskzoo --cfg job` prints every setting of a run).")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_wrong_type_fails_before_any_training(tmp_path):
    result = run_cli(["model.units=abc", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: model.units=abc: Value 'abc' of type 'str' could not be converted to Integer."
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_predict_the_class_of_a_text_from_a_finished_run(tmp_path):
    run_dir = tmp_path / "runs" / "run"
    assert run_cli([*SMOKE, f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    result = run_cli([f"run_dir={run_dir}", 'text=the plot was "fine", but = dull'], cwd=tmp_path, module="taskzoo.predict")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.split(" ")[0] in ("negative", "positive")
    probabilities = [float(line.split(": ")[1]) for line in rest]
    assert len(probabilities) == 2 and abs(sum(probabilities) - 1) < 1e-3
    # A wrong option and a damaged run configuration are checked in this process (the one-line
    # message and exit status 2 of the command are checked in test_resilience and test_translation).
    with pytest.raises(ConfigError, match="^Unknown option prompt= for a sentiment run"):
        predict.predict([f"run_dir={run_dir}", "prompt=x"])

    # A folder of runs: the newest finished run below it answers, and a line says which. A file
    # of three lines gives three answers, one per line; a text of unknown words is warned about.
    (tmp_path / "texts.txt").write_text("the plot was fine\nzzyzx qwrtp vbnmk\nthe acting was dull\n")
    batch = run_cli([f"run_dir={tmp_path / 'runs'}", "file=texts.txt"], cwd=tmp_path, module="taskzoo.predict")
    assert batch.returncode == 0, batch.stderr
    answers = batch.stdout.splitlines()
    assert len(answers) == 3 and all(answer.split("\t")[0] in ("negative", "positive") for answer in answers)
    assert f"Using the newest finished run below {tmp_path / 'runs'}: {run_dir}" in batch.stderr
    warnings = [line for line in batch.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == ["Warning: line 2: none of its 3 words is in the model's vocabulary; the answer rests on none of them."]
    # The same answers for the same texts read from standard input.
    piped = subprocess.run([sys.executable, "-m", "taskzoo.predict", f"run_dir={run_dir}", "file=-"], cwd=tmp_path,
                           input=(tmp_path / "texts.txt").read_text(), capture_output=True, text=True)
    assert piped.stdout.splitlines() == answers

    # A damaged run configuration: the message names the file.
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / ".hydra" / "config.yaml").write_text("task: [unclosed\n")
    with pytest.raises(DataError) as raised:
        predict.predict([f"run_dir={damaged}", "text=fine"])
    assert str(raised.value).startswith(f"{damaged / '.hydra' / 'config.yaml'}: not a readable run configuration")


def test_predict_help_lists_the_options_of_every_task_and_of_one(tmp_path):
    general = run_cli(["--help"], cwd=tmp_path, module="taskzoo.predict")
    assert general.returncode == 0, general.stderr
    for heading in ("sentiment runs:", "char_lm runs:", "video runs:", "translation runs:", "captioning runs:",
                    "tagging runs:"):
        assert heading in general.stdout
    # One task's help, and an unknown task, in this process.
    one = predict.help_for(["translation", "--help"])
    assert one.startswith("translation runs:") and "beam_size=INT" in one and "sentiment runs:" not in one
    with pytest.raises(ConfigError, match="^Unknown task 'tagger'; expected one of "):
        predict.help_for(["tagger", "--help"])
