"""Training that survives faults: backups to resume from, stop signals, and non-finite losses.

- `Backup` writes the training state to `<run dir>/backup/` at the end of every epoch (and every
  N steps when asked): the weights with the optimizer's state, the best weights so far, the epoch,
  the time spent, and the state of the callbacks that depend on time or history (time budget,
  learning-rate schedule, early stopping). A run started again in the same run directory restores
  it and continues from the start of the interrupted epoch. Every file is written under a new name
  and the small `state.json` that names them is replaced atomically last, so a kill at any moment
  leaves the previous backup whole.
- `GracefulStop`: the first SIGINT (Ctrl-C) or SIGTERM (what a cluster sends before preemption)
  stops training after the current step; a second one exits at once.
- `StopOnNonFiniteLoss` stops at the first step whose loss is NaN or infinite and says where.
"""

import json
import math
import os
import pathlib
import signal
import sys
import time

import keras
import numpy as np

from taskzoo.training import write_json_atomic

STATE_FILE = "state.json"


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

    The backup of an epoch is written when the next epoch begins or training ends, after every
    other callback has seen the epoch's end. Put this callback first in the list: it restores
    the weights and the optimizer's step before the other callbacks start.
    """

    def __init__(self, directory, every_n_steps=None, resumables=(), best_weights=None,
                 should_skip=None, failed=None, write_directory=None):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.write_directory = pathlib.Path(write_directory or directory)
        self.every_n_steps = every_n_steps
        self.resumables = list(resumables)
        self.best_weights = best_weights
        self.should_skip = should_skip or (lambda: False)
        self.failed = failed or (lambda: False)
        self.resumed_from_epoch = None
        self.previous_seconds = 0.0

    # Restoring.

    def read_state(self, directory=None):
        path = (directory or self.directory) / STATE_FILE
        return json.loads(path.read_text()) if path.is_file() else None

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
        self.model.load_weights(self.directory / state["weights"])
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
        # Restored here, after every callback's on_train_begin has reset its own state.
        state, self.pending = self.pending, None
        for resumable, resumable_state in zip(self.resumables, state["resumables"]):
            resumable.restore(resumable_state)
        if self.best_weights is not None and state.get("best") is not None:
            best = state["best"]
            with np.load(self.directory / best["weights"]) as arrays:
                self.best_weights.best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
            self.best_weights.best = best["value"]
            self.best_weights.best_epoch = best["epoch"]
            self.best_weights.wait = best["wait"]

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
        # Before early stopping puts the best weights back: the backup holds the latest ones.
        if not self.failed():
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
            }
        # The switch to the new backup: one atomic rename.
        write_json_atomic(directory / STATE_FILE, state)
        if previous is not None:
            for name in (previous["weights"], (previous.get("best") or {}).get("weights")):
                if name:
                    (directory / name).unlink(missing_ok=True)


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
        print(
            f"\n{self.received} received: stopping after this step and saving "
            "(send it again to exit at once).",
            file=sys.stderr,
            flush=True,
        )
        if self.model is not None:
            self.model.stop_training = True

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
