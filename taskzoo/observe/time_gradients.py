"""Gradient flow through time: the norm of ‖∂L/∂h_t‖ at every time step of every recurrent layer.

The gradient of the loss with respect to the hidden state h_t counts every path from h_t to the
loss: through the layers above it and through all the later steps of its own recurrence. It is
measured the standard way: a zero tensor ε_t is added to h_t after every step, and ∂L/∂ε_t is then
exactly ∂L/∂h_t. A vanilla RNN's gradient shrinks as it travels back in time; an LSTM's does not.

The recurrent blocks (`RecurrentStack`, `RecurrentDecoder`) take the perturbed path only while
their `time_gradient_probe` attribute holds a probe, which `probing` hands them only while
`time_gradient_norms` traces its own function: the training step and the saved models never see
it.
"""

import contextlib
import logging
import math
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from taskzoo.observe.alarms import report_alarm
from taskzoo.observe.images import colour_cells

logger = logging.getLogger(__name__)

class TimeGradientProbe:
    """Collects the zero perturbations that the recurrent blocks add to their hidden states."""

    def __init__(self, tape):
        self.tape = tape
        # name -> (perturbation (time, batch, units), mask (time, batch) or None), in the order
        # the layer reads its steps.
        self.perturbations = {}

    def perturbation(self, name, steps, batch, units, mask=None, dtype="float32"):
        """A watched zero tensor (steps, batch, units) for the layer called `name`."""
        unique, count = name, 1
        while unique in self.perturbations:
            count += 1
            unique = f"{name}_{count}"
        tensor = tf.zeros(ops.stack([steps, batch, units]), dtype=dtype)
        self.tape.watch(tensor)
        self.perturbations[unique] = (tensor, mask)
        return tensor


@contextlib.contextmanager
def probing(network, tape):
    """Hands a probe to every recurrent block of `network` (their `time_gradient_probe`
    attribute) for the duration of the block: they then add watched perturbations to their
    hidden states."""
    probe = TimeGradientProbe(tape)
    blocks = [layer for layer in network._flatten_layers(include_self=True) if hasattr(layer, "time_gradient_probe")]
    for block in blocks:
        block.time_gradient_probe = probe
    try:
        yield probe
    finally:
        for block in blocks:
            block.time_gradient_probe = None


def time_gradient_function(network, loss_function):
    """A compiled function (inputs, targets, sample weights) -> {layer: (norms, real)}.

    `norms[t]` is ‖∂L/∂h_t‖ over the whole batch at step t in the layer's reading order, and
    `real[t]` says whether any example of the batch has a real (unpadded) step there. The network
    runs in inference mode (no dropout).
    """

    @tf.function(reduce_retracing=True)
    def compute(inputs, targets, sample_weight):
        with tf.GradientTape() as tape:
            with probing(network, tape) as probe:
                predictions = network(inputs, training=False)
            loss = loss_function(targets, predictions, sample_weight=sample_weight)
        names = list(probe.perturbations)
        gradients = tape.gradient(
            loss, [probe.perturbations[name][0] for name in names],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        results = {}
        for name, gradient in zip(names, gradients):
            mask = probe.perturbations[name][1]
            real = ops.any(mask, axis=1) if mask is not None else ops.ones(ops.shape(gradient)[:1], "bool")
            results[name] = (ops.sqrt(ops.sum(ops.square(gradient), axis=(1, 2))), real)
        return results

    return compute


def time_gradient_norms(network, loss_function, inputs, targets, sample_weight=None):
    """{layer name: (norms, real)} as numpy arrays, for one batch; see `time_gradient_function`."""
    results = time_gradient_function(network, loss_function)(inputs, targets, sample_weight)
    return {name: (norms.numpy(), real.numpy()) for name, (norms, real) in results.items()}


def longest_batch(dataset, candidates=20):
    """The batch with the most time steps among the first `candidates` batches of `dataset`: the
    longest sequences show best how far back the gradient reaches."""
    def steps(batch):
        shape = tf.nest.flatten(batch)[0].shape
        return shape[1] if len(shape) > 1 else 0

    return max(dataset.take(candidates), key=steps)


def summary_points(norms, real):
    """The norms at the first, middle and last real steps, and the ratio first/last."""
    indices = np.flatnonzero(real)
    if len(indices) == 0:
        return None
    first, middle, last = (float(norms[i]) for i in (indices[0], indices[len(indices) // 2], indices[-1]))
    return {
        "first": first,
        "middle": middle,
        "last": last,
        "first_over_last": first / last if last > 0 else math.inf,
    }


def heatmap_image(history, real, height=320, width=480):
    """The measurements as an RGB image (uint8): time step down, measurement across, colour the
    log10 norm on the viridis scale, grey for padded steps. Drawn with numpy, so that it costs
    far less than the measurement. Returns (image, lowest, highest log10 norm shown)."""
    with np.errstate(divide="ignore"):
        values = np.log10(np.stack(history, axis=1))
    finite = np.isfinite(values) & real[:, None]
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    scaled = np.clip((values - low) / max(high - low, 1e-12), 0.0, 1.0)
    scaled[~np.isfinite(values)] = 0.0  # a norm of exactly 0 is drawn as the lowest value
    # Every cell becomes a block of pixels, so that a short history is still readable.
    rows, columns = max(1, height // scaled.shape[0]), max(1, width // scaled.shape[1])
    image = colour_cells(scaled, rows, columns, grey=np.broadcast_to(~real[:, None], scaled.shape))
    return image, float(low), float(high)


class TimeGradientLogger(keras.callbacks.Callback):
    """Every `every_n_steps` training steps, measures ‖∂L/∂h_t‖ of every recurrent layer on one
    fixed batch (the trainer passes the longest of the first validation batches) and writes it to TensorBoard under `time_gradients/`:

    - `time_gradients/<layer>`: an image, time step down and measurement across, colour the
      log10 norm (its description gives the scale);
    - `time_gradients/<layer>/first|middle|last|first_over_last`: scalars at the first, middle and
      last real steps, and the ratio first/last (small: the gradient vanishes on its way back).

    The whole history also goes to `time_gradients.npz` in the run directory. When the ratio
    first/last of a layer first falls below `vanish_ratio`, a warning and a TensorBoard text entry
    (`alarms`) say so; at the end of training, one more line says in how many measurements it was.
    """

    def __init__(self, run_dir, batch, loss_function, every_n_steps, vanish_ratio=None, live_progress_bar=False):
        super().__init__()
        self.live_progress_bar = live_progress_bar
        self.run_dir = pathlib.Path(run_dir)
        self.inputs, self.targets, self.sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        self.loss_function = loss_function
        self.every_n_steps = every_n_steps
        self.vanish_ratio = vanish_ratio
        self.writer = None

    @property
    def network(self):
        return getattr(self.model, "network", self.model)

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(str(self.run_dir / "train"))
        self.compute = time_gradient_function(self.network, self.loss_function)
        self.step = int(self.model.optimizer.iterations.numpy())
        self.steps, self.history, self.real, self.vanishing = [], {}, {}, {}
        self._restore_history()
        if not self.steps or self.steps[-1] < self.step:
            self.record()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every_n_steps == 0:
            self.record()

    def on_train_end(self, logs=None):
        self._report_vanishing_counts()
        if self.writer is not None:
            self.writer.close()

    def record(self):
        results = self.compute(self.inputs, self.targets, self.sample_weight)
        if not results:
            return
        self.steps.append(self.step)
        with self.writer.as_default(step=self.step), tf.summary.record_if(True):
            for name, (norms, real) in results.items():
                norms, real = norms.numpy(), real.numpy()
                self.history.setdefault(name, []).append(norms)
                self.real[name] = real
                points = summary_points(norms, real)
                if points is None:
                    continue
                for key, value in points.items():
                    tf.summary.scalar(f"time_gradients/{name}/{key}", value)
                image, low, high = heatmap_image(self.history[name], real)
                tf.summary.image(
                    f"time_gradients/{name}", image[None], max_outputs=1,
                    description=(
                        f"{name}: log10 ‖∂L/∂h_t‖. Rows: time steps 1 to {len(real)} in the order the "
                        f"layer reads them (first at the top; grey: padding). Columns: the measurements "
                        f"at training steps {self.steps[0]} to {self.steps[-1]}, every "
                        f"{self.every_n_steps} steps. Colour: from {low:.1f} (dark blue) to "
                        f"{high:.1f} (yellow)."
                    ),
                )
                self._check_vanishing(name, points["first_over_last"])
        self._save_history()

    def _check_vanishing(self, name, ratio):
        if self.vanish_ratio is None or not ratio < self.vanish_ratio:
            return
        # Reported once per layer; the count of measurements below the threshold comes at the end.
        self.vanishing[name] = self.vanishing.get(name, 0) + 1
        if self.vanishing[name] == 1:
            report_alarm(
                f"Vanishing gradient in {name} at step {self.step}: ‖∂L/∂h_first‖ / ‖∂L/∂h_last‖ = "
                f"{ratio:.2e}, below observe.vanish_ratio={self.vanish_ratio:g}.",
                self.step,
                after_progress_bar=self.live_progress_bar,
            )

    def _report_vanishing_counts(self):
        for name, count in self.vanishing.items():
            logger.warning(
                "%s: ‖∂L/∂h_first‖ / ‖∂L/∂h_last‖ was below observe.vanish_ratio=%g in %d of %d "
                "measurements.", name, self.vanish_ratio, count, len(self.steps),
            )

    def _save_history(self):
        path = self.run_dir / "time_gradients.npz"
        temporary = path.with_name(".time_gradients.tmp.npz")
        arrays = {"steps": np.array(self.steps)}
        for index, name in enumerate(self.history):
            arrays[f"norms_{index}"] = np.stack(self.history[name])
            arrays[f"real_{index}"] = self.real[name]
        np.savez(temporary, names=np.array(list(self.history)), **arrays)
        os.replace(temporary, path)

    def _restore_history(self):
        """A resumed run keeps the columns recorded up to its backup."""
        path = self.run_dir / "time_gradients.npz"
        if not path.exists() or self.step == 0:
            return
        saved = load_time_gradients(path)
        keep = saved["steps"] <= self.step
        self.steps = [int(step) for step in saved["steps"][keep]]
        for name, (norms, real) in saved["layers"].items():
            self.history[name] = list(norms[keep])
            self.real[name] = real


def load_time_gradients(path):
    """Reads a run's `time_gradients.npz`: {"steps": (n,), "layers": {name: (norms (n, T), real (T,))}}."""
    with np.load(path) as saved:
        names = [str(name) for name in saved["names"]]
        return {
            "steps": saved["steps"],
            "layers": {
                name: (saved[f"norms_{index}"], saved[f"real_{index}"]) for index, name in enumerate(names)
            },
        }
