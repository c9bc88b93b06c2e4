"""Every configuration composes; wrong types, unknown keys and impossible values fail clearly."""

import importlib.resources
import pathlib
import re
import shlex
import types

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from conftest import compose_config
from taskzoo.config import check_setting_names, validate_config
from taskzoo.errors import ConfigError


def group_options(group):
    folder = importlib.resources.files("taskzoo.conf") / group
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def test_configuration_ships_inside_the_package():
    assert (importlib.resources.files("taskzoo.conf") / "config.yaml").is_file()
    assert group_options("model") == ["gru", "lstm", "rnn"]
    assert group_options("trainer") == ["default", "smoke"]
    assert "sentiment" in group_options("task")


@pytest.mark.parametrize("task", group_options("task"))
@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("trainer", group_options("trainer"))
def test_every_combination_composes_and_validates(task, model, trainer):
    cfg = compose_config(f"task={task}", f"model={model}", f"trainer={trainer}")
    validate_config(cfg)
    assert cfg.task.name == task
    assert str(cfg.model.cell) == model


def test_defaults_and_task_adjustments():
    cfg = compose_config()
    assert cfg.task.name == "sentiment" and str(cfg.model.cell) == "gru"
    # The task file adjusts trainer knobs; the smoke profile, chosen later, wins over them.
    smoke = compose_config("trainer=smoke")
    assert smoke.trainer.epochs == 2
    assert cfg.trainer.epochs != smoke.trainer.epochs


def test_run_directory_names_task_and_cell():
    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        cfg = compose("config", overrides=["model=lstm"], return_hydra_config=True)
        run_dir = OmegaConf.to_container(cfg.hydra.run, resolve=True)["dir"]
    assert run_dir.startswith("runs/sentiment-lstm/")


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.units=abc", "could not be converted to Integer"),
        ("model.cell=lstmm", "Invalid value 'lstmm'"),
        ("model.unitz=3", "model.unitz"),
        ("task.pooling=avg", "Invalid value 'avg'"),
        ("trainer.clipnorm=big", "could not be converted to Float"),
    ],
)
def test_schema_rejects_wrong_types_and_unknown_keys(override, message):
    with pytest.raises(ConfigCompositionException) as error:
        compose_config(override)
    assert message in str(error.value) + str(error.value.__cause__)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.units=-3", "Invalid value for model.units: -3 (expected a number greater than 0)"),
        ("model.dropout=1.5", "Invalid value for model.dropout: 1.5 (expected a number in [0, 1))"),
        ("model.num_layers=-1", "model.num_layers"),
        ("trainer.learning_rate=0", "trainer.learning_rate"),
        ("task.data.validation_fraction=1.0", "task.data.validation_fraction"),
    ],
)
def test_impossible_values_raise_config_error(override, message):
    cfg = compose_config(override)
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert message in str(error.value)


def test_every_checked_key_exists_and_a_renamed_one_fails_loudly():
    from taskzoo import config

    # Every task's configuration passes through every check; a key no schema defines raises.
    for task in group_options("task"):
        validate_config(compose_config(f"task={task}"))
    with pytest.raises(KeyError, match="task.no_such_knob"):
        config._check(compose_config(), "task.no_such_knob", lambda value: True, "anything")
    with pytest.raises(KeyError, match="model.unitz"):
        config._check(compose_config(), "model.unitz", lambda value: True, "anything")


def test_each_set_of_choice_names_is_defined_once_and_read_by_the_schema_and_the_registries():
    import pickle

    from taskzoo import choices, config, optimization
    from taskzoo.blocks import attention, decoder, recurrent

    names = lambda choice: tuple(member.value for member in choice)  # noqa: E731
    assert names(config.Cell) == choices.CELLS == tuple(recurrent.CELL_LAYERS) == tuple(decoder.CELLS)
    assert names(config.Initializer) == choices.INITIALIZERS
    assert names(config.AttentionKind) == choices.ATTENTION_KINDS
    assert tuple(attention.ATTENTION_LAYERS) == (*choices.ATTENTION_SCORES, "mean")
    assert names(config.StrategyName) == choices.STRATEGIES
    assert names(config.OptimizerName) == choices.OPTIMIZERS == tuple(optimization.OPTIMIZERS)
    # The sweep launchers pickle configurations: the generated enums travel by name.
    assert pickle.loads(pickle.dumps(config.Cell.lstm)) is config.Cell.lstm
    # A registry that drifts from its names does not import.
    with pytest.raises(TypeError, match=r"misses \['gru'\] and has unknown \['lstmm'\]"):
        choices.registry(choices.CELLS, rnn=1, lstm=2, lstmm=3)


def test_an_unknown_choice_is_refused_with_the_names_of_the_one_definition():
    from taskzoo import choices, distribute
    from taskzoo.blocks.recurrent import RecurrentStack

    with pytest.raises(ConfigCompositionException) as refused:
        compose_config("model.cell=lstmm")
    assert all(name in str(refused.value.__cause__) for name in choices.CELLS)
    with pytest.raises(ValueError, match="expected one of 'rnn', 'lstm', 'gru'"):
        RecurrentStack("lstmm", units=4)
    with pytest.raises(ConfigError, match="expected one of 'auto', 'one_device', 'mirrored', 'multi_worker', 'tpu'"):
        distribute.build_strategy(types.SimpleNamespace(strategy="cloud"))


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.lr=0.1", "trainer.lr is not a setting; did you mean trainer.learning_rate?"),
        ("model.unit=8,16", "model.unit is not a setting; did you mean model.units?"),
        ("model.dropot=0.1", "model.dropot is not a setting; did you mean model.dropout?"),
        ("task.beam=3", "task.beam is not a setting; did you mean task.beam_size?"),
        ("task.data.sorce=files", "task.data.sorce is not a setting; did you mean task.data.source?"),
        ("trainr.epochs=3", "trainr.epochs is not a setting; did you mean trainer.epochs?"),
        ("model.xyzzy=1", "model.xyzzy is not a setting (`taskzoo --cfg job` prints every setting of a run)."),
    ],
)
def test_a_setting_that_does_not_exist_is_refused_with_the_one_meant(override, message):
    with pytest.raises(ConfigError) as raised:
        check_setting_names(["-m", "task=translation", override])
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["model.units=abc"], "model.units=abc: Value 'abc' of type 'str' could not be converted to Integer."),
        (["-m", "model.units=8,abc"], "model.units=8,abc: Value 'abc' of type 'str' could not be converted to Integer."),
        (["model.cell=lstmm"], "model.cell=lstmm: Invalid value 'lstmm', expected one of [rnn, lstm, gru]."),
        (["model.bidirectional=maybe"], "model.bidirectional=maybe: Value 'maybe' is not a valid bool (type str)."),
        # The named task's choices; without a task, a value no task takes.
        (["task=char_lm", "task.data.source=synthetic"],
         "task.data.source=synthetic: Invalid value 'synthetic', expected one of [stdlib, tfds, files]."),
        (["task.pooling=avg"], "task.pooling=avg: Invalid value 'avg', expected one of [last, mean, max]."),
        # A setting of another task than the one named.
        (["task=sentiment", "task.beam_size=3"], "task.beam_size=3: Key 'beam_size' not in 'SentimentTaskConfig'."),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_before_hydra_runs(arguments, message):
    with pytest.raises(ConfigError) as raised:
        check_setting_names(arguments)
    assert str(raised.value) == message


def test_values_hydra_reads_its_own_way_pass():
    # Sweeps of good values, other sweeps, null, lists, text with a colon, interpolations, and a
    # value that only another task takes (an experiment may choose that task).
    check_setting_names(["-m", "model.units=8,16", "model.units=range(8,32,8)", "trainer.max_minutes=null",
                         "task.cnn_filters=[8,16]", "task.sample_prompt=ROMEO:", "trainer.verbose=auto",
                         "trainer.learning_rate=${trainer.batch_size}", "task.data.source=stdlib"])


def test_every_override_the_docs_show_names_a_setting():
    # The commands of the README and the docs: none is refused (task settings are checked against
    # every task's schema, since an experiment may choose the task).
    root = pathlib.Path(__file__).resolve().parents[1]
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    lines = [line for page in pages for line in page.read_text().splitlines()]
    # Commands on lines of their own (in code blocks), and in `code spans` of the text.
    commands = [line.split(" #")[0].rstrip(" \\") for line in lines if re.match(r"\s*(taskzoo|python -m taskzoo) ", line)]
    commands += [span for line in lines for span in re.findall(r"`((?:taskzoo|python -m taskzoo) [^`]+)`", line)]
    # An optional override is written in brackets: [task.data.labels=FILE].
    overrides = [word[1:].rstrip("]") if word.startswith("[") else word
                 for line in commands for word in shlex.split(line) if "=" in word]
    assert len(overrides) > 100
    check_setting_names(overrides)
    # Hydra's own arguments and the group choices pass as they are.
    check_setting_names(["-m", "--cfg", "job", "hydra.run.dir=runs/x", "+experiment=char_lm_cells", "~observe",
                         "task.cnn_filters=[8,16]", "task.cnn_filters.0=4", "hydra.sweeper.params.x=1"])
