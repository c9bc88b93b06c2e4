"""Re-scores finished runs with the task's current scoring code (for example after a decoding
fix), and prints the scores as one line of JSON per run.

    taskzoo-evaluate RUN_DIR [RUN_DIR ...] [--set task.beam_size=1 ...]
    taskzoo-evaluate multirun/2026-12-07_10-00-00          # every finished run of a sweep

Each argument is a finished run or a folder with finished runs below it. The scores are those a
task computes itself on a whole split after training, which later code can change: translation's
BLEU, captioning's BLEU-1 to BLEU-4, the video task's edit score and segment F1, the tagger's
unseen-word accuracy and macro-F1. Sentiment and char_lm runs have none (their scores are Keras
metrics, in `metrics.json`), and a line on standard error says so.

The run's data is rebuilt from its own `.hydra/config.yaml`; `--set` overrides a value of it
(decoding settings such as `task.beam_size`), checked like a training run's own value.
`metrics.json` is left as the run wrote it.
"""

import argparse
import json
import pathlib
import sys

from taskzoo.quiet import import_tensorflow_quietly, run_first_operations_quietly

import_tensorflow_quietly()

from omegaconf import OmegaConf  # noqa: E402

from taskzoo.compare import find_runs  # noqa: E402
from taskzoo.config import TASK_SCHEMAS, check_override, override_values, validate_config  # noqa: E402
from taskzoo.errors import ConfigError, one_line_errors  # noqa: E402
from taskzoo.predict import load_run_config  # noqa: E402
from taskzoo.tasks import build_task  # noqa: E402
from taskzoo.tasks.base import Task, load_run_model  # noqa: E402


def with_overrides(cfg, task_name, overrides):
    """The run's configuration with `overrides` (KEY=VALUE) applied, each read and checked as the
    command line reads and checks a training run's own (`check_override`: the setting and its
    type in the run's task's schema), then the whole by `validate_config` (the ranges). The
    run's own values are taken as they are, so that runs of earlier versions can be re-scored."""
    if task_name not in TASK_SCHEMAS:
        raise ConfigError(f"Unknown task {task_name!r} (task.name); expected one of {sorted(TASK_SCHEMAS)}.")
    for override in overrides:
        key, separator, _ = override.partition("=")
        if not separator or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {override!r}.")
        try:
            check_override(override, [task_name])
        except ConfigError as error:
            raise ConfigError(f"--set {error}") from None
        key, values = override_values(override)
        if values is None or len(values) != 1:
            raise ConfigError(f"--set {override}: one plain value is expected, not a sweep or an interpolation.")
        OmegaConf.update(cfg, key, values[0], merge=True)
    validate_config(cfg)
    return cfg


def evaluate_run(run_dir, overrides):
    """The validation and test scores of one finished run, recomputed from its saved model."""
    cfg, task_name = load_run_config(run_dir)
    task = build_task(with_overrides(cfg, task_name, overrides))
    if type(task).extra_metrics is Task.extra_metrics:
        print(f"{run_dir}: {task_name} runs have no scores of their own to recompute; their Keras metrics "
              "are in metrics.json.", file=sys.stderr)
        return {"validation": {}, "test": {}}
    task.datasets()
    network = load_run_model(run_dir)
    return {split: task.extra_metrics(network, split) for split in ("validation", "test")}


def main(arguments=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", type=pathlib.Path, help="finished runs, or folders of runs")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, a configuration override")
    options = parser.parse_args(arguments)
    run_first_operations_quietly()
    with one_line_errors():
        for run_dir in find_runs(options.run_dirs):
            scores = evaluate_run(run_dir, options.set)
            print(json.dumps({"run_dir": str(run_dir), **scores}), flush=True)


if __name__ == "__main__":
    main()
