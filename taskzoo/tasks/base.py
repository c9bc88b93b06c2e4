"""The contract between a task and the shared trainer."""

import sys
from typing import Callable, NamedTuple

import keras

from taskzoo.atomic import check_picture_target
from taskzoo.errors import ConfigError, DataError


def trained_network(model):
    """The task's network inside the model that Keras trains, for a task's callbacks.

    `self.model` of a callback is whatever `fit` was called on: the trainer wraps the network in a
    `GradientNormModel` (its `network` attribute) to record gradient norms, while a plain
    `network.fit(...)` trains the network itself. Callbacks read the network through this one
    function, so they work under both.
    """
    return getattr(model, "network", model)


class EpochSamples(keras.callbacks.Callback):
    """The base of a task's callbacks that score the validation split and write samples (texts,
    pictures) to TensorBoard at every epoch end, in `log_dir` (the run's `samples/`).

    A subclass implements `write_epoch(network, epoch, scores)`: it runs inside the writer's
    context (so `tf.summary` calls land in `log_dir` at the epoch's step) and may put validation
    scores into `scores`, which join the epoch's logs as `val_<name>` (where early stopping and
    TensorBoard read them). Decoding tasks report the time their scoring took as `decode_seconds`.
    """

    def __init__(self, task, log_dir):
        super().__init__()
        self.task = task
        self.log_dir = str(log_dir)

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        scores = {}
        with self.writer.as_default(step=epoch), tf.summary.record_if(True):
            self.write_epoch(trained_network(self.model), epoch, scores)
        self.writer.flush()
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in scores.items()})

    def write_epoch(self, network, epoch, scores):
        raise NotImplementedError

    def on_train_end(self, logs=None):
        self.writer.close()


class PredictOption(NamedTuple):
    """An option of `taskzoo-predict` for a task: how its value is converted, and its help."""

    convert: Callable
    help: str


def text_options(text_help, items, answers):
    """The `text=` and `file=` options of a text task's prediction."""
    return {
        "text": PredictOption(str, text_help),
        "file": PredictOption(str, f"a UTF-8 file of {items}, one per line (- for standard input); {answers}"),
    }


def texts_to_predict(options):
    """The inputs of a text task's prediction: `text=` (one text) or `file=` (one text per line
    of a UTF-8 file, `-` for standard input). Returns (texts, from_file)."""
    from taskzoo.data.files import read_text

    if ("text" in options) == ("file" in options):
        raise ConfigError("Give text=\"...\" (one text) or file=PATH (one text per line, - for standard input).")
    if "text" in options:
        return [options["text"]], False
    if options["file"] == "-":
        content = sys.stdin.read()
    else:
        content = read_text(options["file"])
    lines = content.removeprefix("\ufeff").splitlines()
    if not lines:
        where = "standard input" if options["file"] == "-" else options["file"]
        print(f"Warning: {where} holds no lines: there is nothing to answer.", file=sys.stderr)
    return lines, True


def warn_if_mostly_unknown(words, known, where):
    """Warns on standard error when most of a text's words are not in the model's vocabulary
    (`known(word)` says whether one is): the answer then rests on a few words, or on none."""
    unknown = sum(not known(word) for word in words)
    if len(words) and unknown * 2 > len(words):
        if unknown == len(words):
            what = f"none of its {len(words)} words is in the model's vocabulary; the answer rests on none of them."
        else:
            what = f"{unknown} of {len(words)} words are not in the model's vocabulary; the answer rests on the others."
        print(f"Warning: {where}: {what}", file=sys.stderr)


def warn_of_empty_outputs(texts, what, places):
    """Warns on standard error when generated `texts` are empty, naming their `places` (one per
    text: "text", "line 3", a file name), so that a blank answer is not taken for a failure of the
    command: the decoder chose the end token first, as a briefly trained model often does.
    Standard output keeps its one line per input."""
    empty = [place for place, text in zip(places, texts) if not text]
    if empty:
        named = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        verb = f"{what}s are" if len(empty) > 1 else f"{what} is"
        print(f"Warning: {named}: the {verb} empty: the model chose the end token first, as a model "
              "trained briefly often does.", file=sys.stderr)


def load_run_model(run_dir):
    """Loads a run's `model.keras` in safe mode (no code from the file runs); a damaged or
    truncated file gives one DataError line."""
    path = run_dir / "model.keras"
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # zipfile, h5py and Keras each raise their own kinds.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: cannot load the model ({reason[:200]}).") from None


def write_output_file(path, data):
    """Writes the PNG picture that prediction produces (attention weights); a path that cannot be
    written gives one DataError line. An existing file is replaced only when it is a PNG picture
    too (the same command run again), so that a mistyped name cannot overwrite a model or a text."""
    check_picture_target(path, ".png")
    try:
        with open(path, "wb") as file:
            file.write(data)
    except OSError as error:
        raise DataError(f"{path}: cannot write the file ({error.strerror or error}).") from None


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
    # What each data source needs in `task.data` besides a TFDS builder's name: {source: {key:
    # what to give}}, and a builder to name as an example. A task reads a source with its method
    # `<source>_splits(data_config)`, called by `read_splits`.
    data_needs = {}
    tfds_example = None
    # Why the task's model cannot do without recurrent layers, for a task that refuses
    # model.num_layers=0 (the baseline without recurrence that sentiment and the labellers offer).
    needs_recurrence = None

    def __init__(self, cfg):
        self.cfg = cfg
        self.check_config(cfg)

    @classmethod
    def check_config(cls, cfg):
        """Checks the task's configuration when the task is built, before any data is read: the
        keys its data source needs (`data_needs`) and, in subclasses, the rules that tie several
        keys together. Raises ConfigError."""
        source = str(cfg.task.data.source)
        needs = {"name": f"NAME (e.g. {cls.tfds_example})"} if source == "tfds" else cls.data_needs.get(source, {})
        if any(not cfg.task.data[key] for key in needs):
            wanted = " and ".join(f"task.data.{key}={value}" for key, value in needs.items())
            raise ConfigError(f"task.data.source={source} needs {wanted}.")
        if cls.needs_recurrence and cfg.model.num_layers == 0:
            raise ConfigError(f"task={cfg.task.name} needs model.num_layers of 1 or more: {cls.needs_recurrence}.")

    def for_network(self, name, network, make):
        """`make(network)`, made once per network and kept on the task under `name`: compiled
        functions and decoders read the network's current weights, so one serves every epoch."""
        kept = self.__dict__.setdefault("_per_network", {})
        if name not in kept or kept[name][0] is not network:
            kept[name] = (network, make(network))
        return kept[name][1]

    def read_splits(self):
        """The data of the configured source, read by the task's `<source>_splits(data_config)`."""
        data_config = self.cfg.task.data
        return getattr(self, f"{data_config.source}_splits")(data_config)

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

    def decode_limit(self, count, limit=None):
        """How many of a split's `count` examples a decoding score uses: all of them (or `limit`),
        and, when `trainer.evaluation_steps` caps evaluation (smoke runs), no more than those
        steps hold."""
        count = min(count, limit) if limit else count
        steps = self.cfg.trainer.evaluation_steps
        return min(count, steps * self.cfg.trainer.batch_size) if steps else count

    def callbacks(self, run_dir):
        """Task-specific Keras callbacks, used in training and in every evaluation."""
        return []

    def export_model(self, model) -> keras.Model:
        """The model saved as `model.keras` for inference; by default the trained network."""
        return model

    def save_artifacts(self, run_dir):
        """Writes what inference needs besides `model.keras` (a vocabulary, say)."""

    # Inference from a finished run: `taskzoo-predict run_dir=RUN key=value ...`.
    # The options a task accepts, by name: PredictOption(conversion of the value, help).
    predict_options = {}

    @classmethod
    def predict(cls, run_dir, cfg, options):
        """Prints the model's answer for the given options."""
        raise NotImplementedError

    def description(self):
        """A few facts about the data for the run's log (sizes, vocabulary, classes)."""
        return {}
