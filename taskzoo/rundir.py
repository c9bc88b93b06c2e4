"""Run directories: a run never writes into a directory that holds another, finished run; the
jobs of a sweep that fail are reported, and the sweep goes on; the same command resumes an
interrupted sweep."""

import contextlib
import fcntl
import json
import logging
import os
import pathlib
import shutil
import socket
import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

# The file that marks a run as finished; it is written last.
FINISHED_MARKER = "metrics.json"
# The file that marks a job of a sweep that failed; it holds the error.
FAILED_MARKER = "failed.txt"
# The file a running command locks in its run (or sweep) directory; it names the process.
LOCK_FILE = ".lock"
# Written at a sweep's root when its last job has ended; a sweep without it was interrupted.
SWEEP_DONE_MARKER = "sweep_done.txt"
# Where a resumed sweep keeps the configuration files of a job that ended (`.hydra/`): Hydra
# writes every job's files again before the job runs, and `ended_job` puts the job's own back.
KEPT_CONFIGURATION = ".hydra-ended"

logger = logging.getLogger(__name__)


def is_interrupted(marker):
    """True for the metrics.json of a run stopped by a signal, which the same command resumes."""
    try:
        return json.loads(marker.read_text()).get("interrupted") is True
    except (OSError, ValueError, AttributeError):
        return False


def has_results(marker):
    """True for the metrics.json of a run that trained to its end and was tested (not one
    stopped by a signal or a non-finite loss, nor an unreadable file)."""
    try:
        metrics = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and not metrics.get("interrupted") and "test" in metrics


def finished_runs_in(directory, with_results=False):
    """Returns the finished runs found in `directory` or below it (interrupted runs excepted),
    in name order; with `with_results`, only those that were tested (see `has_results`)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    keep = has_results if with_results else (lambda marker: not is_interrupted(marker))
    return sorted(path.parent for path in directory.rglob(FINISHED_MARKER) if keep(path))


class DirectoryInUse(Exception):
    pass


class DirectoryLock:
    """An exclusive lock on a run or sweep directory while one command uses it.

    It is an advisory `flock` on `<directory>/.lock`, which holds the process ID and host of its
    holder. The operating system releases it when the process ends, however it ends (a crash, a
    kill -9), so a lock left by a killed process never blocks the command that resumes the run.
    """

    def __init__(self, directory):
        self.path = pathlib.Path(directory) / LOCK_FILE
        self.file = None

    def acquire(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = open(self.path, "a+")
        except OSError as error:
            raise DirectoryInUse(
                f"cannot use {self.path.parent} as a run directory ({error.strerror or error}); "
                "choose a writable directory with hydra.run.dir or hydra.sweep.dir."
            ) from None
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "another process"
            lock_file.close()
            raise DirectoryInUse(
                f"{self.path.parent} is in use by {holder} ({self.path}); wait for it to end, or "
                "choose another hydra.run.dir or hydra.sweep.dir."
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        lock_file.flush()
        self.file = lock_file

    def release(self):
        if self.file is not None:
            self.file.close()
            self.file = None

    # Launchers that run jobs in other processes (joblib, submitit) pickle the Hydra callbacks;
    # the lock stays with the process that took it.
    def __getstate__(self):
        return {"path": self.path, "file": None}


class RunDirectoryGuard(Callback):
    """A Hydra callback that keeps every run's outputs safe.

    Before Hydra writes anything into the run (or sweep) directory, it refuses a directory that
    already holds a finished run, so an earlier run's outputs (its `.hydra/` configuration
    included) are never overwritten, and it locks the directory, so that a second command for a
    directory in use stops with one line instead of mixing its outputs in. The workers of one
    multi-worker run share their directory by design and do not lock it. An interrupted sweep is
    the exception: the same command resumes it, and its jobs that ended are kept as they are
    (`ended_job`). At the end of a sweep it prints the comparison of its runs and lists the jobs
    that failed (exit code 1).
    """

    def __init__(self):
        self.lock = None

    def _lock(self, directory, config):
        if str(OmegaConf.select(config, "trainer.strategy")) == "multi_worker":
            return
        self.lock = DirectoryLock(directory)
        try:
            self.lock.acquire()
        except DirectoryInUse as error:
            print(f"Error: {error}", file=sys.stderr)
            sys.exit(2)

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
        self._lock(config.hydra.run.dir, config)

    def on_multirun_start(self, config: DictConfig, **kwargs):
        from taskzoo.observe import hparams

        sweep_dir = pathlib.Path(config.hydra.sweep.dir)
        # The overrides of an earlier attempt of a sweep in this directory (None: no sweep).
        earlier = hparams.read_sweep_file(sweep_dir).get("overrides")
        resumed = earlier is not None and names_jobs_by_overrides(config)
        if resumed:
            self._refuse_unless_resumable(sweep_dir, earlier, config)
        else:
            self._refuse_if_finished(sweep_dir, "hydra.sweep.dir")
        self._lock(sweep_dir, config)
        if resumed:
            keep_ended_configurations(sweep_dir, config.hydra.output_subdir)
        if earlier is None:
            declare_sweep(config)

    def _refuse_unless_resumable(self, sweep_dir, earlier, config):
        """The same command resumes an interrupted sweep: the jobs that ended are kept, an
        interrupted job resumes from its backup, the others run. A sweep that ended, or one
        started with other overrides, is refused."""
        if (sweep_dir / SWEEP_DONE_MARKER).exists():
            print(f"Error: {sweep_dir} holds a sweep that ended; choose another hydra.sweep.dir so that its "
                  "outputs are kept.", file=sys.stderr)
            sys.exit(2)
        if earlier != list(config.hydra.overrides.task):
            print(f"Error: {sweep_dir} holds an interrupted sweep of other overrides ({' '.join(earlier)}); "
                  "that command resumes it, or choose another hydra.sweep.dir.", file=sys.stderr)
            sys.exit(2)

    def on_multirun_end(self, config: DictConfig, **kwargs):
        from taskzoo.compare import write_sweep_comparison

        sweep_dir = pathlib.Path(config.hydra.sweep.dir)
        write_sweep_comparison(sweep_dir)
        report_best_trial(sweep_dir)
        (sweep_dir / SWEEP_DONE_MARKER).write_text("Every job of this sweep has ended.\n")
        failed = sorted(sweep_dir.rglob(FAILED_MARKER))
        if failed:
            print(
                f"Error: {len(failed)} job(s) of the sweep failed: "
                f"{', '.join(str(path.parent) for path in failed)} (see {FAILED_MARKER} in each).",
                file=sys.stderr,
            )
            sys.exit(1)


def keep_ended_configurations(sweep_dir, output_subdir):
    """Copies the configuration files of every job that ended before a sweep resumes, for
    `ended_job` to put back after Hydra has written the job's files again. A copy left by an
    earlier attempt is kept: it is the job's own."""
    if output_subdir is None:
        return
    for run in finished_runs_in(sweep_dir):
        if (run / output_subdir).is_dir() and not (run / KEPT_CONFIGURATION).exists():
            shutil.copytree(run / output_subdir, run / KEPT_CONFIGURATION)


def names_jobs_by_overrides(config):
    """Whether the sweep names each job's directory by the job's overrides (taskzoo's default),
    so that the same directory always holds the same job. A search's `trial_<n>` directories do
    not: its trial 0 may sample other values at every attempt, so such a sweep is not resumed."""
    subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir")
    return str(subdir).startswith("${job_directory_name:")


def declare_sweep(config):
    """Writes, at the sweep's root, the keys it varies (read by its jobs to name their trials)
    and the experiment that lines its jobs up in TensorBoard's HParams tab."""
    from taskzoo.observe import hparams

    sweep_dir = pathlib.Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    overrides = list(config.hydra.overrides.task)
    swept = hparams.swept_keys(overrides, OmegaConf.select(config, "hydra.sweeper.params"))
    hparams.write_sweep_file(sweep_dir, config.task.name, swept, overrides)
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


def ended_job(run_dir):
    """The `metrics.json` of a sweep's job that ended in an earlier attempt of the sweep (its
    outputs are kept, and it is not run again), or None for a job to run: a new one, one that
    was interrupted (it resumes from its backup), or one that failed before training (it is
    tried again)."""
    from hydra.core.hydra_config import HydraConfig

    marker = run_dir / FINISHED_MARKER
    if marker.is_file() and not is_interrupted(marker):
        hydra_config = HydraConfig.get()
        kept = run_dir / KEPT_CONFIGURATION
        if kept.is_dir() and hydra_config.output_subdir is not None:
            shutil.rmtree(run_dir / hydra_config.output_subdir, ignore_errors=True)
            kept.rename(run_dir / hydra_config.output_subdir)
        print(f"Job {hydra_config.job.num} ended in an earlier attempt of this sweep; its outputs in {run_dir} "
              "are kept.")
        return json.loads(marker.read_text()) if has_results(marker) else {}
    (run_dir / FAILED_MARKER).unlink(missing_ok=True)
    return None


@contextlib.contextmanager
def sweep_job_errors():
    """Inside a sweep: a job's error is reported and swallowed, so the next job runs; a stop
    signal (Ctrl-C, SIGTERM) still ends the whole sweep."""
    from taskzoo.errors import TrainingError

    try:
        yield
    except TrainingError as error:
        if error.exit_code != 2:
            from hydra.core.hydra_config import HydraConfig

            sweep_dir = HydraConfig.get().sweep.dir
            print(f"Error: {error} The sweep's command with hydra.sweep.dir={sweep_dir} resumes the whole sweep, "
                  "keeping the jobs that ended.", file=sys.stderr)
            sys.exit(error.exit_code)
        report_failed_job(error)
    except Exception as error:  # A job's bug or resource error must not end the whole sweep.
        report_failed_job(error)
