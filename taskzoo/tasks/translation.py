"""Translation, the encoder-decoder task: a sentence in, a sentence of another length out.

Data: generated English -> French numbers and dates in words by default (see
`taskzoo/data/synthetic/number_pairs.py`), local files (a TSV file of pairs, or Moses-style
line-aligned PREFIX.SRC / PREFIX.TGT files), or a TFDS translation builder.

Model: source embedding (padding masked) -> the shared recurrent stack as the encoder (any cell,
depth, optionally bidirectional) -> a bridge from its final states to the decoder's initial
states -> the recurrent decoder, which attends over the encoder's outputs at every step
(`task.attention`) and is trained with teacher forcing (optionally scheduled sampling).

Evaluation: masked token accuracy and per-token perplexity under teacher forcing, and corpus BLEU
(sacreBLEU, on detokenised text) of greedy translations each epoch (`val_bleu`) and of the
configured decoder (`task.beam_size`) at the end.
"""

import json
import logging
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from taskzoo.blocks.decoder import RecurrentDecoder, StateBridge
from taskzoo.blocks.decoding import SequenceGenerator
from taskzoo.blocks.recurrent import recurrent_stack_from_config
from taskzoo.data import parallel
from taskzoo.data.splits import complete_splits, fractions
from taskzoo.data.synthetic.number_pairs import generate_pairs
from taskzoo.data.tfds_source import load_tfds_split
from taskzoo.errors import ConfigError, DataError
from taskzoo.metrics import Perplexity, corpus_bleu, masked_cross_entropy
from taskzoo.observe.images import heatmap_png
from taskzoo.tasks.base import (
    EpochSamples,
    PredictOption,
    Task,
    load_run_model,
    text_options,
    texts_to_predict,
    trained_network,
    warn_if_mostly_unknown,
    warn_of_empty_outputs,
    write_output_file,
)

logger = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="taskzoo")
class PaddingMask(keras.layers.Layer):
    """(batch, time) token ids -> (batch, time) booleans, true at real (non-zero) tokens."""

    def call(self, token_ids):
        return ops.not_equal(token_ids, 0)


class TranslationTask(Task):
    monitor = "val_bleu"
    monitor_mode = "max"
    data_needs = {"files": {"train": "PATH (a TSV file or a file prefix)"}}
    tfds_example = "ted_hrlr_translate/pt_to_en"
    needs_recurrence = "the encoder and the decoder are recurrent"

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        languages = (cfg.task.data.source_lang, cfg.task.data.target_lang)
        if str(cfg.task.data.source) == "files" and (languages[0] is None) != (languages[1] is None):
            raise ConfigError(
                "Line-aligned files need both task.data.source_lang and task.data.target_lang "
                f"(got source_lang={languages[0]}, target_lang={languages[1]})."
            )

    # Data: sentence pairs -> tokens -> two vocabularies -> length-bucketed batches.

    def datasets(self):
        task_config = self.cfg.task
        splits = self.read_splits()

        self.tokenizer = parallel.Tokenizer(
            str(task_config.tokenizer), task_config.lowercase, task_config.split_punctuation
        )
        self.pairs, self.dropped = {}, {}
        for name, pairs in splits.items():
            self.pairs[name] = self._filter(name, pairs)
        train_tokens = [
            (self.tokenizer.tokenize(source), self.tokenizer.tokenize(target))
            for source, target in self.pairs["train"]
        ]
        self.source_vocabulary = parallel.Vocabulary.build(
            (tokens for tokens, _ in train_tokens), task_config.vocabulary_size, task_config.min_frequency
        )
        self.target_vocabulary = parallel.Vocabulary.build(
            (tokens for _, tokens in train_tokens), task_config.vocabulary_size, task_config.min_frequency
        )
        batch_size, seed = self.cfg.trainer.batch_size, self.cfg.trainer.seed
        encoded = {
            name: parallel.encode_pairs(pairs, self.tokenizer, self.source_vocabulary, self.target_vocabulary)
            for name, pairs in self.pairs.items()
        }
        self.steps_per_epoch = -(-len(encoded["train"]) // batch_size)
        return (
            parallel.batches(encoded["train"], batch_size, True, seed),
            parallel.batches(encoded["validation"], batch_size, False, seed),
            parallel.batches(encoded["test"], batch_size, False, seed),
        )

    def _filter(self, name, pairs):
        """Leaves out pairs with an empty side (every split) and over-long training pairs, and
        says how many."""
        pairs, where = pairs if isinstance(pairs, tuple) else (pairs, None)
        kept, empty, long = [], [], 0
        limit = self.cfg.task.data.max_length
        for index, (source, target) in enumerate(pairs):
            source_length = len(self.tokenizer.tokenize(source))
            target_length = len(self.tokenizer.tokenize(target))
            if source_length == 0 or target_length == 0:
                empty.append(index)
            elif name == "train" and max(source_length, target_length) > limit:
                long += 1
            else:
                kept.append((source, target))
        if empty:
            first = f" (the first at {where[0]}, line {where[1][empty[0]]})" if where and where[1] else ""
            logger.warning("Left out %d %s pairs with an empty side%s.", len(empty), name, first)
        if long:
            logger.warning(
                "Left out %d of %d training pairs longer than task.data.max_length=%d tokens.",
                long, len(pairs), limit,
            )
        if not kept:
            source = f"{where[0]}: the {name} split" if where else f"The {name} split"
            raise DataError(
                f"{source} has no usable sentence pair ({len(empty)} of {len(pairs)} with an empty side, {long} "
                f"longer than task.data.max_length={limit} tokens)."
            )
        self.dropped[name] = {"empty": len(empty), "too_long": long}
        return kept

    def synthetic_splits(self, data_config):
        self.languages = ("en", "fr")
        return dict(zip(("train", "validation", "test"), generate_pairs(
            [data_config.num_train, data_config.num_validation, data_config.num_test], self.cfg.trainer.seed,
        )))

    def files_splits(self, data_config):
        languages = (data_config.source_lang, data_config.target_lang)
        self.languages = languages if languages[0] else ("source", "target")

        def read(path):
            if languages[0]:
                pairs, numbers = parallel.read_parallel_files(path, *languages)
                where = f"{path}.{languages[0]}"
            else:
                pairs, numbers = parallel.read_tsv(path, data_config.reverse)
                where = str(path)
            return pairs, (where, numbers)

        splits = {"train": read(data_config.train)}
        for name in ("validation", "test"):
            if data_config[name]:
                splits[name] = read(data_config[name])
        return self._split_missing(splits, data_config)

    def _split_missing(self, splits, data_config):
        """Carves the missing validation and test splits off the training pairs, by seed."""
        seed = self.cfg.trainer.seed
        train = splits["train"]
        if "test" in splits and "validation" in splits:
            return splits
        # Carved pairs lose their line numbers: the pairs are what matters from here on.
        pairs = train[0] if isinstance(train, tuple) else train
        given = {name: splits.get(name) for name in ("validation", "test")}
        splits["train"], splits["validation"], splits["test"] = complete_splits(
            {"train": pairs, **given}, fractions(data_config), seed, what="sentence pairs"
        )
        if isinstance(train, tuple):
            # Carved splits keep the name of the file they come from, without line numbers.
            source = (train[1][0], None)
            for name in ("train", "validation", "test"):
                if not isinstance(splits[name], tuple):
                    splits[name] = (splits[name], source)
        return splits

    def tfds_splits(self, data_config):

        def load(split):
            dataset, info = load_tfds_split(data_config.name, split, data_config.data_dir)
            keys = info.supervised_keys
            if not keys or len(keys) != 2:
                raise DataError(f"TFDS dataset {data_config.name!r} has no (source, target) supervised keys.")
            pairs = [
                (example[keys[0]].decode("utf-8"), example[keys[1]].decode("utf-8"))
                for example in dataset.as_numpy_iterator()
            ]
            return pairs, info, keys

        splits = {}
        splits["train"], _, self.languages = load(data_config.train_split)
        splits["test"], _, _ = load(data_config.test_split)
        if data_config.validation_split:
            try:
                splits["validation"], _, _ = load(data_config.validation_split)
            except DataError as error:
                if "has no split" not in str(error):
                    raise
                logger.info("%s has no %r split; it is carved from training.", data_config.name,
                            data_config.validation_split)
        return self._split_missing(splits, data_config)

    # Model: encoder stack -> state bridge -> attentive recurrent decoder.

    def build_model(self):
        model_config, task_config = self.cfg.model, self.cfg.task
        cell = str(model_config.cell)
        source = keras.Input((None,), dtype="int32", name="source")
        target_input = keras.Input((None,), dtype="int32", name="target_input")
        # (batch, source_time, embedding_dim), with the mask of padded steps.
        embedded = keras.layers.Embedding(
            len(self.source_vocabulary), model_config.embedding_dim, mask_zero=True, name="source_embedding"
        )(source)
        embedded = keras.layers.Dropout(model_config.dropout, name="source_dropout")(embedded)
        # (batch, source_time, units or 2 x units), and the final states of every layer.
        memory, final_states = recurrent_stack_from_config(
            model_config, return_sequences=True, return_state=True, name="encoder"
        )(embedded)
        memory_mask = PaddingMask(name="source_mask")(source)
        initial_states = StateBridge(cell, model_config.units, model_config.bidirectional, name="bridge")(
            final_states
        )
        logits = RecurrentDecoder(
            len(self.target_vocabulary),
            cell=cell,
            units=model_config.units,
            num_layers=model_config.num_layers,
            embedding_dim=model_config.embedding_dim,
            attention=str(task_config.attention),
            attention_units=task_config.attention_units,
            dropout=model_config.dropout,
            scheduled_sampling=task_config.scheduled_sampling > 0,
            kernel_initializer=str(model_config.initializer),
            recurrent_initializer=str(model_config.recurrent_initializer),
            name="decoder",
        )(target_input, memory, memory_mask, initial_states)
        return keras.Model({"source": source, "target_input": target_input}, logits, name="translator")

    def loss(self):
        return masked_cross_entropy()

    def weighted_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), Perplexity()]

    def callbacks(self, run_dir):
        callbacks = [TranslationSamples(self, run_dir / "samples")]
        if self.cfg.task.scheduled_sampling > 0:
            callbacks.append(
                ScheduledSampling(
                    self.cfg.task.scheduled_sampling, str(self.cfg.task.scheduled_sampling_schedule), self.cfg.trainer.epochs
                )
            )
        return callbacks

    def translator(self, network):
        """One translator per network, made on first use and kept on the task (its compiled
        functions read the network's current weights, so it serves every epoch)."""
        return self.for_network("translator", network, lambda network: Translator(
            network, self.tokenizer, self.source_vocabulary, self.target_vocabulary, self.cfg.task.max_output_length
        ))

    def extra_metrics(self, network, split):
        task_config = self.cfg.task
        pairs = self.pairs[split]
        sources, references = zip(*pairs[:self.decode_limit(len(pairs))])
        translations = self.translator(network).translate(
            sources, task_config.beam_size, task_config.length_penalty
        )
        return {"bleu": self.bleu(translations, references)}

    def bleu(self, translations, references):
        return corpus_bleu(
            [translation["text"] for translation in translations],
            [self.tokenizer.normalize(reference) for reference in references],
        )

    def save_artifacts(self, run_dir):
        vocabularies = {
            "source": self.source_vocabulary.tokens,
            "target": self.target_vocabulary.tokens,
            "tokenizer": self.tokenizer.get_config(),
        }
        (run_dir / "vocabulary.json").write_text(json.dumps(vocabularies, ensure_ascii=False))

    def description(self):
        return {
            "pairs": {name: len(pairs) for name, pairs in self.pairs.items()},
            "left_out": self.dropped,
            "languages": list(self.languages),
            "source_vocabulary": len(self.source_vocabulary),
            "target_vocabulary": len(self.target_vocabulary),
        }

    # Inference: `taskzoo-predict run_dir=RUN text="..." [beam_size=5] [attention=out.png]`.

    predict_options = {
        **text_options("a sentence in the source language", "sentences", "one translation per line"),
        "beam_size": PredictOption(int, "beam width (1: greedy search); default: the run's task.beam_size"),
        "length_penalty": PredictOption(float, "length penalty alpha; default: the run's task.length_penalty"),
        "attention": PredictOption(str, "with text=: write the attention heatmap to this PNG file"),
    }

    @classmethod
    def predict(cls, run_dir, cfg, options):
        texts, from_file = texts_to_predict(options)
        if from_file and "attention" in options:
            raise ConfigError("attention= goes with text= (one sentence), not with file=.")
        beam_size = options.get("beam_size", cfg.task.beam_size)
        if beam_size < 1:
            raise ConfigError(f"beam_size must be 1 or more; received {beam_size}.")
        network = load_run_model(run_dir)
        vocabularies = json.loads((run_dir / "vocabulary.json").read_text())
        tokenizer = parallel.Tokenizer(**vocabularies["tokenizer"])
        source_vocabulary = parallel.Vocabulary(vocabularies["source"])
        translator = Translator(
            network, tokenizer, source_vocabulary,
            parallel.Vocabulary(vocabularies["target"]), cfg.task.max_output_length,
        )
        tokenized = [tokenizer.tokenize(text) for text in texts]
        if not from_file and not tokenized[0]:
            raise ConfigError("text= holds no token to translate.")
        places = [f"line {number}" if from_file else "text" for number in range(1, len(texts) + 1)]
        for tokens, place in zip(tokenized, places):
            warn_if_mostly_unknown(tokens, source_vocabulary.ids.__contains__, place)
        # Lines without a token get an empty line, so that answers stay aligned with the input.
        kept = [index for index, tokens in enumerate(tokenized) if tokens]
        translations = translator.translate([texts[index] for index in kept], beam_size,
                                            options.get("length_penalty", cfg.task.length_penalty))
        warn_of_empty_outputs([result["text"] for result in translations], "translation", [places[index] for index in kept])
        answers = iter(translations)
        for tokens in tokenized:
            print(next(answers)["text"] if tokens else "")
        if "attention" in options:
            translation = translations[0]
            if translation["attention"] is None:
                raise ConfigError("attention= needs a model trained with attention (task.attention=none here).")
            png = attention_heatmap(translation["source_tokens"], translation["tokens"], translation["attention"])
            write_output_file(options["attention"], png)
            print(f"Attention heatmap: {options['attention']}")


class Translator:
    """Translates sentences with a trained network, greedily or with beam search.

    The encoder part of the network (embedding, stack, mask, bridge) runs once per batch of
    sentences; the decoder's `step` then runs once per generated token, compiled.
    """

    def __init__(self, network, tokenizer, source_vocabulary, target_vocabulary, max_output_length=None):
        self.network = network
        self.tokenizer = tokenizer
        self.source_vocabulary = source_vocabulary
        self.target_vocabulary = target_vocabulary
        self.max_output_length = max_output_length
        encoder = keras.Model(
            network.get_layer("source").output,
            [
                network.get_layer("encoder").output[0],
                network.get_layer("source_mask").output,
                network.get_layer("bridge").output,
            ],
        )
        self.generator = SequenceGenerator(
            encoder, network.get_layer("decoder"), parallel.START_ID, parallel.END_ID,
            banned_ids=(parallel.PADDING_ID, parallel.START_ID),
        )

    def translate(self, sentences, beam_size=1, length_penalty=0.0, batch_size=64):
        """Returns one dict per sentence: `text`, `tokens`, `source_tokens`, `attention`
        ((target tokens + 1, source tokens), or None) and `score`. A batch holds `batch_size`
        sentences (beam search decodes `batch_size` × `beam_size` hypotheses at once: with beam 5
        on Multi30k, 64 sentences per batch decoded 1.4 times as many per second as 12)."""
        source_tokens = [self.tokenizer.tokenize(sentence) for sentence in sentences]
        source_ids = [self.source_vocabulary.encode(tokens) for tokens in source_tokens]
        # Sentences of similar length are translated together; results go back in input order.
        order = np.argsort([len(ids) for ids in source_ids], kind="stable")
        results = [None] * len(sentences)
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch_ids = parallel.padded([source_ids[i] for i in indices])
            lengths = np.array([len(source_ids[i]) for i in indices])
            max_lengths = (
                np.full(len(indices), self.max_output_length) if self.max_output_length else 2 * lengths + 10
            )
            decoded = self.generator.generate(tf.constant(batch_ids), max_lengths, beam_size, length_penalty)
            for index, length, result in zip(indices, lengths, decoded):
                tokens = self.target_vocabulary.decode(result["tokens"])
                attention = result["attention"]
                results[index] = {
                    "text": self.tokenizer.detokenize(tokens),
                    "tokens": tokens,
                    "source_tokens": source_tokens[index],
                    "attention": None if attention is None else attention[:, :length],
                    "score": result["score"],
                }
        return results


class ScheduledSampling(keras.callbacks.Callback):
    """Sets the decoder's probability of feeding its own samples at the start of every epoch:
    constant, or rising linearly from 0 (first epoch) to `probability` (last epoch)."""

    def __init__(self, probability, schedule, epochs):
        super().__init__()
        self.probability = probability
        self.schedule = schedule
        self.epochs = epochs

    def probability_at(self, epoch):
        if self.schedule == "constant" or self.epochs == 1:
            return self.probability
        return self.probability * min(1.0, epoch / (self.epochs - 1))

    def on_epoch_begin(self, epoch, logs=None):
        probability = self.probability_at(epoch)
        trained_network(self.model).get_layer("decoder").sampling_probability.assign(probability)
        if logs is not None:
            logs["sampling_probability"] = probability

    def on_train_end(self, logs=None):
        # Evaluation is always teacher-forced.
        trained_network(self.model).get_layer("decoder").sampling_probability.assign(0.0)


class TranslationSamples(EpochSamples):
    """At every epoch end: `val_bleu` of greedy translations of the validation pairs (added to the
    epoch's logs, so it can select the best epoch), and a few validation sentences with their
    reference and translation (text tab) and attention matrices (image tab) in TensorBoard."""

    def write_epoch(self, network, epoch, scores):
        task = self.task
        pairs = task.pairs["validation"]
        sources, references = zip(*pairs[:task.decode_limit(len(pairs), task.cfg.task.eval_decode_examples)])
        started = time.perf_counter()
        translations = task.translator(network).translate(sources, beam_size=1)
        scores["bleu"] = task.bleu(translations, references)
        # TensorBoard shows it as the validation run's epoch_decode_seconds.
        scores["decode_seconds"] = time.perf_counter() - started
        count = task.cfg.task.sample_sentences
        rows = ["| source | reference | translation |", "|---|---|---|"]
        for source, reference, translation in zip(sources[:count], references[:count], translations):
            rows.append(f"| {_cell(source)} | {_cell(reference)} | {_cell(translation['text'])} |")
        if count:
            tf.summary.text("validation/translations", "\n".join(rows))
        for index, translation in enumerate(translations[:count]):
            if translation["attention"] is not None:
                png = attention_heatmap(translation["source_tokens"], translation["tokens"], translation["attention"])
                tf.summary.image(f"validation/attention_{index}", tf.image.decode_png(png)[None])


def _cell(text):
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def attention_heatmap(source_tokens, target_tokens, weights):
    """A PNG of the attention weights: one row per generated token (the end token last), one
    column per source token, both labelled."""
    rows = list(target_tokens) + [parallel.END]
    weights = np.asarray(weights)[: len(rows), : len(source_tokens)]
    return heatmap_png(weights, rows, list(source_tokens), "translation", "source")
