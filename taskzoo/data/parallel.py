"""Parallel text for translation: readers, tokenisation, vocabularies and batches.

Readers return lists of (source, target) sentence pairs and report bad input as one line naming
the file and line:
- `read_tsv`: one pair per line, source and target separated by a tab, further columns ignored
  (the format of the common tab-separated sentence-pair downloads);
- `read_parallel_files`: Moses/fairseq style line-aligned files PREFIX.SRC and PREFIX.TGT, plain
  or gzip-compressed.
"""

import collections
import itertools
import pathlib
import re

import numpy as np
import tensorflow as tf

from taskzoo.data.files import read_text
from taskzoo.data.text import batches_by_length, length_boundaries
from taskzoo.errors import DataError

PADDING, UNKNOWN, START, END = "<pad>", "<unk>", "<start>", "<end>"
SPECIAL_TOKENS = (PADDING, UNKNOWN, START, END)
PADDING_ID, UNKNOWN_ID, START_ID, END_ID = range(4)


# Reading files.


def _open_lines(path):
    """The lines of a UTF-8 text file, plain or gzip-compressed, without line ends."""
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_tsv(path, reverse=False):
    """Reads `source<TAB>target[<TAB>...]` lines; `reverse` swaps the two languages.

    Returns (pairs, line numbers). A line without a tab raises DataError.
    """
    pairs, numbers = [], []
    for number, line in enumerate(_open_lines(path), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise DataError(
                f"{path}, line {number}: expected a source and a target sentence separated by a "
                f"tab, got {line[:60]!r}."
            )
        source, target = columns[0].strip(), columns[1].strip()
        pairs.append((target, source) if reverse else (source, target))
        numbers.append(number)
    if not pairs:
        raise DataError(f"{path}: the file holds no sentence pairs.")
    return pairs, numbers


def parallel_file(prefix, language):
    """The file PREFIX.LANGUAGE, or PREFIX.LANGUAGE.gz when only that exists."""
    plain = pathlib.Path(f"{prefix}.{language}").expanduser()
    compressed = pathlib.Path(f"{plain}.gz")
    if plain.is_file():
        return plain
    if compressed.is_file():
        return compressed
    raise DataError(f"{plain}: no such file (nor {compressed.name}).")


def read_parallel_files(prefix, source_language, target_language):
    """Reads line-aligned PREFIX.SOURCE_LANGUAGE and PREFIX.TARGET_LANGUAGE files.

    Returns (pairs, line numbers). Files of different line counts raise DataError: pairing them
    would misalign every sentence after the first missing line.
    """
    source_path = parallel_file(prefix, source_language)
    target_path = parallel_file(prefix, target_language)
    sources, targets = _open_lines(source_path), _open_lines(target_path)
    if len(sources) != len(targets):
        raise DataError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}: "
            "line-aligned files need the same number of lines."
        )
    if not sources:
        raise DataError(f"{source_path}: the file is empty.")
    pairs = [(source.strip(), target.strip()) for source, target in zip(sources, targets)]
    return pairs, list(range(1, len(pairs) + 1))


# Tokenisation.

_WORDS_AND_PUNCTUATION = re.compile(r"\w+|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}'])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


class Tokenizer:
    """Splits sentences into word or character tokens, and joins tokens back into text.

    Args:
        kind: "word" (words, with punctuation as separate tokens when `split_punctuation`) or
            "char" (every character, spaces included).
        lowercase: lower-case the text first.
        split_punctuation: for words, make every punctuation mark its own token ("don't" becomes
            "don ' t"); otherwise split at whitespace only.
    """

    def __init__(self, kind="word", lowercase=True, split_punctuation=True):
        if kind not in ("word", "char"):
            raise ValueError(f"Unknown tokenizer {kind!r}; expected 'word' or 'char'.")
        self.kind = kind
        self.lowercase = lowercase
        self.split_punctuation = split_punctuation

    def normalize(self, sentence):
        """The sentence as the model sees it before splitting (the reference text for BLEU)."""
        sentence = " ".join(sentence.split())
        return sentence.lower() if self.lowercase else sentence

    def tokenize(self, sentence):
        sentence = self.normalize(sentence)
        if self.kind == "char":
            return list(sentence)
        if self.split_punctuation:
            return _WORDS_AND_PUNCTUATION.findall(sentence)
        return sentence.split()

    def detokenize(self, tokens):
        """Joins tokens into text; with split punctuation, the usual spacing rules of English and
        the Western European languages are restored ("a , b ( c )" -> "a, b (c)", "x - y" -> "x-y")."""
        if self.kind == "char":
            return "".join(tokens)
        text = " ".join(tokens)
        if self.split_punctuation:
            text = _NO_SPACE_BEFORE.sub(r"\1", text)
            text = _NO_SPACE_AFTER.sub(r"\1", text)
            text = text.replace(" - ", "-").replace("' ", "'")
        return text

    def get_config(self):
        return {"kind": self.kind, "lowercase": self.lowercase, "split_punctuation": self.split_punctuation}


class Vocabulary:
    """Token <-> id, with padding 0, unknown 1, start 2 and end 3."""

    def __init__(self, tokens):
        self.tokens = list(tokens)
        if tuple(self.tokens[:4]) != SPECIAL_TOKENS:
            raise ValueError(f"A vocabulary starts with {SPECIAL_TOKENS}.")
        self.ids = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, sentences, max_size, min_frequency):
        """The at most `max_size` (specials included) most frequent tokens seen at least
        `min_frequency` times; ties are broken alphabetically so the result is deterministic."""
        counts = collections.Counter(token for tokens in sentences for token in tokens)
        kept = sorted(
            (token for token, count in counts.items() if count >= min_frequency and token not in SPECIAL_TOKENS),
            key=lambda token: (-counts[token], token),
        )
        return cls([*SPECIAL_TOKENS, *kept[: max(0, max_size - len(SPECIAL_TOKENS))]])

    def __len__(self):
        return len(self.tokens)

    def encode(self, tokens):
        return [self.ids.get(token, UNKNOWN_ID) for token in tokens]

    def decode(self, ids):
        """Tokens of `ids` up to the first end token; padding and start tokens are skipped."""
        tokens = []
        for index in ids:
            index = int(index)
            if index == END_ID:
                break
            if index not in (PADDING_ID, START_ID):
                tokens.append(self.tokens[index])
        return tokens


# Batches.


def encode_pairs(pairs, tokenizer, source_vocabulary, target_vocabulary):
    """Token ids of every pair: (source ids, target ids + end token)."""
    encoded = []
    for source, target in pairs:
        source_ids = source_vocabulary.encode(tokenizer.tokenize(source))
        target_ids = target_vocabulary.encode(tokenizer.tokenize(target)) + [END_ID]
        encoded.append((source_ids, target_ids))
    return encoded


def ragged_ids(sequences):
    """A (rows, None) int32 ragged tensor of lists of token ids. It is built from one flat numpy
    array, which takes a small fraction of `tf.ragged.constant`'s time on tens of thousands of
    lists."""
    lengths = np.fromiter((len(sequence) for sequence in sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(flat, lengths)


def batches(encoded, batch_size, training, seed, boundaries=None):
    """Batches of ({"source", "target_input"}, target_output, weights).

    `target_input` is the target after a start token (what teacher forcing feeds), `target_output`
    the target followed by the end token (what is predicted), and the weights are 1 on real
    tokens and 0 on padding, so padding never counts in the loss or the metrics. Pairs are grouped
    by the longer of their two sides (`text.batches_by_length`): training batches are shuffled and
    repeat without end; evaluation batches hold every pair once.
    """
    source_lengths = np.array([len(source) for source, _ in encoded], dtype="int64")
    target_lengths = np.array([len(target) for _, target in encoded], dtype="int64")
    sources = ragged_ids([source for source, _ in encoded])
    targets = ragged_ids([target for _, target in encoded])
    lengths = np.maximum(source_lengths, target_lengths)
    if boundaries is None:
        boundaries = length_boundaries(lengths)

    def example(index):
        source, target_output = sources[index], targets[index]
        target_input = tf.concat([[START_ID], target_output[:-1]], axis=0)
        # Padding gets weight 0 when the batch is padded.
        weights = tf.ones_like(target_output, tf.float32)
        return {"source": source, "target_input": target_input}, target_output, weights

    return batches_by_length(example, lengths, batch_size, boundaries, training, seed)


def padded(sequences):
    """(count, longest) int32 array of the sequences padded on the right with zeros."""
    longest = max(1, max(len(sequence) for sequence in sequences))
    array = np.zeros((len(sequences), longest), dtype="int32")
    for row, sequence in enumerate(sequences):
        array[row, : len(sequence)] = sequence
    return array
