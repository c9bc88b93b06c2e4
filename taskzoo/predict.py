"""Inference from a finished run, one entry point for every task:

    taskzoo-predict run_dir=RUN text="the plot was not dull"          # sentiment, translation
    taskzoo-predict run_dir=RUN file=reviews.txt                      # one answer per line
    taskzoo-predict run_dir=RUN prompt="ROMEO:" length=500 temperature=0.8
    taskzoo-predict run_dir=runs/sentiment-gru text="..."             # the newest finished run below
    taskzoo-predict TASK --help                                       # the options of one task

`python -m taskzoo.predict` is the same command. Each argument is KEY=VALUE, split at the first
`=`: the value is taken exactly as the shell passes it, commas, quotes, further `=` signs and
non-ASCII characters included. `run_dir=` is a finished run, or a folder with runs below it (the
newest finished one is used). The run's task (read from its `.hydra/config.yaml`) decides which
keys it accepts. Only `.keras` files in safe mode and plain YAML are loaded: nothing in a run
directory can execute code.
"""

import pathlib
import sys

from taskzoo.errors import ConfigError, DataError, one_line_errors

USAGE = "usage: taskzoo-predict run_dir=RUN KEY=VALUE ...   (taskzoo-predict [TASK] --help for the options)"


def parse_options(arguments):
    """Splits KEY=VALUE arguments at the first `=`; returns a dict of strings."""
    options = {}
    for argument in arguments:
        key, separator, value = argument.partition("=")
        if not separator or not key:
            raise ConfigError(f"Expected KEY=VALUE arguments, got {argument!r}; {USAGE}")
        if key in options:
            raise ConfigError(f"{key}= is given twice.")
        options[key] = value
    return options


def find_run(path):
    """The run to predict with: `path` itself when it holds a run, else the newest finished run
    below it (by the time its `metrics.json` was written), announced on standard error."""
    path = pathlib.Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such run directory.")
    if (path / ".hydra" / "config.yaml").is_file():
        if not (path / "model.keras").is_file():
            raise ConfigError(f"{path}: not a finished taskzoo run (it has no model.keras).")
        return path
    from taskzoo.rundir import finished_runs_in

    runs = [
        run for run in finished_runs_in(path, with_results=True)
        if (run / ".hydra" / "config.yaml").is_file() and (run / "model.keras").is_file()
    ]
    if not runs:
        raise ConfigError(
            f"{path}: no finished taskzoo run in it or below it (expected .hydra/config.yaml, "
            "model.keras and metrics.json)."
        )
    newest = max(runs, key=lambda run: (run / "metrics.json").stat().st_mtime)
    print(f"Using the newest finished run below {path}: {newest}", file=sys.stderr)
    return newest


def load_run_config(run_dir):
    """Returns the run's configuration (plain YAML, loaded with OmegaConf)."""
    from omegaconf import OmegaConf

    config_path = run_dir / ".hydra" / "config.yaml"
    try:
        cfg = OmegaConf.load(config_path)
        task_name = cfg.task.name
    except Exception as error:  # YAML and OmegaConf each raise their own kinds.
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"{config_path}: not a readable run configuration ({reason[:150]}).") from None
    return cfg, task_name


def convert(task_name, key, value, options):
    if key not in options:
        raise ConfigError(
            f"Unknown option {key}= for a {task_name} run; expected one of: "
            f"{', '.join(['run_dir', *options])} (taskzoo-predict {task_name} --help)."
        )
    try:
        return options[key].convert(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a valid {options[key].convert.__name__}.") from None


def task_help(task_name):
    """The options of one task's prediction, one per line."""
    from taskzoo.tasks import TASKS

    lines = [f"{task_name} runs:", "  run_dir=RUN".ljust(26) + "a finished run, or a folder of runs (the newest is used)"]
    for key, option in TASKS[task_name].predict_options.items():
        lines.append(f"  {key}={option.convert.__name__.upper()}".ljust(26) + option.help)
    return "\n".join(lines)


def full_help():
    from taskzoo.tasks import TASKS

    return "\n\n".join([__doc__.strip(), *(task_help(name) for name in TASKS if TASKS[name].predict_options)])


def help_for(arguments):
    """The help that `--help` asks for: one task's (named, or the task of `run_dir=`), or all."""
    from taskzoo.tasks import TASKS

    rest = [argument for argument in arguments if argument not in ("-h", "--help")]
    for argument in rest:
        if argument in TASKS:
            return task_help(argument)
        if argument.startswith("run_dir="):
            run_dir = find_run(argument.partition("=")[2])
            return task_help(load_run_config(run_dir)[1])
    if rest:
        raise ConfigError(f"Unknown task {rest[0]!r}; expected one of {sorted(TASKS)}.")
    return full_help()


def predict(arguments):
    if not arguments:
        raise ConfigError(f"Missing run_dir=RUN (a finished run directory); {USAGE}")
    if "-h" in arguments or "--help" in arguments:
        print(help_for(arguments))
        return
    options = parse_options(arguments)
    if "run_dir" not in options:
        raise ConfigError(f"Missing run_dir=RUN (a finished run directory); {USAGE}")
    run_dir = find_run(options.pop("run_dir"))
    cfg, task_name = load_run_config(run_dir)

    from taskzoo.tasks import TASKS

    if task_name not in TASKS:
        raise ConfigError(f"{run_dir}: run of an unknown task {task_name!r}.")
    task_class = TASKS[task_name]
    if not task_class.predict_options:
        raise ConfigError(f"Prediction for {task_name} runs is not available.")
    converted = {key: convert(task_name, key, value, task_class.predict_options) for key, value in options.items()}
    task_class.predict(run_dir, cfg, converted)


def main():
    from taskzoo.quiet import import_tensorflow_quietly, run_first_operations_quietly

    import_tensorflow_quietly()
    run_first_operations_quietly()
    with one_line_errors():
        predict(sys.argv[1:])


if __name__ == "__main__":
    main()
