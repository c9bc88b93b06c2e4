"""TensorBoard's HParams tab: a declared experiment, so that the runs of a sweep line up.

Without a declaration TensorBoard infers every configuration key (about fifty) and every scalar as
a column. taskzoo declares the experiment instead:

- the hyperparameters that identify a run (`IDENTITY_HYPERPARAMETERS`) and every key the sweep
  varies, the varied keys first;
- the metrics: the task's main metric on the test and validation splits first (under the
  task-independent tags `main_metric/test` and `main_metric/validation`, so runs of several tasks
  in one log directory still share these columns), then the loss on both splits, the epochs
  trained and the training time.

A single run declares its experiment in its own directory; a sweep declares one at its root, and
its jobs only write their hyperparameters and results. The trial ID, TensorBoard's first column,
is the job's values of the swept keys (`model=gru,model.units=64`), or the run's name.
"""

import json
import pathlib

import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api
from tensorboard.plugins.hparams.summary_v2 import Domain

# The hyperparameters that identify a run, whatever the sweep varies.
IDENTITY_HYPERPARAMETERS = (
    "task.name",
    "model.cell",
    "model.units",
    "model.num_layers",
    "model.bidirectional",
    "model.dropout",
    "trainer.learning_rate",
    "trainer.batch_size",
)
# A config group chosen on the command line (`model=gru`) names its choice; these groups also
# set a key that says which choice it was.
GROUP_KEYS = {"task": "task.name", "model": "model.cell"}
# The file at a sweep's root that tells its jobs which keys the sweep varies.
SWEEP_FILE = "sweep.json"


class _Varied(Domain):
    """A domain that marks a hyperparameter as varied across the runs (TensorBoard lists varied
    hyperparameters first), without restricting its values."""

    dtype = None

    def sample_uniform(self, rng=None):
        raise NotImplementedError("A varied hyperparameter has no values to sample.")

    def update_hparam_info(self, hparam_info):
        hparam_info.differs = True


def swept_keys(overrides, sweeper_params=None):
    """The keys a sweep varies: command-line overrides with several values (`model=rnn,gru`,
    `model.units=range(32,128,32)`), and the keys of `hydra.sweeper.params` (experiment recipes,
    hyperparameter searches). A group (`model`) stands for the key it sets (`model.cell`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = [
        override.key_or_group
        for override in OverridesParser.create().parse_overrides(list(overrides))
        if override.is_sweep_override()
    ]
    keys += [str(key) for key in (sweeper_params or {})]
    return list(dict.fromkeys(key.lstrip("+~") for key in keys))


def hyperparameter_name(key):
    return GROUP_KEYS.get(key, key)


def declare_experiment(log_dir, task_name, swept=()):
    """Writes the experiment (its hyperparameters and metrics) for the HParams tab."""
    from taskzoo.tasks import main_metric

    swept_names = [hyperparameter_name(key) for key in swept]
    hyperparameters = [
        hparams_api.HParam(name, _Varied() if name in swept_names else None)
        for name in dict.fromkeys([*IDENTITY_HYPERPARAMETERS, *swept_names])
    ]
    main, _ = main_metric(task_name)
    metrics = [
        hparams_api.Metric("main_metric/test", display_name=f"test {main} (main metric)"),
        hparams_api.Metric("main_metric/validation", display_name=f"validation {main} (main metric)"),
        hparams_api.Metric("test/loss", display_name="test loss"),
        hparams_api.Metric("final_validation/loss", display_name="validation loss"),
        hparams_api.Metric("run/epochs", display_name="epochs"),
        hparams_api.Metric("run/train_seconds", display_name="training seconds"),
    ]
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hparams_api.hparams_config(hparams=hyperparameters, metrics=metrics)


def run_hyperparameters(cfg, group_choices=None):
    """The run's configuration as {"model.units": 128, ...} with values TensorBoard accepts, and
    the choice of every config group the sweep varies (`trainer`: `smoke`)."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    flat = {}

    def visit(prefix, node):
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                visit(name, value)
            elif value is None:
                flat[name] = "none"
            elif isinstance(value, (bool, int, float, str)):
                flat[name] = value
            else:
                flat[name] = json.dumps(value)

    visit("", {key: container[key] for key in ("task", "model", "trainer")})
    for group, choice in (group_choices or {}).items():
        flat.setdefault(hyperparameter_name(group), str(choice))
    return flat


def write_run_entry(log_dir, cfg, run_dir):
    """Writes one run's entry in the HParams tab: a single run declares its experiment and is
    named by its directory; a job of a sweep is named by its values of the swept keys, under the
    experiment its sweep declared."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    group_choices = {}
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        trial_id = run_name(run_dir)
        declare_experiment(log_dir, cfg.task.name)
    else:
        hydra_config = HydraConfig.get()
        swept = read_swept_keys(hydra_config.sweep.dir) or []
        choices = hydra_config.runtime.choices
        group_choices = {key: choices[key] for key in swept if key in choices}
        fallback = hydra_config.job.override_dirname or run_name(run_dir)
        trial_id = trial_id_of_job(hydra_config.overrides.task, swept, fallback)
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hparams_api.hparams(run_hyperparameters(cfg, group_choices), trial_id=trial_id)


def write_sweep_file(sweep_dir, task_name, swept, overrides):
    """Records, at the sweep's root, its task, the keys it varies and its command-line overrides
    (which the command that resumes the sweep must repeat)."""
    path = pathlib.Path(sweep_dir) / SWEEP_FILE
    content = {"task": task_name, "swept": list(swept), "overrides": list(overrides)}
    path.write_text(json.dumps(content, indent=2) + "\n")


def read_sweep_file(sweep_dir):
    """What `write_sweep_file` recorded in `sweep_dir`, or {} outside a sweep."""
    try:
        content = json.loads((pathlib.Path(sweep_dir) / SWEEP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def read_swept_keys(sweep_dir):
    """The keys the sweep in `sweep_dir` varies, or None outside a sweep that declared them."""
    return read_sweep_file(sweep_dir).get("swept")


def trial_id_of_job(job_overrides, swept, fallback):
    """`model=gru,model.units=64`: the job's values of the keys the sweep varies."""
    values = {}
    for override in job_overrides:
        key, _, value = str(override).partition("=")
        values[key.lstrip("+~")] = value
    chosen = [f"{key}={short_number(values[key])}" for key in swept if key in values]
    return ",".join(chosen) or fallback


def short_number(value):
    """A long number written as text (a search's sampled value) with four significant digits
    (`0.0003162`); any other text as it is."""
    if len(value) > 8:
        try:
            return f"{float(value):.4g}"
        except ValueError:
            pass
    return value


def run_name(run_dir):
    """A run's readable name: its directory relative to the working directory, or its last two
    parts (`sentiment-gru/2026-12-02_10-00-00`)."""
    run_dir = pathlib.Path(run_dir).resolve()
    try:
        return str(run_dir.relative_to(pathlib.Path.cwd()))
    except ValueError:
        return "/".join(run_dir.parts[-2:])


def write_final_metrics(log_dir, results, step, main_metric):
    """Writes the final metrics as scalars: `test/<name>` and `final_validation/<name>`, the main
    metric as `main_metric/test` and `main_metric/validation`, and `run/epochs`,
    `run/train_seconds`."""
    with tf.summary.create_file_writer(str(log_dir)).as_default(step=step):
        for split, tag_prefix in (("test", "test"), ("validation", "final_validation")):
            for name, value in results[split].items():
                tf.summary.scalar(f"{tag_prefix}/{name}", value)
            if main_metric in results[split]:
                tf.summary.scalar(f"main_metric/{split}", results[split][main_metric])
        tf.summary.scalar("run/epochs", results["epochs_completed"])
        tf.summary.scalar("run/train_seconds", results["train_seconds"])
