"""The optimizer and the learning-rate schedule of every run."""

import math
import time

import keras

from taskzoo import choices

OPTIMIZERS = choices.registry(
    choices.OPTIMIZERS,
    adam=keras.optimizers.Adam,
    adamw=keras.optimizers.AdamW,
    rmsprop=keras.optimizers.RMSprop,
    sgd=keras.optimizers.SGD,
)


def build_optimizer(trainer_config):
    """The configured optimizer, clipping gradients by their global norm when `clipnorm` is set."""
    return OPTIMIZERS[str(trainer_config.optimizer)](
        learning_rate=trainer_config.learning_rate,
        global_clipnorm=trainer_config.clipnorm,
    )


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
