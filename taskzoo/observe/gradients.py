"""Gradient norms: the global norm before clipping and the norm of every layer, on every step.

`GradientNormModel` wraps any network for training. Its training step is Keras' own (forward pass,
loss, gradients, optimizer update, metrics) plus the norms, which it stores in two non-trainable
variables. `GradientNormLogger` reads them every N steps and writes them to TensorBoard. Keeping
the summary writing out of the compiled step means the step is the same with or without logging,
works under `jit_compile=True`, and records the real training step.
"""

import keras
import numpy as np
import tensorflow as tf

from taskzoo.observe.alarms import JumpDetector, report_alarm


def layer_name_of(variable):
    """The layer a variable belongs to, from its path: `recurrent_stack/gru_0/gru_cell/kernel`
    gives `recurrent_stack/gru_0`."""
    parts = variable.path.split("/")[:-1]
    if len(parts) > 1 and parts[-1].endswith("_cell"):
        parts = parts[:-1]
    return "/".join(parts) or variable.name


def group_by_layer(variables):
    """Returns (layer names, list of variable indices per layer), in order of first appearance."""
    groups = {}
    for index, variable in enumerate(variables):
        groups.setdefault(layer_name_of(variable), []).append(index)
    return list(groups), list(groups.values())


class GradientNormModel(keras.Model):
    """Trains `network` exactly as `fit` would, and records its gradient norms on every step."""

    def __init__(self, network, **kwargs):
        super().__init__(name=f"{network.name}_training", **kwargs)
        self.network = network
        self.layer_names, self._layer_groups = group_by_layer(network.trainable_variables)
        # With several replicas (tf.distribute), the first replica's values: the norms of the
        # gradient of its share of the batch, before the gradients are summed across replicas.
        self.global_gradient_norm = keras.Variable(
            0.0, trainable=False, aggregation="only_first_replica", name="global_gradient_norm"
        )
        self.layer_gradient_norms = keras.Variable(
            np.zeros(len(self.layer_names), dtype="float32"),
            trainable=False,
            aggregation="only_first_replica",
            name="layer_gradient_norms",
        )
        # Training steps whose global norm exceeded the optimizer's clipping threshold.
        self.clipped_steps = keras.Variable(
            0.0, trainable=False, aggregation="only_first_replica", name="clipped_steps"
        )
        # Every variable exists now (the network is built): weights can be saved and restored
        # before the first training step.
        self.built = network.built

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.network.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)

        # The norms before clipping; the optimizer clips by the global norm when configured.
        global_norm = tf.linalg.global_norm(gradients)
        self.global_gradient_norm.assign(global_norm)
        if self.optimizer.global_clipnorm:
            self.clipped_steps.assign_add(tf.cast(global_norm > self.optimizer.global_clipnorm, "float32"))
        self.layer_gradient_norms.assign(
            tf.stack(
                [tf.linalg.global_norm([gradients[i] for i in group]) for group in self._layer_groups]
            )
        )
        self.optimizer.apply_gradients(zip(gradients, variables))

        batch_size = tf.shape(tf.nest.flatten(x)[0])[0]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=batch_size)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


class GradientNormLogger(keras.callbacks.Callback):
    """Writes the gradient norms and the learning rate to TensorBoard every `every_n_steps` steps.

    Tags: `gradient_norm/global` and `gradient_norm/<layer>` (before clipping), `learning_rate`.
    The step is the optimizer's iteration count, the same axis as Keras' `batch_*` scalars.
    With clipping by global norm, it also adds `clipped_fraction` to every epoch's logs: the
    fraction of the epoch's steps whose gradient was clipped (TensorBoard's
    `epoch_clipped_fraction`, when this callback comes before Keras' TensorBoard callback).

    With `explode_factor`, every step's global norm is compared with its earlier level (see
    `JumpDetector`); a norm that stays above the factor times that level for `explode_steps`
    steps gives a warning and a TensorBoard text entry (`alarms`). With `live_progress_bar`, the
    warning first ends the progress bar's line.
    """

    def __init__(self, log_dir, every_n_steps, explode_factor=None, explode_window=50, explode_steps=3,
                 live_progress_bar=False):
        super().__init__()
        self.log_dir = str(log_dir)
        self.every_n_steps = every_n_steps
        self.explode_factor = explode_factor
        self.jumps = JumpDetector(explode_factor, explode_window, explode_steps) if explode_factor else None
        self.live_progress_bar = live_progress_bar
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)
        self.step = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_start = (self.step, float(self.model.clipped_steps.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        steps = self.step - self.epoch_start[0]
        if logs is not None and self.model.optimizer.global_clipnorm and steps > 0:
            logs["clipped_fraction"] = (float(self.model.clipped_steps.numpy()) - self.epoch_start[1]) / steps

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.jumps is not None:
            self.check_jump(batch)
        if self.step % self.every_n_steps:
            return
        layer_norms = self.model.layer_gradient_norms.numpy()
        # Recorded whatever condition another callback has set for its own per-step summaries.
        with self.writer.as_default(step=self.step), tf.summary.record_if(True):
            tf.summary.scalar("gradient_norm/global", float(self.model.global_gradient_norm.numpy()))
            for name, norm in zip(self.model.layer_names, layer_norms):
                tf.summary.scalar(f"gradient_norm/{name}", float(norm))
            tf.summary.scalar("learning_rate", float(self.model.optimizer.learning_rate.numpy()))

    def check_jump(self, batch):
        norm = float(self.model.global_gradient_norm.numpy())
        level = self.jumps.update(norm)
        if level is None:
            return
        with self.writer.as_default():
            report_alarm(
                f"Exploding gradient at step {self.step} (epoch {self.epoch + 1}, batch {batch + 1}): "
                f"the global gradient norm has stayed above {self.explode_factor:g} times its earlier "
                f"level {level:.4g} for {self.jumps.steps} steps, now {norm:.4g} "
                f"(observe.explode_factor, observe.explode_steps).",
                self.step,
                after_progress_bar=self.live_progress_bar,
            )

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
