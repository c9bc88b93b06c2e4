"""Inference from a finished run, one entry point for every task:

    python -m taskzoo.predict run_dir=RUN prompt="ROMEO:" length=500 temperature=0.8
    python -m taskzoo.predict run_dir=RUN score="To be, or not to be"
    python -m taskzoo.predict run_dir=RUN text="the plot was not dull"

Each argument is KEY=VALUE, split at the first `=`: the value is taken exactly as the shell passes
it, commas, quotes, further `=` signs and non-ASCII characters included. The run's task (read from
its `.hydra/config.yaml`) decides which keys it accepts. Only `.keras` files in safe mode and
plain YAML are loaded: nothing in a run directory can execute code.
"""

import pathlib
import sys

from taskzoo.errors import ConfigError, one_line_errors


def parse_options(arguments):
    """Splits KEY=VALUE arguments at the first `=`; returns a dict of strings."""
    options = {}
    for argument in arguments:
        key, separator, value = argument.partition("=")
        if not separator or not key:
            raise ConfigError(f"Expected KEY=VALUE arguments, got {argument!r}.")
        if key in options:
            raise ConfigError(f"{key}= is given twice.")
        options[key] = value
    return options


def load_run(run_dir):
    """Returns the run's configuration (plain YAML, loaded with OmegaConf)."""
    from omegaconf import OmegaConf

    run_dir = pathlib.Path(run_dir)
    config_path = run_dir / ".hydra" / "config.yaml"
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory.")
    if not config_path.is_file() or not (run_dir / "model.keras").is_file():
        raise ConfigError(f"{run_dir}: not a finished taskzoo run (expected .hydra/config.yaml and model.keras).")
    return OmegaConf.load(config_path)


def convert(task_name, key, value, kinds):
    if key not in kinds:
        raise ConfigError(
            f"Unknown option {key}= for a {task_name} run; expected one of: "
            f"{', '.join(['run_dir', *kinds])}."
        )
    try:
        return kinds[key](value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a valid {kinds[key].__name__}.") from None


def predict(arguments):
    options = parse_options(arguments)
    if "run_dir" not in options:
        raise ConfigError("Missing run_dir=RUN (a finished run directory).")
    run_dir = pathlib.Path(options.pop("run_dir"))
    cfg = load_run(run_dir)

    from taskzoo.tasks import TASKS

    task_name = cfg.task.name
    if task_name not in TASKS:
        raise ConfigError(f"{run_dir}: run of an unknown task {task_name!r}.")
    task_class = TASKS[task_name]
    kinds = task_class.predict_options
    if not kinds:
        raise ConfigError(f"Prediction for {task_name} runs is not available.")
    converted = {key: convert(task_name, key, value, kinds) for key, value in options.items()}
    task_class.predict(run_dir, cfg, converted)


def main():
    from taskzoo.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    with one_line_errors():
        predict(sys.argv[1:])


if __name__ == "__main__":
    main()
