"""Training that survives faults: backups to resume from, stop signals, and non-finite losses.

- `Backup` writes the training state to `<run dir>/backup/` at the end of every epoch (and every
  N steps when asked): the weights with the optimizer's state, the best weights so far, the epoch,
  the time spent, the state of the random generators (dropout, scheduled sampling), and the state
  of the callbacks that depend on time or history (time budget, learning-rate schedule, early
  stopping). A run started again in the same run directory restores it and continues from the
  start of the interrupted epoch; `continue_data` puts the training data where it was then. Every
  file is written under a new name and the small `state.json` that names them is replaced
  atomically last, so a kill at any moment leaves the previous backup whole.
- With `exact=True` (the run's `trainer.deterministic`) only completed epochs are backed up: a
  resumed run then replays exactly what the uninterrupted run did, to the same weights.
- `GracefulStop`: the first SIGINT (Ctrl-C) or SIGTERM (what a cluster sends before preemption)
  stops training after the current step; a second one exits at once.
- `StopOnNonFiniteLoss` stops at the first step whose loss is NaN or infinite and says where.
- `keep_run_settings`: a backup resumes only under the settings it was trained with.
"""

import json
import logging
import math
import os
import pathlib
import signal
import sys
import time
import zipfile

import keras
import numpy as np
import tensorflow as tf

from taskzoo.atomic import write_json_atomic
from taskzoo.errors import ConfigError, DataError, short_cause

STATE_FILE = "state.json"
# What reading a damaged backup file raises: h5py's and numpy's errors for a cut or overwritten
# file, JSON's for a damaged state file, a missing array or file.
DAMAGED_FILE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
SETTINGS_FILE = "settings.json"
# What a resumed run may change: how long it trains and what it logs.
RESUMABLE_CHANGES = ("trainer.epochs", "trainer.max_minutes", "trainer.verbose", "trainer.log_every_n_steps",
                     "trainer.backup_every_n_steps", "observe.")

logger = logging.getLogger(__name__)


class Backup(keras.callbacks.Callback):
    """Backs up the training state into `directory` and restores it when training starts again.

    Args:
        directory: where the backup lives (inside the run directory, so a fresh run never sees
            another run's backup).
        every_n_steps: also back up every this many training steps (null: at epoch ends only).
        resumables: objects with `state()` -> dict and `restore(dict)`, saved with the backup.
        best_weights: the `keras.callbacks.EarlyStopping` that keeps the best weights, or None.
        should_skip: a function; when it returns true at an epoch end (a stop signal or a
            non-finite loss cut the epoch short) that epoch is not counted as completed.
        failed: a function; when it returns true (a non-finite loss) nothing more is backed up,
            so the last backup stays the last good state.
        write_directory: where backups are written, if not `directory`. A worker of a
            multi-worker run other than the chief restores the chief's backup but writes its own
            to a temporary directory, the pattern TensorFlow documents for multi-worker training.
        exact: back up completed epochs only (no backups every N steps, none of an epoch cut
            short), so that a resumed deterministic run is the same as an uninterrupted one.

    The backup of an epoch is written when the next epoch begins or training ends, after every
    other callback has seen the epoch's end. Put this callback first in the list: it restores
    the weights and the optimizer's step before the other callbacks start.
    """

    def __init__(self, directory, every_n_steps=None, resumables=(), best_weights=None,
                 should_skip=None, failed=None, write_directory=None, exact=False):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.write_directory = pathlib.Path(write_directory or directory)
        self.exact = exact
        self.every_n_steps = None if exact else every_n_steps
        self.resumables = list(resumables)
        self.best_weights = best_weights
        self.should_skip = should_skip or (lambda: False)
        self.failed = failed or (lambda: False)
        self.resumed_from_epoch = None
        self.previous_seconds = 0.0

    # Restoring.

    def read_state(self, directory=None):
        path = (directory or self.directory) / STATE_FILE
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except DAMAGED_FILE_ERRORS as error:
            raise self.damaged(path, error) from None

    def damaged(self, path, error):
        """The one-line error for a backup file that cannot be read (a full disk, a cut copy).
        The backup is left as it is, for the user to look at or move aside."""
        return DataError(
            f"{path}: the run's backup is damaged ({short_cause(error)}). It is left as it is: move "
            f"{self.directory} aside to train the run again from its start, or choose another hydra.run.dir."
        )

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.completed_epochs = 0
        self.steps_since_backup = 0
        self.generation = 0
        self.saved_epochs = 0
        self.pending = self.read_state()
        if self.pending is None:
            return
        state = self.pending
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        weights = self.directory / state["weights"]
        if not weights.is_file():
            raise self.damaged(weights, FileNotFoundError("the file is missing"))
        try:
            self.model.load_weights(weights)
        except (OSError, KeyError) as error:
            raise self.damaged(weights, error) from None
        except ValueError as error:  # Shapes or layers that differ: a model of other settings.
            reason = " ".join(str(error).split())[:160]
            raise ConfigError(
                f"{self.directory}: the backup does not fit this model ({reason}); the command that started the "
                "run resumes it, or choose another hydra.run.dir."
            ) from None
        for variable, value in zip(random_states(self.model), state.get("random_states", [])):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        # Keras' own BackupAndRestore resumes the same way: fit() starts at this epoch.
        self.model._initial_epoch = state["epoch"]
        self.completed_epochs = self.saved_epochs = self.resumed_from_epoch = state["epoch"]
        self.previous_seconds = state["seconds"]
        self.generation = state["generation"]

    def on_epoch_begin(self, epoch, logs=None):
        if self.pending is None:
            # The previous epoch's backup, taken now that every callback (early stopping among
            # them) has seen that epoch's end.
            if self.completed_epochs > self.saved_epochs and not self.failed():
                self.save()
            return
        self.restore_callbacks()

    def restore_callbacks(self):
        """Restores the callbacks' state: after every callback's on_train_begin has reset its own
        state, at the first epoch's start or, when no epoch is left to train (a run stopped
        during its final evaluation or saving), at the end of training."""
        state, self.pending = self.pending, None
        for resumable, resumable_state in zip(self.resumables, state["resumables"]):
            resumable.restore(resumable_state)
        if self.best_weights is not None and state.get("best") is not None:
            best = state["best"]
            path = self.directory / best["weights"]
            try:
                with np.load(path) as arrays:
                    self.best_weights.best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
            except DAMAGED_FILE_ERRORS as error:
                raise self.damaged(path, error) from None
            self.best_weights.best = best["value"]
            self.best_weights.best_epoch = best["epoch"]
            self.best_weights.wait = best["wait"]
            self.best_weights.stopped_epoch = best.get("stopped_epoch", 0)

    # Saving.

    def seconds(self):
        """Training time over every attempt of this run."""
        return self.previous_seconds + time.perf_counter() - self.start

    def on_train_batch_end(self, batch, logs=None):
        self.steps_since_backup += 1
        if self.every_n_steps and self.steps_since_backup >= self.every_n_steps and not self.failed():
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if not self.should_skip():
            self.completed_epochs = epoch + 1

    def on_train_end(self, logs=None):
        if self.pending is not None:
            # No epoch was left to train: the restored state is the final one.
            self.restore_callbacks()
            return
        # Before early stopping puts the best weights back: the backup holds the latest ones.
        # An exact backup never holds part of an epoch: the last completed epoch's stays.
        if self.failed() or (self.exact and self.completed_epochs == self.saved_epochs):
            return
        self.save()

    def save(self):
        self.steps_since_backup = 0
        self.saved_epochs = self.completed_epochs
        directory = self.write_directory
        directory.mkdir(parents=True, exist_ok=True)
        previous = self.read_state(directory)
        self.generation += 1
        weights = f"weights-{self.generation}.weights.h5"
        self.model.save_weights(directory / weights)
        state = {
            "epoch": self.completed_epochs,
            "weights": weights,
            "generation": self.generation,
            "seconds": self.seconds(),
            "resumables": [resumable.state() for resumable in self.resumables],
            "random_states": [variable.numpy().tolist() for variable in random_states(self.model)],
            "best": None,
        }
        early_stopping = self.best_weights
        if early_stopping is not None and early_stopping.best_weights is not None:
            best_file = f"best-{self.generation}.npz"
            temporary = directory / f".{best_file}.tmp.npz"
            np.savez(temporary, *early_stopping.best_weights)
            os.replace(temporary, directory / best_file)
            state["best"] = {
                "weights": best_file,
                "value": float(early_stopping.best),
                "epoch": int(early_stopping.best_epoch),
                "wait": int(early_stopping.wait),
                "stopped_epoch": int(early_stopping.stopped_epoch),
            }
        # The switch to the new backup: one atomic rename.
        write_json_atomic(directory / STATE_FILE, state)
        if previous is not None:
            for name in (previous["weights"], (previous.get("best") or {}).get("weights")):
                if name:
                    (directory / name).unlink(missing_ok=True)


def keep_run_settings(run_dir, cfg, record=True):
    """Guards the settings of an interrupted run that a backup in `run_dir` would resume.

    A run with no backup to resume records its settings in `backup/settings.json`, with a copy of
    Hydra's `.hydra/` files (when `record`: the chief of a multi-worker run). A run that would
    resume a backup must have the same settings, except how long it trains and what it logs
    (`RESUMABLE_CHANGES`). Otherwise nothing is resumed: the interrupted run's `.hydra/` files,
    which the new command has just written over, are put back, and a ConfigError names the
    settings that differ. A backup of an earlier version, with no settings recorded, resumes."""
    from omegaconf import OmegaConf

    run_dir = pathlib.Path(run_dir)
    backup, hydra_dir = run_dir / "backup", run_dir / ".hydra"
    current = dict(_flat("", OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))
    if (backup / STATE_FILE).is_file():
        if not (backup / SETTINGS_FILE).is_file():
            return
        recorded = json.loads((backup / SETTINGS_FILE).read_text())
        differing = [key for key in sorted(set(recorded) | set(current))
                     if recorded.get(key) != current.get(key) and not key.startswith(RESUMABLE_CHANGES)]
        if differing:
            for saved in sorted((backup / "hydra").glob("*.yaml")):
                (hydra_dir / saved.name).write_bytes(saved.read_bytes())
            details = "; ".join(f"{key}={recorded.get(key)}, not {current.get(key)}" for key in differing[:3])
            more = f" and {len(differing) - 3} more" if len(differing) > 3 else ""
            raise ConfigError(
                f"{run_dir} holds an interrupted run with other settings ({details}{more}); the command "
                f"that started it resumes it (its settings: {hydra_dir / 'overrides.yaml'}), or choose another "
                "hydra.run.dir."
            )
        return
    if record:
        (backup / "hydra").mkdir(parents=True, exist_ok=True)
        for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
            if (hydra_dir / name).is_file():
                (backup / "hydra" / name).write_bytes((hydra_dir / name).read_bytes())
        write_json_atomic(backup / SETTINGS_FILE, current)


def _flat(prefix, node):
    """(dotted key, value) of every value in nested dicts; lists are values."""
    for name, value in node.items():
        if isinstance(value, dict):
            yield from _flat(f"{prefix}{name}.", value)
        else:
            yield f"{prefix}{name}", value


def random_states(model):
    """The state variables of the model's random generators (Keras `SeedGenerator`s: dropout,
    scheduled sampling), which `save_weights` leaves out."""
    weights = {id(variable) for variable in model.weights}
    return [
        variable for variable in model.variables
        if id(variable) not in weights and variable.path.endswith("seed_generator_state")
    ]


def continue_data(dataset, completed_epochs, steps_per_epoch):
    """The training data as it goes on after `completed_epochs` epochs of `steps_per_epoch` steps,
    so that a resumed run reads the batches of the uninterrupted run in the same order.

    A repeating dataset (one shuffled pass after another) skips the batches already read; its
    pipeline runs again without the model, which costs little next to training. A finite dataset
    read once per epoch gets a new iterator each epoch from Keras, and each new iterator draws
    the next shuffling order: making and dropping one iterator per completed epoch moves to the
    right order without reading anything.
    """
    if not completed_epochs:
        return dataset
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        return dataset.skip(completed_epochs * steps_per_epoch)
    if cardinality == steps_per_epoch:
        for _ in range(completed_epochs):
            iter(dataset)
        return dataset
    logger.info("The training data is read in part each epoch: a resumed run restarts it from its first batch.")
    return dataset


class GracefulStop(keras.callbacks.Callback):
    """Turns the first SIGINT or SIGTERM into a clean stop after the current training step.

    A second signal exits at once (exit code 128 + the signal number), for a user who does not
    want to wait for the current step and the saving.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.received = None
        self.previous_handlers = {}
        # Whether the epoch in progress has run its last training step (its validation began),
        # and whether the signal came before that: only then is the epoch cut short.
        self.epoch_trained = False
        self.cut_an_epoch = False

    def install(self):
        for number in self.SIGNALS:
            self.previous_handlers[number] = signal.signal(number, self.handle)

    def uninstall(self):
        for number, handler in self.previous_handlers.items():
            signal.signal(number, handler)
        self.previous_handlers = {}

    def handle(self, number, frame):
        if self.received is not None:
            os._exit(128 + number)
        self.received = signal.Signals(number).name
        self.cut_an_epoch = not self.epoch_trained
        print(
            f"\n{self.received} received: stopping after this step and saving "
            "(send it again to exit at once).",
            file=sys.stderr,
            flush=True,
        )
        if self.model is not None:
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_trained = False

    def on_test_begin(self, logs=None):
        # Validation follows the epoch's last training step: a signal from here on stops the run
        # after a whole epoch, which its end-of-epoch callbacks (the backup) then keep.
        self.epoch_trained = True

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.model.stop_training = True

    @property
    def exit_code(self):
        return 128 + signal.Signals[self.received].value


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite; `failure` says where."""

    def __init__(self):
        super().__init__()
        self.failure = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = f"Non-finite loss ({float(loss)}) at epoch {self.epoch + 1}, step {batch + 1}"
            self.model.stop_training = True
