"""The command line: `python -m taskzoo task=sentiment model=gru` (Hydra overrides).

The task function lives in this module rather than in `__main__`, so that launchers which run
each job in its own process (joblib, submitit) find it by its module name.
"""

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import hydra  # noqa: E402

from taskzoo.config import check_setting_names, name_swept_paths, register_configs  # noqa: E402
from taskzoo.errors import one_line_errors  # noqa: E402
from taskzoo.rundir import ended_job, sweep_job_errors  # noqa: E402

register_configs()


@hydra.main(version_base="1.3", config_path="pkg://taskzoo.conf", config_name="config")
def main(cfg):
    import pathlib

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from taskzoo import train

    if HydraConfig.get().mode != RunMode.MULTIRUN:
        with one_line_errors():
            return train.objective(train.run(cfg))
    # A job that ended in an earlier attempt of the sweep is kept as it is.
    results = ended_job(pathlib.Path(HydraConfig.get().runtime.output_dir))
    if results is not None:
        return train.objective(results)
    # In a sweep, a failing job is reported and the sweep goes on with the next job; it returns
    # NaN, which a hyperparameter search counts as a failed trial.
    with sweep_job_errors():
        results = train.run(cfg)
    return train.objective(results)


def command():
    """The `taskzoo` command (and `python -m taskzoo`): a setting that does not exist, often a
    misspelt one, is refused in one line with the setting meant before Hydra composes anything;
    a sweep over data files gets job directory names that tell its jobs apart; then Hydra's
    command line runs `main`."""
    import sys

    with one_line_errors():
        check_setting_names(sys.argv[1:])
    # Hydra reads its command line from sys.argv.
    sys.argv[1:] = name_swept_paths(sys.argv[1:])
    main()
