"""The pieces of the shared trainer: optimizer, callbacks, and outputs written atomically."""

import json
import math
import os
import pathlib
import time

import keras

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def build_optimizer(trainer_config):
    """The configured optimizer, clipping gradients by their global norm when `clipnorm` is set."""
    return OPTIMIZERS[str(trainer_config.optimizer)](
        learning_rate=trainer_config.learning_rate,
        global_clipnorm=trainer_config.clipnorm,
    )


class TimeBudget(keras.callbacks.Callback):
    """Stops training after `max_minutes` of wall-clock time, at the end of the current step.

    Keras then still validates the partial epoch, so the best weights are chosen as usual.
    """

    def __init__(self, max_minutes):
        super().__init__()
        self.max_seconds = max_minutes * 60.0
        self.triggered = False

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.start >= self.max_seconds:
            self.triggered = True
            self.model.stop_training = True

    # The budget spans every attempt of a resumed run.
    def state(self):
        return {"elapsed": time.perf_counter() - self.start}

    def restore(self, state):
        self.start = time.perf_counter() - state["elapsed"]


class CosineSchedule(keras.callbacks.Callback):
    """Cosine decay of the learning rate over the run, set before every training step.

    The run's progress is the larger of two fractions: steps taken of `total_steps`, and time spent
    of `max_minutes`. With a time budget the rate reaches its floor when the budget runs out, so a
    run compared "at equal time" ends at a low learning rate like a run compared at equal steps.
    """

    def __init__(self, learning_rate, min_fraction, total_steps, max_minutes=None, clock=time.perf_counter):
        super().__init__()
        self.learning_rate = learning_rate
        self.min_fraction = min_fraction
        self.total_steps = total_steps
        self.max_seconds = max_minutes * 60.0 if max_minutes else None
        self.clock = clock

    def on_train_begin(self, logs=None):
        self.start = self.clock()
        self.steps = 0

    def progress(self):
        fraction = self.steps / self.total_steps if self.total_steps else 0.0
        if self.max_seconds:
            fraction = max(fraction, (self.clock() - self.start) / self.max_seconds)
        return min(fraction, 1.0)

    def state(self):
        return {"elapsed": self.clock() - self.start, "steps": self.steps}

    def restore(self, state):
        self.start = self.clock() - state["elapsed"]
        self.steps = state["steps"]

    def on_train_batch_begin(self, batch, logs=None):
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.progress()))
        scale = self.min_fraction + (1.0 - self.min_fraction) * cosine
        self.model.optimizer.learning_rate.assign(self.learning_rate * scale)
        self.steps += 1


def learning_rate_callbacks(trainer_config, steps_per_epoch):
    """The callbacks that implement `trainer.schedule`."""
    if str(trainer_config.schedule) == "constant":
        return []
    return [CosineSchedule(
        trainer_config.learning_rate,
        trainer_config.min_learning_rate_fraction,
        total_steps=trainer_config.epochs * steps_per_epoch if steps_per_epoch else None,
        max_minutes=trainer_config.max_minutes,
    )]


class BestWeights(keras.callbacks.EarlyStopping):
    """Early stopping that keeps the best validation epoch's weights and puts them back when
    training ends. An epoch cut short (a stop signal, a non-finite loss) is not judged: its
    weights are not those of a whole epoch, and `best_epoch` never counts it.

    Args:
        cut_short: a function; true when the epoch that just ended was cut short.
        **kwargs: the arguments of `keras.callbacks.EarlyStopping`.
    """

    def __init__(self, cut_short=lambda: False, **kwargs):
        super().__init__(**kwargs)
        self.cut_short = cut_short

    def on_epoch_end(self, epoch, logs=None):
        if not self.cut_short():
            super().on_epoch_end(epoch, logs)


def best_weights_callback(task, trainer_config, cut_short=lambda: False):
    """Keeps the weights of the best validation epoch and restores them when training ends;
    stops early after `early_stopping_patience` epochs without improvement."""
    patience = trainer_config.early_stopping_patience
    return BestWeights(
        cut_short,
        monitor=task.monitor,
        mode=task.monitor_mode,
        patience=trainer_config.epochs if patience is None else patience,
        restore_best_weights=True,
        verbose=0,
    )


def write_json_atomic(path, data):
    """Writes JSON to a temporary file and renames it, so a reader never sees half a file."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


def save_model_atomic(model, path):
    """Saves a `.keras` file through a temporary file and a rename."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)
