"""Run directories: a run never writes into a directory that holds another, finished run."""

import json
import pathlib
import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# The file that marks a run as finished; it is written last.
FINISHED_MARKER = "metrics.json"


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
    (its `.hydra/` configuration included) are never overwritten.
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
