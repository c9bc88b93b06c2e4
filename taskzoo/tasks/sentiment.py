"""Sentiment classification, a many-to-one task: a sequence of words in, one class out.

Data: a generated review corpus by default (labels that need word order, see
`taskzoo/data/synthetic/reviews.py`), a TFDS dataset such as `imdb_reviews` or `glue/sst2`, or
local files (a CSV/TSV file, a folder per class, or a text file per class).

Model: word embedding (padding masked) -> the shared recurrent stack -> the final output, or a
masked mean or max over time -> dropout -> a dense layer giving one logit per class.

The saved model takes raw strings: it starts with the adapted word vectoriser.
"""

import json
import logging

import keras
import numpy as np
import tensorflow as tf

from taskzoo.blocks.pooling import MaskedPooling
from taskzoo.blocks.recurrent import recurrent_stack_from_config
from taskzoo.data import files, text
from taskzoo.data.splits import complete_splits, fractions
from taskzoo.data.synthetic.reviews import CLASS_NAMES, generate_reviews
from taskzoo.data.tfds_source import load_tfds_split, text_classification_keys
from taskzoo.errors import ConfigError, DataError
from taskzoo.tasks.base import Task, load_run_model, text_options, texts_to_predict, warn_if_mostly_unknown

logger = logging.getLogger(__name__)


class SentimentTask(Task):
    monitor = "val_accuracy"
    monitor_mode = "max"
    tfds_example = "imdb_reviews"

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        data_config = cfg.task.data
        if str(data_config.source) == "files" and not data_config.train and not data_config.class_files:
            raise ConfigError(
                "task.data.source=files needs task.data.train=PATH or task.data.class_files={...}."
            )
        if cfg.model.num_layers == 0 and str(cfg.task.pooling) == "last":
            raise ConfigError(
                "model.num_layers=0 (no recurrence) needs task.pooling=mean or max: "
                "there is no final state to read."
            )

    # Data: load the three splits as texts and labels, build the vocabulary, batch by length.

    def datasets(self):
        seed = self.cfg.trainer.seed
        train, validation, test = self.read_splits()

        self.vectorizer = text.build_vectorizer(train.texts, self.cfg.task.vocabulary_size)
        self.vocabulary_size = self.vectorizer.vocabulary_size()
        self.sizes = {}
        batches = []
        boundaries = None
        for name, split in (("train", train), ("validation", validation), ("test", test)):
            token_ids = text.tokenize(self.vectorizer, split.texts, self.cfg.task.max_length)
            token_ids, labels, dropped = text.drop_empty(token_ids, split.labels)
            if dropped:
                logger.warning("Dropped %d %s examples that have no words.", dropped, name)
            if len(labels) == 0:
                raise DataError(f"The {name} split has no example with words in it.")
            if boundaries is None:
                boundaries = text.length_boundaries(token_ids.row_lengths().numpy())
            self.sizes[name] = len(labels)
            batches.append(
                text.bucketed_batches(
                    token_ids,
                    labels,
                    self.cfg.trainer.batch_size,
                    boundaries,
                    training=name == "train",
                    seed=seed,
                )
            )
        self.steps_per_epoch = text.steps_per_epoch(self.sizes["train"], self.cfg.trainer.batch_size)
        return tuple(batches)

    def synthetic_splits(self, data_config):
        seed = self.cfg.trainer.seed
        self.class_names = list(CLASS_NAMES)
        return tuple(
            text.LabelledTexts(*generate_reviews(size, seed, split))
            for split, size in (
                ("train", data_config.num_train),
                ("validation", data_config.num_validation),
                ("test", data_config.num_test),
            )
        )

    def tfds_splits(self, data_config):
        seed = self.cfg.trainer.seed

        def load(split):
            dataset, info = load_tfds_split(data_config.name, split, data_config.data_dir)
            text_key, label_key, class_names = text_classification_keys(info, data_config.name)
            texts, labels = [], []
            for example in dataset.as_numpy_iterator():
                texts.append(example[text_key].decode("utf-8", errors="replace"))
                labels.append(int(example[label_key]))
            labelled = text.LabelledTexts(texts, np.asarray(labels, dtype="int32"))
            return labelled, info, class_names

        train, info, self.class_names = load(data_config.train_split)
        test, _, _ = load(data_config.test_split)
        if len(test) and (test.labels < 0).all():
            # GLUE keeps its test labels hidden (-1): the validation split becomes the test split.
            logger.warning(
                "The %r split of %s is unlabelled; testing on %r instead.",
                data_config.test_split, data_config.name, data_config.validation_split,
            )
            test, _, _ = load(data_config.validation_split)
            validation = None
        elif data_config.validation_split and data_config.validation_split in info.splits:
            validation, _, _ = load(data_config.validation_split)
        else:
            validation = None
        splits = {"train": train, "validation": validation, "test": test}
        return complete_splits(splits, fractions(data_config), seed, take=text.take_texts)

    def files_splits(self, data_config):
        seed = self.cfg.trainer.seed
        def read(path):
            return files.read_labelled_texts(path, data_config.text_column, data_config.label_column)

        if data_config.class_files:
            texts, labels = files.read_class_files(data_config.class_files)
            where = "task.data.class_files"
            splits = {"train": (texts, labels)}
        else:
            where = data_config.train
            splits = {"train": read(data_config.train)}
            for name in ("validation", "test"):
                if data_config[name]:
                    splits[name] = read(data_config[name])

        self.class_names = text.class_names_of(splits["train"][1])
        if len(self.class_names) < 2:
            raise DataError(f"{where}: the training data has only one class ({self.class_names[0]!r}).")
        encoded = {
            name: text.LabelledTexts(
                texts, text.encode_labels(labels, self.class_names, data_config.get(name) or where)
            )
            for name, (texts, labels) in splits.items()
        }
        return complete_splits(encoded, fractions(data_config), seed, take=text.take_texts)

    # Model: embedding -> recurrent stack -> pooling -> class logits.

    def build_model(self):
        model_config = self.cfg.model
        pooling = str(self.cfg.task.pooling)
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        # (batch, time, embedding_dim), with the mask of padded steps.
        embedded = keras.layers.Embedding(
            self.vocabulary_size, model_config.embedding_dim, mask_zero=True, name="embedding"
        )(token_ids)
        encoder = recurrent_stack_from_config(
            model_config, return_sequences=pooling != "last", name="recurrent_stack"
        )
        encoded = encoder(embedded)
        if pooling != "last":
            # (batch, time, features) -> (batch, features), over the real steps only.
            encoded = MaskedPooling(pooling, name=f"{pooling}_pooling")(encoded)
        encoded = keras.layers.Dropout(model_config.dropout, name="dropout")(encoded)
        logits = keras.layers.Dense(len(self.class_names), name="classifier")(encoded)
        return keras.Model(token_ids, logits, name="sentiment")

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    # Inference: a model that takes raw strings and returns class probabilities.

    def export_model(self, model):
        vectorizer = keras.layers.TextVectorization(
            **text.WORDS,
            output_sequence_length=self.cfg.task.max_length,
            vocabulary=self.vectorizer.get_vocabulary(),
            name="vectorizer",
        )
        texts = keras.Input(shape=(1,), dtype="string", name="text")
        probabilities = keras.layers.Softmax(name="probabilities")(model(vectorizer(texts)))
        return keras.Model(texts, probabilities, name="sentiment_classifier")

    def save_artifacts(self, run_dir):
        (run_dir / "classes.json").write_text(json.dumps(self.class_names, ensure_ascii=False))

    predict_options = text_options("the text to classify", "texts", "one answer per line")

    @classmethod
    def predict(cls, run_dir, cfg, options):
        texts, from_file = texts_to_predict(options)
        model = load_run_model(run_dir)
        class_names = json.loads((run_dir / "classes.json").read_text())
        inputs = tf.constant([[text] for text in texts], dtype=tf.string)
        # The saved model's own vectorizer: ids 0 (padding) and 1 (out of vocabulary).
        token_ids = model.get_layer("vectorizer")(inputs).numpy()
        for number, ids in enumerate(token_ids, start=1):
            words = ids[ids > 0].tolist()
            where = f"line {number}" if from_file else "text"
            warn_if_mostly_unknown(words, known=lambda word: word != 1, where=where)
        probabilities = model.predict(inputs, batch_size=256, verbose=0)
        if from_file:
            for row in probabilities:
                best = int(np.argmax(row))
                print(f"{class_names[best]}\t{row[best]:.3f}")
            return
        best = int(np.argmax(probabilities[0]))
        print(f"{class_names[best]} ({probabilities[0][best]:.3f})")
        for name, probability in zip(class_names, probabilities[0]):
            print(f"  {name}: {probability:.4f}")

    def description(self):
        return {
            "examples": self.sizes,
            "vocabulary_size": self.vocabulary_size,
            "classes": self.class_names,
        }
