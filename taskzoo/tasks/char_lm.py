"""Character-level language model: predict the next character, as in the classic char-rnn.

Data: the Python standard library's source code by default (read from the running interpreter,
so it is on every machine), a TFDS text dataset such as `tiny_shakespeare`, or local UTF-8 text.
Each split is one long text; validation and test are the last 5% + 5% of the characters unless
given separately.

Training (`task.bptt`):
- truncated (default): the text becomes `batch_size` contiguous streams; every step reads the
  next `seq_length` characters of each stream and starts from the state the previous step ended
  with, so the model sees context far beyond `seq_length` while gradients flow back only
  `seq_length` steps. States are reset at the start of every epoch and of every evaluation.
- windows: independent random windows, each from a zero state, as most tutorials do.
Validation and test always stream the text statefully, so the two modes give comparable numbers.

Model: character embedding -> the shared recurrent stack (stateful, unidirectional) -> dropout ->
a dense layer with one logit per character.

Inference: `model.keras` is a batch-1 stateful copy that generates one character at a time,
carrying its state forward; `vocabulary.json` maps ids to characters.
"""

import math
import sys

import keras
import numpy as np
import tensorflow as tf

from taskzoo.blocks.decoding import sample_search
from taskzoo.blocks.recurrent import recurrent_stack_from_config, reset_recurrent_states
from taskzoo.data import characters
from taskzoo.data.tfds_source import load_tfds_split
from taskzoo.errors import ConfigError, DataError
from taskzoo.metrics import BitsPerCharacter, Perplexity
from taskzoo.tasks.base import EpochSamples, PredictOption, Task, load_run_model, texts_to_predict

SAMPLE_TEMPERATURES = (0.5, 1.0)


class CharLanguageModelTask(Task):
    monitor = "val_loss"
    monitor_mode = "min"
    data_needs = {"files": {"train": "PATH (a file, directory or glob)"}}
    tfds_example = "tiny_shakespeare"

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        if cfg.model.bidirectional:
            raise ConfigError(
                "model.bidirectional=true cannot predict the next character: the backward direction "
                "would read it. Use model.bidirectional=false with task=char_lm."
            )

    # Data: three texts -> a character vocabulary -> streams (or windows) of character ids.

    def datasets(self):
        train, validation, test = self.read_splits()

        self.vocabulary = characters.CharacterVocabulary.from_text(train)
        self.validation_text = validation
        batch_size, seq_length = self.cfg.trainer.batch_size, self.cfg.task.seq_length
        ids = {name: self.vocabulary.encode(text) for name, text in
               (("train", train), ("validation", validation), ("test", test))}
        self.sizes = {name: len(split_ids) for name, split_ids in ids.items()}
        if str(self.cfg.task.bptt) == "truncated":
            train_batches = characters.stream_batches(ids["train"], batch_size, seq_length, "training")
        else:
            num_batches = (len(ids["train"]) - 1) // (batch_size * seq_length)
            train_batches = characters.window_batches(
                ids["train"], batch_size, seq_length, num_batches, self.cfg.trainer.seed
            )
        return (
            train_batches,
            characters.stream_batches(ids["validation"], batch_size, seq_length, "validation"),
            characters.stream_batches(ids["test"], batch_size, seq_length, "test"),
        )

    def stdlib_splits(self, data_config):
        return characters.split_by_character(
            characters.stdlib_corpus(data_config.max_characters),
            data_config.validation_fraction,
            data_config.test_fraction,
        )

    def tfds_splits(self, data_config):

        def load(split):
            dataset, info = load_tfds_split(data_config.name, split, data_config.data_dir)
            text_keys = [key for key, feature in info.features.items() if feature.dtype == tf.string]
            if len(text_keys) != 1:
                raise DataError(f"TFDS dataset {data_config.name!r} has no single text feature ({text_keys}).")
            return "\n".join(
                example[text_keys[0]].decode("utf-8") for example in dataset.as_numpy_iterator()
            )

        texts = [load(split) if split else None
                 for split in (data_config.train_split, data_config.validation_split, data_config.test_split)]
        return characters.complete_text_splits(*texts, data_config.validation_fraction, data_config.test_fraction)

    def files_splits(self, data_config):
        texts = [characters.read_corpus(path) if path else None
                 for path in (data_config.train, data_config.validation, data_config.test)]
        return characters.complete_text_splits(*texts, data_config.validation_fraction, data_config.test_fraction)

    # Model: embedding -> stateful recurrent stack -> next-character logits.

    def build_model(self, batch_size=None):
        """The language model for batches of `batch_size` streams (default: the trainer's)."""
        model_config = self.cfg.model
        batch_size = batch_size or self.cfg.trainer.batch_size
        # (batch, time) character ids; the time length may vary.
        character_ids = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="character_ids")
        embedded = keras.layers.Embedding(
            len(self.vocabulary), model_config.embedding_dim, name="embedding"
        )(character_ids)
        # (batch, time, units)
        hidden = recurrent_stack_from_config(
            model_config, return_sequences=True, stateful=True, name="recurrent_stack"
        )(embedded)
        hidden = keras.layers.Dropout(model_config.dropout, name="dropout")(hidden)
        # (batch, time, vocabulary)
        logits = keras.layers.Dense(len(self.vocabulary), name="next_character")(hidden)
        return keras.Model(character_ids, logits, name="char_lm")

    def metrics(self):
        return [BitsPerCharacter(), Perplexity()]

    def callbacks(self, run_dir):
        return [
            StateResets(reset_every_batch=str(self.cfg.task.bptt) == "windows"),
            TextSamples(self, run_dir / "samples"),
        ]

    # Inference: a batch-1 copy that generates and scores text one character at a time.

    def export_model(self, model):
        generator = self.build_model(batch_size=1)
        generator.set_weights(model.get_weights())
        return generator

    def save_artifacts(self, run_dir):
        self.vocabulary.save(run_dir / "vocabulary.json")

    def description(self):
        return {"characters": self.sizes, "vocabulary_size": len(self.vocabulary)}

    predict_options = {
        "prompt": PredictOption(str, "the text to continue (default: a new line)"),
        "length": PredictOption(int, "characters to generate (default 500)"),
        "temperature": PredictOption(float, "sampling temperature; 0 is greedy (default 1.0)"),
        "top_k": PredictOption(int, "sample among the k likeliest characters only"),
        "seed": PredictOption(int, "seed of the sampling, for a repeatable text"),
        "score": PredictOption(str, "score this text instead: its log-probability and bits per character"),
        "file": PredictOption(str, "score every line of a UTF-8 file (- for standard input); bits per character per line"),
    }

    @classmethod
    def predict(cls, run_dir, cfg, options):
        model = load_run_model(run_dir)
        vocabulary = characters.CharacterVocabulary.load(run_dir / "vocabulary.json")
        if "file" in options:
            if len(options) > 1:
                raise ConfigError(f"file= goes alone; it does not take {sorted(set(options) - {'file'})}.")
            texts, _ = texts_to_predict(options)
            for number, text in enumerate(texts, start=1):
                warn_of_unknown_characters(text, vocabulary, f"line {number}")
                print(f"{score(model, vocabulary, text)[1]:.4f}" if len(text) >= 2 else "")
            return
        if "score" in options:
            if len(options) > 1:
                raise ConfigError(f"score= goes alone; it does not take {sorted(set(options) - {'score'})}.")
            warn_of_unknown_characters(options["score"], vocabulary, "score")
            log_probability, bits = score(model, vocabulary, options["score"])
            print(f"log-probability: {log_probability:.4f} nats ({log_probability / math.log(2):.4f} bits)")
            print(f"bits per character: {bits:.4f}")
            return
        warn_of_unknown_characters(options.get("prompt", ""), vocabulary, "prompt")
        text = generate(
            model,
            vocabulary,
            prompt=options.get("prompt", "\n"),
            length=options.get("length", 500),
            temperature=options.get("temperature", 1.0),
            top_k=options.get("top_k"),
            seed=options.get("seed"),
        )
        print(options.get("prompt", "") + text)


def warn_of_unknown_characters(text, vocabulary, where):
    """Warns on standard error when `text` holds characters the training text did not: the model
    reads each of them as one unknown character, so its answer says little about them."""
    unknown = sorted({character for character in text if character not in vocabulary.index})
    if unknown:
        shown = " ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        print(f"Warning: {where}: characters the model never saw in training ({shown}); it reads each as one "
              "unknown character.", file=sys.stderr)


class StateResets(keras.callbacks.Callback):
    """Zeroes the carried states at every epoch start and evaluation start (and before every
    batch when training on independent windows)."""

    def __init__(self, reset_every_batch):
        super().__init__()
        self.reset_every_batch = reset_every_batch

    def on_epoch_begin(self, epoch, logs=None):
        reset_recurrent_states(self.model)

    def on_test_begin(self, logs=None):
        reset_recurrent_states(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        if self.reset_every_batch:
            reset_recurrent_states(self.model)


class TextSamples(EpochSamples):
    """Writes generated text at temperatures 0.5 and 1.0 to TensorBoard's text tab every epoch."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.generator_model = self.task.build_model(batch_size=1)
        self.generator = TextGenerator(self.generator_model)
        prompt = self.task.cfg.task.sample_prompt
        if prompt is None:
            prompt = self.task.validation_text.split("\n", 1)[0][:40] or "\n"
        self.prompt = prompt

    def write_epoch(self, network, epoch, scores):
        self.generator_model.set_weights(network.get_weights())
        for temperature in SAMPLE_TEMPERATURES:
            text = self.prompt + self.generator.generate(
                self.task.vocabulary, self.prompt,
                self.task.cfg.task.sample_length, temperature, top_k=None, seed=epoch,
            )
            # A Markdown code block keeps line breaks and indentation.
            tf.summary.text(f"samples/temperature_{temperature}", f"```\n{text}\n```")


def _step_function(model):
    """A compiled call of the batch-1 model on (1, time) ids, traced once for any length."""
    return tf.function(
        lambda ids: model(ids, training=False),
        input_signature=[tf.TensorSpec((1, None), tf.int32)],
    )


class TextGenerator:
    """Generates text with a batch-1 stateful copy of the network, one compiled loop per text.

    The prompt is read once; each generated character is then fed back, carrying the state
    forward, inside `blocks.decoding.sample_search`. The compiled functions read the model's
    current weights, so one generator serves every epoch of training.
    """

    def __init__(self, model):
        self.model = model
        self.read = _step_function(model)

        def step(tokens, states, memory_inputs):
            # (1,) -> the logits after this character (1, vocabulary); the states live in the model.
            return model(tokens[:, None], training=False)[:, -1], states, None

        def continue_text(last_id, length, uniforms, temperature, top_k):
            return sample_search(step, [], (), tf.reshape(length, [1]), last_id, end_id=-1,
                                 temperature=temperature, top_k=top_k, uniforms=uniforms).tokens[0]

        self.continue_text = tf.function(continue_text, reduce_retracing=True)

    def generate(self, vocabulary, prompt, length, temperature=1.0, top_k=None, seed=None):
        """Generates `length` characters after `prompt`; temperature 0 is greedy decoding.

        The draws come from numpy's generator seeded with `seed`, so a seed gives the same text
        on every machine and in every version of this loop.
        """
        if not prompt:
            raise ConfigError("prompt= must hold at least one character.")
        if length < 0:
            raise ConfigError(f"length must be 0 or more; received {length}.")
        if temperature < 0:
            raise ConfigError(f"temperature must be 0 or more; received {temperature}.")
        if length == 0:
            return ""
        ids = vocabulary.encode(prompt)
        uniforms = np.random.default_rng(seed).random((1, length)) if temperature > 0 else np.zeros((1, length))
        reset_recurrent_states(self.model)
        if len(ids) > 1:
            self.read(ids[None, :-1])
        # A positive temperature goes in as a tensor, so that one compiled loop serves every
        # temperature (a sweep's jobs and the epochs' samples would otherwise each trace their own);
        # greedy decoding (0) is a loop of its own.
        temperature = tf.constant(temperature, tf.float64) if temperature > 0 else 0.0
        generated = self.continue_text(
            tf.constant(ids[-1], tf.int32), tf.constant(length, tf.int32), tf.constant(uniforms),
            temperature, int(top_k or 0),
        )
        return vocabulary.decode(generated.numpy().tolist())


def generate(model, vocabulary, prompt, length, temperature=1.0, top_k=None, seed=None):
    """Generates `length` characters after `prompt` with a `TextGenerator` made for one text."""
    return TextGenerator(model).generate(vocabulary, prompt, length, temperature, top_k, seed)


def score(model, vocabulary, text):
    """Returns (log-probability in nats, bits per character) of `text` under the model.

    Every character after the first is predicted from the ones before it, so a text of n
    characters is scored on n - 1 predictions.
    """
    if len(text) < 2:
        raise ConfigError("score= needs a text of at least two characters.")
    ids = vocabulary.encode(text)
    reset_recurrent_states(model)
    logits = _step_function(model)(ids[None, :-1])[0]
    log_probabilities = tf.nn.log_softmax(logits, axis=-1).numpy()
    total = float(log_probabilities[np.arange(len(ids) - 1), ids[1:]].sum())
    return total, -total / math.log(2) / (len(ids) - 1)
