"""TensorBoard: per-step and per-epoch scalars, and the HParams table that lines up a sweep."""

import enum
import json

import keras
import tensorflow as tf
from omegaconf import OmegaConf
from tensorboard.plugins.hparams import api as hparams_api

from taskzoo.observe.gradients import GradientNormLogger
from taskzoo.observe.time_gradients import TimeGradientLogger


def flat_hyperparameters(cfg):
    """The run's configuration as {"model.units": 128, ...}, with values TensorBoard accepts."""
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    flat = {}

    def visit(prefix, node):
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                visit(name, value)
            elif value is None:
                flat[name] = "none"
            elif isinstance(value, (bool, int, float, str)):
                flat[name] = value
            elif isinstance(value, enum.Enum):
                flat[name] = str(value)
            else:
                flat[name] = json.dumps(value)

    visit("", {key: container[key] for key in ("task", "model", "trainer")})
    return flat


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


def tensorboard_callbacks(log_dir, every_n_steps, observe=None, probe_batch=None, loss_function=None):
    """Keras' TensorBoard callback (loss and metrics per step and per epoch, learning rate per
    epoch, in `train/` and `validation/`), the gradient-norm logger with its exploding-gradient
    alarm (in `train/`), and, with `observe.time_gradients`, the gradient flow through time
    measured on `probe_batch`."""
    explode = {} if observe is None else {
        "explode_factor": observe.explode_factor, "explode_window": observe.explode_window
    }
    # The logger first: the clipped fraction it adds to the epoch's logs reaches TensorBoard.
    callbacks = [
        GradientNormLogger(log_dir / "train", every_n_steps, **explode),
        TensorBoard(log_dir=str(log_dir), update_freq=every_n_steps),
    ]
    if observe is not None and observe.time_gradients:
        callbacks.append(TimeGradientLogger(
            log_dir, probe_batch, loss_function, observe.every_n_steps, observe.vanish_ratio
        ))
    return callbacks


def write_hyperparameters(log_dir, cfg, trial_id):
    """Writes the run's hyperparameters for the HParams tab; its metrics are found by tag."""
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hparams_api.hparams(flat_hyperparameters(cfg), trial_id=trial_id)


def write_final_metrics(log_dir, results, step):
    """Writes the final metrics as scalars `test/<name>` and `final_validation/<name>`."""
    with tf.summary.create_file_writer(str(log_dir)).as_default(step=step):
        for split, tag_prefix in (("test", "test"), ("validation", "final_validation")):
            for name, value in results[split].items():
                tf.summary.scalar(f"{tag_prefix}/{name}", value)
