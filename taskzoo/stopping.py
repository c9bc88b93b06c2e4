"""When training stops: the wall-clock budget, and early stopping that keeps the best epoch's weights."""

import time

import keras


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


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, whose line for an epoch cut short (by the budget or a stop signal)
    counts the steps that ran: Keras' own reports the whole epoch's steps, "392/392", and divides
    the epoch's time by them, so the time per step it printed was too short."""

    def on_epoch_end(self, epoch, logs=None):
        if self.progbar is not None and self.target is not None and 0 < self.seen < self.target:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=True)
        else:
            super().on_epoch_end(epoch, logs)


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
