"""Character corpora and the two ways of batching them for a character language model."""

import glob
import json
import pathlib
import sysconfig

import numpy as np
import tensorflow as tf

from taskzoo.data.files import read_text
from taskzoo.data.text import in_memory_options
from taskzoo.errors import DataError

# Standard-library folders left out of the default corpus: tests and vendored or generated code.
STDLIB_SKIPPED = {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "encodings", "pydoc_data"}


def stdlib_corpus(max_characters):
    """The running interpreter's standard-library source, files in sorted order, up to
    `max_characters` characters. It is on every machine that runs taskzoo."""
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(
        path for path in root.rglob("*.py")
        if not STDLIB_SKIPPED & set(path.relative_to(root).parts[:-1])
    )
    pieces, total = [], 0
    for path in paths:
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        pieces.append(source)
        total += len(source) + 1
        if total >= max_characters:
            break
    if not pieces:
        raise DataError(f"{root}: no standard-library source files found for the default corpus.")
    return "\n".join(pieces)[:max_characters]


def read_corpus(spec):
    """Reads a UTF-8 corpus from a file, every file below a directory (sorted), or a glob."""
    path = pathlib.Path(spec).expanduser()
    if path.is_file():
        paths = [path]
    elif path.is_dir():
        paths = sorted(child for child in path.rglob("*") if child.is_file())
    else:
        paths = [pathlib.Path(match) for match in sorted(glob.glob(str(path), recursive=True))]
        paths = [match for match in paths if match.is_file()]
        if not paths:
            raise DataError(f"{spec}: no such file, directory or matching files.")
    if not paths:
        raise DataError(f"{spec}: the directory holds no files.")
    text = "\n".join(read_text(match) for match in paths)
    if not text.strip():
        raise DataError(f"{spec}: the corpus is empty.")
    return text


def split_by_character(text, validation_fraction, test_fraction):
    """Splits a text into contiguous (train, validation, test) parts: by default 90/5/5."""
    validation_start = int(len(text) * (1 - validation_fraction - test_fraction))
    test_start = int(len(text) * (1 - test_fraction))
    return text[:validation_start], text[validation_start:test_start], text[test_start:]


def complete_text_splits(train, validation, test, validation_fraction, test_fraction):
    """(train, validation, test) texts, where a missing (None) validation or test text is a
    contiguous part cut off the end of the training text: held-out text of a language model must be
    a stretch the model never read, not lines sampled from the middle of its training text."""
    if validation is None and test is None:
        return split_by_character(train, validation_fraction, test_fraction)
    if validation is None or test is None:
        cut = int(len(train) * (1 - (validation_fraction if validation is None else test_fraction)))
        train, held_out = train[:cut], train[cut:]
        validation = held_out if validation is None else validation
        test = held_out if test is None else test
    return train, validation, test


class CharacterVocabulary:
    """The characters of the training text; index 0 stands for any character unseen in training."""

    UNKNOWN = "\ufffd"

    def __init__(self, characters):
        self.characters = [self.UNKNOWN] + [c for c in characters if c != self.UNKNOWN]
        self.index = {character: position for position, character in enumerate(self.characters)}

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.characters)

    def encode(self, text):
        return np.fromiter((self.index.get(c, 0) for c in text), dtype="int32", count=len(text))

    def decode(self, ids):
        return "".join(self.characters[int(i)] for i in ids)

    def save(self, path):
        pathlib.Path(path).write_text(json.dumps({"characters": self.characters[1:]}, ensure_ascii=False))

    @classmethod
    def load(cls, path):
        return cls(json.loads(pathlib.Path(path).read_text())["characters"])


def stream_batches(ids, batch_size, seq_length, split):
    """Batches for truncated backpropagation through time.

    The text becomes `batch_size` contiguous streams, one per batch row; batch i holds the i-th
    piece of `seq_length` characters of every stream, so the state a stateful model ends one batch
    with is the right starting state for the next. Targets are the inputs shifted by one character.
    """
    stream_length = (len(ids) - 1) // batch_size
    num_batches = stream_length // seq_length
    if num_batches == 0:
        raise DataError(
            f"The {split} text has {len(ids)} characters: too short for {batch_size} streams of at "
            f"least {seq_length + 1} characters (lower trainer.batch_size or task.seq_length)."
        )
    used = num_batches * seq_length
    starts = np.arange(batch_size) * stream_length
    # (batch, used) inputs and targets, then (num_batches, batch, seq_length).
    inputs = np.stack([ids[start : start + used] for start in starts])
    targets = np.stack([ids[start + 1 : start + used + 1] for start in starts])

    def pieces(array):
        return array.reshape(batch_size, num_batches, seq_length).transpose(1, 0, 2)

    dataset = tf.data.Dataset.from_tensor_slices((pieces(inputs), pieces(targets)))
    return dataset.with_options(in_memory_options())


def window_batches(ids, batch_size, seq_length, num_batches, seed):
    """Independent windows of `seq_length` characters at random offsets, shuffled every epoch;
    `num_batches` batches an epoch, so an epoch reads as many characters as the streams do."""
    num_windows = len(ids) - seq_length - 1
    if num_windows < batch_size:
        raise DataError(f"The training text ({len(ids)} characters) is too short for windows of {seq_length}.")
    text = tf.constant(ids)

    def window(random_number):
        offset = random_number % num_windows
        return text[offset : offset + seq_length], text[offset + 1 : offset + seq_length + 1]

    dataset = (
        tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        .take(num_batches * batch_size)
        .map(window)
        .batch(batch_size, drop_remainder=True)
        .prefetch(2)
    )
    return dataset.with_options(in_memory_options())
