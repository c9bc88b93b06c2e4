"""TensorBoard: per-step and per-epoch scalars, gradient norms and the gradient flow through time."""

import keras
import tensorflow as tf

from taskzoo.observe.gradients import GradientNormLogger
from taskzoo.observe.time_gradients import TimeGradientLogger


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, with the epoch-level summaries always recorded.

    With an integer `update_freq`, Keras keeps its per-step condition ("the step is a multiple of
    update_freq") active for the whole of training, so at the end of an epoch whose step count is
    not such a multiple the epoch summaries would be dropped. The per-step axis is the optimizer's
    step count, so a resumed run continues it.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # A resumed run continues the step axis where its backup left it.
        self._global_train_batch = int(self.model.optimizer.iterations.numpy())

    def on_epoch_end(self, epoch, logs=None):
        with tf.summary.record_if(True):
            super().on_epoch_end(epoch, logs)

    def on_test_end(self, logs=None):
        with tf.summary.record_if(True):
            super().on_test_end(logs)


def tensorboard_callbacks(log_dir, every_n_steps, observe=None, probe_batch=None, loss_function=None,
                          live_progress_bar=False):
    """Keras' TensorBoard callback (loss and metrics per step and per epoch, learning rate per
    epoch, in `train/` and `validation/`), the gradient-norm logger with its exploding-gradient
    alarm (in `train/`), and, with `observe.time_gradients`, the gradient flow through time
    measured on `probe_batch`."""
    explode = {} if observe is None else {
        "explode_factor": observe.explode_factor,
        "explode_window": observe.explode_window,
        "explode_steps": observe.explode_steps,
    }
    # The logger first: the clipped fraction it adds to the epoch's logs reaches TensorBoard.
    callbacks = [
        GradientNormLogger(log_dir / "train", every_n_steps, **explode, live_progress_bar=live_progress_bar),
        TensorBoard(log_dir=str(log_dir), update_freq=every_n_steps),
    ]
    if observe is not None and observe.time_gradients:
        callbacks.append(TimeGradientLogger(
            log_dir, probe_batch, loss_function, observe.every_n_steps, observe.vanish_ratio,
            live_progress_bar=live_progress_bar,
        ))
    return callbacks
