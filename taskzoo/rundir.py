"""Run directories: a run never writes into a directory that holds another, finished run; the
jobs of a sweep that fail are reported, and the sweep goes on."""

import contextlib
import json
import logging
import pathlib
import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# The file that marks a run as finished; it is written last.
FINISHED_MARKER = "metrics.json"
# The file that marks a job of a sweep that failed; it holds the error.
FAILED_MARKER = "failed.txt"

logger = logging.getLogger(__name__)


def is_interrupted(marker):
    """True for the metrics.json of a run stopped by a signal, which the same command resumes."""
    try:
        return json.loads(marker.read_text()).get("interrupted") is True
    except (OSError, ValueError, AttributeError):
        return False


def finished_runs_in(directory):
    """Returns the finished runs found in `directory` or below it (interrupted runs excepted)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        path.parent for path in directory.rglob(FINISHED_MARKER) if not is_interrupted(path)
    )


class RunDirectoryGuard(Callback):
    """A Hydra callback that refuses to start in a directory that already holds a finished run.

    It runs before Hydra writes anything into the run directory, so an earlier run's outputs
    (its `.hydra/` configuration included) are never overwritten. At the end of a sweep it lists
    the jobs that failed and exits with code 1.
    """

    def _refuse_if_finished(self, directory, option):
        finished = finished_runs_in(directory)
        if finished:
            print(
                f"Error: {finished[0]} already holds a finished run ({FINISHED_MARKER}); "
                f"choose another {option} so that its outputs are kept.",
                file=sys.stderr,
            )
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs):
        self._refuse_if_finished(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs):
        self._refuse_if_finished(config.hydra.sweep.dir, "hydra.sweep.dir")
        declare_sweep(config)

    def on_multirun_end(self, config: DictConfig, **kwargs):
        from taskzoo.compare import write_sweep_comparison

        write_sweep_comparison(pathlib.Path(config.hydra.sweep.dir))
        report_best_trial(pathlib.Path(config.hydra.sweep.dir))
        failed = sorted(pathlib.Path(config.hydra.sweep.dir).rglob(FAILED_MARKER))
        if failed:
            print(
                f"Error: {len(failed)} job(s) of the sweep failed: "
                f"{', '.join(str(path.parent) for path in failed)} (see {FAILED_MARKER} in each).",
                file=sys.stderr,
            )
            sys.exit(1)


def declare_sweep(config):
    """Writes, at the sweep's root, the keys it varies (read by its jobs to name their trials)
    and the experiment that lines its jobs up in TensorBoard's HParams tab."""
    from omegaconf import OmegaConf

    from taskzoo.observe import hparams

    sweep_dir = pathlib.Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    swept = hparams.swept_keys(config.hydra.overrides.task, OmegaConf.select(config, "hydra.sweeper.params"))
    hparams.write_sweep_file(sweep_dir, config.task.name, swept)
    hparams.declare_experiment(sweep_dir, config.task.name, swept)


def report_best_trial(sweep_dir):
    """After a hyperparameter search, prints the directory of its best trial."""
    results_path = sweep_dir / "optimization_results.yaml"
    if not results_path.exists():
        return
    from omegaconf import OmegaConf

    from taskzoo.train import objective

    best_value = OmegaConf.load(results_path).get("best_value")
    for run in finished_runs_in(sweep_dir):
        results = json.loads((run / FINISHED_MARKER).read_text())
        if best_value is not None and objective(results) == best_value:
            print(f"Best trial: {run} (objective {best_value}, see {results_path.name})")
            return


def report_failed_job(error):
    """Reports a failed job of a sweep in one line, and leaves the error in its directory."""
    from hydra.core.hydra_config import HydraConfig

    from taskzoo.errors import TaskzooError

    hydra_config = HydraConfig.get()
    if isinstance(error, TaskzooError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error}"
        # The traceback goes to the job's own log file.
        logger.error("The job failed.", exc_info=error)
    run_dir = pathlib.Path(hydra_config.runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_MARKER).write_text(message + "\n")
    first_line = (message.strip().splitlines() or [type(error).__name__])[0]
    overrides = hydra_config.job.override_dirname or "no overrides"
    print(f"Error in job {hydra_config.job.num} ({overrides}): {first_line}", file=sys.stderr)


@contextlib.contextmanager
def sweep_job_errors():
    """Inside a sweep: a job's error is reported and swallowed, so the next job runs; a stop
    signal (Ctrl-C, SIGTERM) still ends the whole sweep."""
    from taskzoo.errors import TrainingError

    try:
        yield
    except TrainingError as error:
        if error.exit_code != 2:
            print(f"Error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)
        report_failed_job(error)
    except Exception as error:  # A job's bug or resource error must not end the whole sweep.
        report_failed_job(error)
