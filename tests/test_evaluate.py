"""taskzoo-evaluate: a finished run's own scores recomputed from its saved model."""

import json

import pytest
from omegaconf import OmegaConf

from conftest import TINY, compose_config, run_cli
from taskzoo import evaluate, train
from taskzoo.errors import ConfigError


def finished(run_dir, *overrides):
    cfg = compose_config(*overrides, *TINY, "trainer.epochs=1")
    train.run(cfg, run_dir)
    # What Hydra writes beside every run.
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return run_dir


def test_a_run_is_rescored_to_the_scores_it_recorded(tmp_path):
    run_dir = finished(tmp_path / "sweep" / "tagger", "task=tagging")
    finished(tmp_path / "sweep" / "classifier", "task=sentiment")
    recorded = json.loads((run_dir / "metrics.json").read_text())
    # A folder of runs: every finished run below it, one line of JSON each. The command runs in
    # a fresh process, as a user starts it, and `run_cli` checks its console for warnings.
    captured = run_cli([str(tmp_path / "sweep")], cwd=tmp_path, module="taskzoo.evaluate")
    assert captured.returncode == 0, captured.stderr
    lines = [json.loads(line) for line in captured.stdout.splitlines()]
    assert [line["run_dir"] for line in lines] == [str(tmp_path / "sweep" / "classifier"), str(run_dir)]
    # The tagger's own scores (unseen-word accuracy, macro-F1) are the ones its run wrote.
    for split in ("validation", "test"):
        assert set(lines[1][split]) == {"oov_accuracy", "macro_f1"}
        assert lines[1][split] == pytest.approx({key: recorded[split][key] for key in lines[1][split]})
    # A sentiment run has none: its Keras metrics are in metrics.json, and a line says so.
    assert lines[0]["validation"] == lines[0]["test"] == {}
    assert "sentiment runs have no scores of their own to recompute" in captured.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("task.beam_size=0", "Invalid value for task.beam_size: 0 (expected a number greater than 0)."),
        ("task.beam_size=wide", "--set task.beam_size=wide: Value 'wide' of type 'str' could not be converted to Integer."),
        ("task.beam_width=3", "--set task.beam_width=3: Key 'beam_width' not in 'TranslationTaskConfig'."),
        ("task.beam_size", "--set expects KEY=VALUE, got 'task.beam_size'."),
    ],
)
def test_an_override_is_checked_like_a_training_runs_value(override, message):
    cfg = OmegaConf.create(OmegaConf.to_container(compose_config("task=translation")))
    with pytest.raises(ConfigError) as raised:
        evaluate.with_overrides(cfg, "translation", [override])
    assert str(raised.value) == message


def test_an_override_applies_to_a_plain_run_configuration():
    # A run's configuration is plain YAML; runs of earlier versions may hold keys the schema lost.
    cfg = OmegaConf.create({**OmegaConf.to_container(compose_config("task=translation")), "retired": 1})
    changed = evaluate.with_overrides(cfg, "translation", ["task.beam_size=1", "task.length_penalty=0.0"])
    assert changed.task.beam_size == 1 and changed.task.length_penalty == 0.0 and changed.retired == 1
    # Values are read as the command line reads them (Hydra's parser): text with a colon stays text.
    text = OmegaConf.create(OmegaConf.to_container(compose_config("task=char_lm")))
    assert evaluate.with_overrides(text, "char_lm", ["task.sample_prompt=ROMEO:"]).task.sample_prompt == "ROMEO:"
    with pytest.raises(ConfigError, match=r"^--set model.units=8,16: one plain value is expected"):
        evaluate.with_overrides(text, "char_lm", ["model.units=8,16"])


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as exited:
        evaluate.main([str(tmp_path / "nowhere")])
    assert str(exited.value) == f"Error: {tmp_path / 'nowhere'}: no such directory."
