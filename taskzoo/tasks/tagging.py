"""Sequence tagging, a synchronised many-to-many task: a label for every word (part of speech,
chunk, named entity).

Data: generated sentences whose tags need the words on both sides by default (see
`taskzoo/data/synthetic/tagged_sentences.py`), CoNLL-U or column files (`taskzoo/data/tagged.py`),
or a TFDS builder with tokens and per-token tags such as `conll2003`.

Model: a word embedding (padding masked, with word dropout to <unk>) and, with
`task.char_features`, a bidirectional recurrent encoder of every word's characters
(`blocks/words.py`), so that words never seen in training still get a representation; then the
shared recurrent stack (bidirectional by choice), then a dense layer giving one logit per tag at
every word. Padded words have weight 0 in the loss and the metrics.

Scores: per-word accuracy (a Keras metric), accuracy on the words never seen in training, and the
macro-F1 over tags; each epoch, a confusion-matrix image of the most confused tags.
"""

import json
import logging
import re

import keras
import numpy as np
import tensorflow as tf

from taskzoo.blocks.recurrent import recurrent_stack_from_config
from taskzoo.blocks.words import CharacterWordEncoder, WordDropout
from taskzoo.data import tagged
from taskzoo.data.splits import complete_splits, fractions
from taskzoo.data.synthetic.tagged_sentences import generate_tagged_sentences
from taskzoo.data.text import length_boundaries, steps_per_epoch
from taskzoo.data.tfds_source import load_tfds_split
from taskzoo.errors import ConfigError, DataError
from taskzoo.metrics import masked_cross_entropy
from taskzoo.observe.images import heatmap_png
from taskzoo.tasks.base import EpochSamples, Task, load_run_model, text_options, texts_to_predict

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


class TaggingTask(Task):
    monitor = "val_accuracy"
    monitor_mode = "max"
    data_needs = {"files": {"train": "PATH (a CoNLL-U or column file)"}}
    tfds_example = "conll2003"

    # Data: tagged sentences of three splits, encoded as word, character and tag ids.

    def datasets(self):
        self.sentences = dict(zip(SPLITS, self.read_splits()))
        for name, sentences in self.sentences.items():
            if not sentences:
                raise DataError(f"The {name} split has no sentence.")

        task = self.cfg.task
        self.encoder = tagged.SentenceEncoder.from_sentences(
            self.sentences["train"], self.tag_names(), task.min_frequency, task.vocabulary_size,
            task.lowercase, task.max_word_length,
        )
        training_words = {tagged.word_key(word, task.lowercase) for sentence in self.sentences["train"] for word in sentence.words}
        self.encoded = {name: tagged.encode_split(self.encoder, sentences, training_words)
                        for name, sentences in self.sentences.items()}
        self.boundaries = length_boundaries([len(sentence.words) for sentence in self.sentences["train"]])
        self.steps_per_epoch = steps_per_epoch(len(self.sentences["train"]), self.cfg.trainer.batch_size)
        return tuple(self.batches_of(name, training=name == "train") for name in SPLITS)

    def tag_names(self):
        """The tags of the training sentences, sorted; then those only the other splits hold (the
        model can learn nothing of them, so they count as errors)."""
        def tags_of(name):
            return {tag for sentence in self.sentences[name] for tag in sentence.tags}

        training_tags = sorted(tags_of("train"))
        others = sorted((tags_of("validation") | tags_of("test")) - set(training_tags))
        if others:
            logger.warning("The tags %s occur in validation or test but never in training.", ", ".join(others))
        return training_tags + others

    def batches_of(self, split, training=False):
        return tagged.batches(
            self.encoded[split], self.cfg.trainer.batch_size, self.boundaries, self.cfg.task.char_features,
            training, self.cfg.trainer.seed,
        )

    def synthetic_splits(self, data_config):
        return [
            [tagged.Sentence(words, tags) for words, tags in generate_tagged_sentences(count, self.cfg.trainer.seed, name)]
            for name, count in zip(SPLITS, (data_config.num_train, data_config.num_validation, data_config.num_test))
        ]

    def files_splits(self, data_config):
        task = self.cfg.task

        def read(path):
            return tagged.read_tagged_file(path, str(data_config.format), task.word_column, task.tag_column)

        splits = {name: read(data_config[name]) for name in SPLITS if data_config[name]}
        return self._complete(splits, data_config)

    def tfds_splits(self, data_config):
        splits = {}
        for name in SPLITS:
            split = data_config[f"{name}_split"]
            if split:
                dataset, info = load_tfds_split(data_config.name, split, data_config.data_dir)
                splits[name] = tfds_sentences(dataset, info, data_config.name, self.cfg.task.tag_column)
        return self._complete(splits, data_config)

    def _complete(self, splits, data_config):
        """Carves the missing validation and test splits off the training sentences."""
        return complete_splits(splits, fractions(data_config), self.cfg.trainer.seed, what="sentences")

    # Model: word (and character) features -> recurrent stack -> a tag at every word.

    def build_model(self):
        model_config, task = self.cfg.model, self.cfg.task
        word_ids = keras.Input((None,), dtype="int32", name="words")
        inputs = {"words": word_ids}
        dropped = WordDropout(task.word_dropout, unknown_id=tagged.UNKNOWN, seed=self.cfg.trainer.seed, name="word_dropout")(word_ids)
        # (batch, words, embedding_dim).
        features = keras.layers.Embedding(
            len(self.encoder.words), model_config.embedding_dim, mask_zero=True, name="word_embedding"
        )(dropped)
        if task.char_features:
            character_ids = keras.Input((None, task.max_word_length), dtype="int32", name="characters")
            inputs["characters"] = character_ids
            # (batch, words, 2 * char_units), joined to the word embedding.
            spelled = CharacterWordEncoder(
                len(self.encoder.characters), task.char_embedding_dim, str(model_config.cell), task.char_units,
                name="character_encoder",
            )(character_ids)
            features = keras.layers.Concatenate(name="word_features")([features, spelled])
        features = keras.layers.Dropout(model_config.dropout, name="input_dropout")(features)
        real_words = keras.ops.not_equal(word_ids, 0)
        sequence = recurrent_stack_from_config(model_config, return_sequences=True, name="recurrent_stack")(
            features, mask=real_words
        )
        sequence = keras.layers.Dropout(model_config.dropout, name="output_dropout")(sequence)
        logits = keras.layers.Dense(len(self.encoder.tags), name="classifier")(sequence)
        return keras.Model(inputs, logits, name="tagger")

    def loss(self):
        return masked_cross_entropy()

    def weighted_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def callbacks(self, run_dir):
        return [TaggingScores(self, run_dir / "samples")]

    # Scores Keras metrics cannot stream: unseen-word accuracy, macro-F1, the confusion matrix.

    def predicted_tags(self, network, split):
        """The predicted tag ids of a split's sentences, real words only, in order (at most as
        many sentences as `trainer.evaluation_steps` allows)."""
        encoded = self.encoded[split]
        count = self.decode_limit(len(encoded))
        tag = self.for_network("tagger", network, lambda network: tag_function(network, self.cfg.task.char_features))
        return predict_tags(tag, encoded, range(count), self.cfg.trainer.batch_size)

    def extra_metrics(self, network, split):
        predictions = self.predicted_tags(network, split)
        encoded = self.encoded[split]
        scores = tag_scores(predictions, encoded.tag_ids[: len(predictions)], encoded.unseen[: len(predictions)])
        # A split without unseen words has no unseen-word accuracy.
        return {name: value for name, value in scores.items() if value is not None}

    # Inference: `taskzoo-predict run_dir=RUN text="They book a flight ."`.

    def save_artifacts(self, run_dir):
        (run_dir / "tagger.json").write_text(json.dumps(self.encoder.to_json(), ensure_ascii=False) + "\n")

    predict_options = text_options("a sentence to tag (punctuation is split off the words)", "sentences",
                                   "one tagged line each")

    @classmethod
    def predict(cls, run_dir, cfg, options):
        texts, from_file = texts_to_predict(options)
        model = load_run_model(run_dir)
        encoder = tagged.SentenceEncoder.from_json(json.loads((run_dir / "tagger.json").read_text()))
        sentences = [split_words(text) for text in texts]
        nonempty = [index for index, words in enumerate(sentences) if words]
        split = tagged.encode_split(encoder, [tagged.Sentence(sentences[i], []) for i in nonempty], set())
        characters = "characters" in model.input
        predictions = predict_tags(tag_function(model, characters), split, range(len(nonempty)), 64)
        tags_of = dict(zip(nonempty, predictions))
        for index, words in enumerate(sentences):
            tags = [encoder.tags[tag] for tag in tags_of.get(index, [])]
            if from_file:
                print(" ".join(f"{word}/{tag}" for word, tag in zip(words, tags)))
            else:
                for word, tag in zip(words, tags):
                    print(f"{word}\t{tag}")

    def description(self):
        return {
            "sentences": {name: len(sentences) for name, sentences in self.sentences.items()},
            "words": {name: sum(len(s.words) for s in sentences) for name, sentences in self.sentences.items()},
            "unseen_words": {name: int(sum(u.sum() for u in self.encoded[name].unseen)) for name in ("validation", "test")},
            "vocabulary_size": len(self.encoder.words),
            "characters": len(self.encoder.characters),
            "tags": self.encoder.tags,
        }


def tfds_sentences(dataset, info, name, tag_column):
    """The sentences of a TFDS split with a `tokens` feature and a per-token tag feature: the
    one `tag_column` names, else `upos`, else the only one there is."""
    import tensorflow_datasets as tfds

    features = info.features
    sequences = {key: feature for key, feature in features.items()
                 if isinstance(feature, tfds.features.Sequence) and key != "tokens"}
    if "tokens" not in features:
        raise DataError(f"TFDS dataset {name!r} has no 'tokens' feature; a tagging dataset needs one.")
    if tag_column is not None:
        key = str(tag_column)
    elif "upos" in sequences:
        key = "upos"
    else:
        labelled = [key for key, feature in sequences.items() if isinstance(feature.feature, tfds.features.ClassLabel)]
        if len(labelled) != 1:
            raise ConfigError(
                f"TFDS dataset {name!r} has the per-token features {sorted(sequences)}; choose one with task.tag_column."
            )
        key = labelled[0]
    if key not in sequences:
        raise ConfigError(f"task.tag_column={key} is not a per-token feature of {name!r} (it has {sorted(sequences)}).")
    names = getattr(sequences[key].feature, "names", None)
    sentences = []
    for index, example in enumerate(dataset.as_numpy_iterator()):
        words = [token.decode("utf-8", errors="replace") for token in example["tokens"]]
        tags = [names[int(tag)] if names else tag.decode("utf-8", errors="replace") for tag in example[key]]
        if len(words) != len(tags):
            raise DataError(
                f"TFDS dataset {name!r}, example {index}: {len(words)} tokens but {len(tags)} {key} tags."
            )
        if words:
            sentences.append(tagged.Sentence(words, tags))
    return sentences


def split_words(text):
    """The words of a sentence to tag: split at spaces, with punctuation at the start or the end
    of a word split off ("flight." -> "flight", ".")."""
    words = []
    for token in text.split():
        match = re.fullmatch(r"([\"'(\[{]*)(.*?)([.,!?;:\"')\]}]*)", token)
        leading, word, trailing = match.groups()
        if not word:
            words.append(token)
            continue
        words += list(leading) + [word] + list(trailing)
    return words


def tag_function(network, characters):
    """The network's compiled tagging: the most likely tag id of every word."""
    signature = {"words": tf.TensorSpec((None, None), tf.int32)}
    if characters:
        signature["characters"] = tf.TensorSpec((None, None, network.input["characters"].shape[-1]), tf.int32)
    return tf.function(lambda inputs: tf.argmax(network(inputs, training=False), axis=-1, output_type=tf.int32),
                       input_signature=[signature])


def predict_tags(tag, split, indices, batch_size):
    """The tag ids `tag` (from `tag_function`) predicts for the sentences `indices` of an encoded
    split, real words only, in the order of `indices`. Sentences of similar length are batched
    together."""
    indices = list(indices)
    order = sorted(indices, key=lambda index: len(split.word_ids[index]))
    predictions = {}
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        longest = max(len(split.word_ids[index]) for index in batch)
        words = np.zeros((len(batch), longest), np.int32)
        inputs = {"words": words}
        if "characters" in tag.input_signature[0]:
            width = split.character_ids[batch[0]].shape[1]
            inputs["characters"] = np.zeros((len(batch), longest, width), np.int32)
        for row, index in enumerate(batch):
            length = len(split.word_ids[index])
            words[row, :length] = split.word_ids[index]
            if "characters" in inputs:
                inputs["characters"][row, :length] = split.character_ids[index]
        tags = tag(inputs).numpy()
        for row, index in enumerate(batch):
            predictions[index] = tags[row, : len(split.word_ids[index])]
    return [predictions[index] for index in indices]


def tag_scores(predictions, targets, unseen):
    """Accuracy on the words never seen in training (`oov_accuracy`, null when there is none) and
    the macro-F1 over the tags that occur in the targets or the predictions, both in [0, 1]."""
    from sklearn.metrics import f1_score

    predicted = np.concatenate(predictions) if predictions else np.zeros(0, np.int32)
    true = np.concatenate(targets) if targets else np.zeros(0, np.int32)
    unseen = np.concatenate(unseen) if unseen else np.zeros(0, bool)
    oov_accuracy = float((predicted[unseen] == true[unseen]).mean()) if unseen.any() else None
    labels = sorted(set(true.tolist()) | set(predicted.tolist()))
    macro_f1 = float(f1_score(true, predicted, labels=labels, average="macro", zero_division=0)) if labels else 0.0
    return {"oov_accuracy": oov_accuracy, "macro_f1": macro_f1}


def confusion_image(predictions, targets, tag_names, count):
    """A PNG of the confusion matrix of the `count` most confused tags (the share of each true
    tag given to each predicted tag), or None when no word was mistagged."""
    from sklearn.metrics import confusion_matrix

    predicted, true = np.concatenate(predictions), np.concatenate(targets)
    matrix = confusion_matrix(true, predicted, labels=range(len(tag_names)))
    errors = matrix.sum(axis=0) + matrix.sum(axis=1) - 2 * np.diag(matrix)
    if not errors.any():
        return None
    chosen = np.sort(np.argsort(-errors, kind="stable")[:count])
    chosen = chosen[errors[chosen] > 0]
    shares = matrix[np.ix_(chosen, chosen)] / np.maximum(matrix[chosen].sum(axis=1, keepdims=True), 1)
    names = [tag_names[index] for index in chosen]
    return heatmap_png(shares, names, names, "true tag", "predicted tag")


class TaggingScores(EpochSamples):
    """At every epoch end: `val_oov_accuracy` and `val_macro_f1` (added to the epoch's logs), and
    the confusion matrix of the most confused validation tags in TensorBoard's image tab."""

    def write_epoch(self, network, epoch, scores):
        task = self.task
        predictions = task.predicted_tags(network, "validation")
        encoded = task.encoded["validation"]
        targets = encoded.tag_ids[: len(predictions)]
        scores.update(
            (name, value) for name, value in tag_scores(predictions, targets, encoded.unseen[: len(predictions)]).items()
            if value is not None
        )
        image = confusion_image(predictions, targets, task.encoder.tags, task.cfg.task.confusion_tags)
        if image is not None:
            tf.summary.image("validation/confusion", tf.image.decode_png(image, channels=3)[None], step=epoch)
