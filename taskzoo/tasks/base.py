"""The contract between a task and the shared trainer."""

import keras

from taskzoo.errors import DataError


def load_run_model(run_dir):
    """Loads a run's `model.keras` in safe mode (no code from the file runs); a damaged or
    truncated file gives one DataError line."""
    path = run_dir / "model.keras"
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # zipfile, h5py and Keras each raise their own kinds.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: cannot load the model ({reason[:200]}).") from None


class Task:
    """One task pipeline: its data, its model head, its loss and metrics, its exported model.

    The trainer calls, in order: `datasets()`, `build_model()`, `loss()` and `metrics()` to
    compile, then `fit`, then `export_model()` to save what a user loads for inference.
    """

    # The validation metric that selects the best epoch and drives early stopping.
    monitor = "val_loss"
    monitor_mode = "min"
    # Training steps that make one epoch; set by `datasets()` when the training set repeats.
    steps_per_epoch = None

    def __init__(self, cfg):
        self.cfg = cfg

    def datasets(self):
        """Returns the (train, validation, test) tf.data datasets of (inputs, targets) batches."""
        raise NotImplementedError

    def build_model(self) -> keras.Model:
        """Returns the network, sized from the data that `datasets()` loaded."""
        raise NotImplementedError

    def loss(self):
        """Cross-entropy of integer targets against the model's logits, the loss of every task
        that predicts a class or a token."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        return []

    def weighted_metrics(self):
        """Metrics that take the batches' sample weights (zero on padding) into account."""
        return []

    def extra_metrics(self, network, split):
        """Measures that Keras metrics cannot stream, computed on a whole split ("validation" or
        "test") after training; they join that split's entry in `metrics.json`."""
        return {}

    def callbacks(self, run_dir):
        """Task-specific Keras callbacks, used in training and in every evaluation."""
        return []

    def export_model(self, model) -> keras.Model:
        """The model saved as `model.keras` for inference; by default the trained network."""
        return model

    def save_artifacts(self, run_dir):
        """Writes what inference needs besides `model.keras` (a vocabulary, say)."""

    # Inference from a finished run: `python -m taskzoo.predict run_dir=RUN key=value ...`.
    # The options a task accepts, by name, with the type each value is converted to.
    predict_options = {}

    @classmethod
    def predict(cls, run_dir, cfg, options):
        """Prints the model's answer for the given options."""
        raise NotImplementedError

    def description(self):
        """A few facts about the data for the run's log (sizes, vocabulary, classes)."""
        return {}
