"""Text pipelines: labels, deterministic splits, word vocabularies and length-bucketed batches."""

import dataclasses

import numpy as np
import tensorflow as tf

from taskzoo.errors import DataError

@dataclasses.dataclass
class LabelledTexts:
    """Texts and their integer class labels."""

    texts: list
    labels: np.ndarray

    def __len__(self):
        return len(self.texts)


def class_names_of(labels):
    """Sorted distinct label names; numerically sorted when every label is an integer."""
    names = sorted(set(labels))
    if all(name.lstrip("-").isdigit() for name in names):
        names = sorted(names, key=int)
    return names


def encode_labels(labels, class_names, where):
    """Maps label names to indices of `class_names`; an unknown label raises DataError."""
    index = {name: position for position, name in enumerate(class_names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(
            f"{where}: label {unknown[0]!r} does not occur in the training data "
            f"(training labels: {', '.join(class_names)})."
        )
    return np.asarray([index[label] for label in labels], dtype="int32")


def take_texts(data, indices):
    """The labelled texts at `indices` (for `splits.complete_splits`)."""
    return LabelledTexts([data.texts[i] for i in indices], data.labels[indices])


# How texts become words, for training and for the saved model alike (one place, so the two
# never disagree).
WORDS = {"standardize": "lower_and_strip_punctuation", "split": "whitespace", "output_mode": "int"}


def build_vectorizer(texts, vocabulary_size):
    """A word-level TextVectorization (lower-cased, punctuation stripped) adapted to `texts`.

    Index 0 is padding and index 1 the unknown word.
    """
    import keras

    vectorizer = keras.layers.TextVectorization(max_tokens=vocabulary_size, ragged=True, **WORDS)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    return vectorizer


def tokenize(vectorizer, texts, max_length):
    """Token ids of each text, truncated to its first `max_length` words (a RaggedTensor)."""
    pieces = [
        vectorizer(tf.constant(texts[start : start + 4096]))[:, :max_length]
        for start in range(0, len(texts), 4096)
    ]
    return tf.concat(pieces, axis=0)


def drop_empty(token_ids, labels):
    """Drops the examples with no tokens; returns (token_ids, labels, number dropped)."""
    lengths = token_ids.row_lengths().numpy()
    keep = lengths > 0
    if keep.all():
        return token_ids, labels, 0
    kept_ids = tf.ragged.boolean_mask(token_ids, tf.constant(keep))
    return kept_ids, labels[keep], int((~keep).sum())


def length_boundaries(lengths, num_buckets=8):
    """Bucket boundaries at quantiles of the sequence lengths (strictly increasing)."""
    quantiles = np.quantile(np.asarray(lengths), np.linspace(0, 1, num_buckets + 1)[1:-1])
    return sorted({int(q) + 1 for q in quantiles})


def in_memory_options():
    """Options for small in-memory pipelines: autotuning off (it delays the end of `fit`)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return options


def batches_by_length(example, lengths, batch_size, boundaries, training, seed):
    """Batches of the examples `example(index)` returns for every index of `lengths`, padded with
    0 to the batch's longest and grouped by length: grouping wastes far fewer padded steps than
    padding to one global maximum, and a mask or weights hide the padding that remains.

    For training the examples are shuffled and repeated without end (an epoch is then
    `steps_per_epoch(len(lengths), batch_size)` steps); for evaluation they are read once, in
    order, and the number of batches is known in advance, so Keras shows a progress total and does
    not warn at the end. The examples are picked by index, so a run that reads part of a split
    (`trainer.steps_per_epoch`, `trainer.evaluation_steps`) reads no more than it needs.

    Args:
        example: a TensorFlow function from an index to one example (a structure of tensors).
        lengths: the length of every example, by which it is grouped (a numpy array).
        boundaries: the bucket boundaries (`length_boundaries`).
    """
    lengths = np.asarray(lengths, np.int64)
    length_of = tf.constant(lengths, tf.int32)
    dataset = tf.data.Dataset.range(len(lengths))
    if training:
        dataset = dataset.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.map(lambda index: (length_of[index], example(index)))
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda length, _: length,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    dataset = dataset.map(lambda _, batch: batch)
    if not training:
        bucket_sizes = np.bincount(np.searchsorted(boundaries, lengths, side="right"), minlength=len(boundaries) + 1)
        num_batches = int(sum(-(-size // batch_size) for size in bucket_sizes))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    return dataset.prefetch(2).with_options(in_memory_options())


def bucketed_batches(token_ids, labels, batch_size, boundaries, training, seed):
    """Batches of (token ids padded to the batch's longest, labels), grouped by similar length
    (`batches_by_length`)."""
    flat_ids = tf.cast(token_ids.flat_values, tf.int32)
    row_splits = token_ids.row_splits
    labels = tf.constant(labels)

    def example(index):
        return flat_ids[row_splits[index] : row_splits[index + 1]], labels[index]

    return batches_by_length(example, token_ids.row_lengths().numpy(), batch_size, boundaries, training, seed)


def steps_per_epoch(num_examples, batch_size):
    """The number of training steps that make one pass over `num_examples` examples."""
    return -(-num_examples // batch_size)
