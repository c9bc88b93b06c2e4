"""Tagged sentences: CoNLL-U and column-file readers, vocabularies and length-bucketed batches.

A sentence is a list of words and a list of tags of the same length. Two file formats are read,
plain or gzip-compressed:

- CoNLL-U (Universal Dependencies): ten tab-separated fields per word, `#` comment lines, a blank
  line after each sentence. A multiword token (a line whose ID is a range, `1-2`, such as French
  "du") stands for the syntactic words on the lines that follow it ("de", "le"); those words carry
  the tags, so they are what the tagger reads and tags. Empty nodes (IDs such as `8.1`) are not
  words of the text and are left out.
- Column files (CoNLL-2000, CoNLL-2003): one word per line, its columns separated by tabs or
  spaces, a blank line between sentences; `-DOCSTART-` lines are skipped.
"""

import collections
import dataclasses

import numpy as np

from taskzoo.data.files import existing_path, read_text
from taskzoo.errors import ConfigError, DataError

# Index 0 pads, index 1 stands for a word or character outside the vocabulary.
PADDING, UNKNOWN = 0, 1
CONLLU_TAG_FIELDS = {"upos": 3, "xpos": 4}
FORMATS = ("auto", "conllu", "columns")


@dataclasses.dataclass
class Sentence:
    words: list
    tags: list


# Reading files.


def is_conllu(path, text):
    """Whether a file is CoNLL-U: by its name (`.conllu`, `.conllu.gz`), else by its first word
    line (ten tab-separated fields, the first a number)."""
    if ".conllu" in path.name:
        return True
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            fields = line.rstrip("\r").split("\t")
            return len(fields) == 10 and fields[0].split("-")[0].split(".")[0].isdigit()
    return False


def read_tagged_file(path, file_format="auto", word_column=1, tag_column=None):
    """Reads the sentences of a CoNLL-U or column file (see the module docstring).

    Args:
        file_format: "conllu", "columns", or "auto" (decided by `is_conllu`).
        word_column: the column of the words in a column file, counted from 1.
        tag_column: for CoNLL-U, "upos" (the default) or "xpos"; for a column file, the column
            of the tags counted from 1 (the default: the last one).
    """
    path = existing_path(path)
    text = read_text(path).removeprefix("\ufeff")
    if not text.strip():
        raise DataError(f"{path}: the file is empty.")
    if file_format == "conllu" or (file_format == "auto" and is_conllu(path, text)):
        sentences = read_conllu(path, text, tag_column)
    else:
        sentences = read_columns(path, text, word_column, tag_column)
    if not sentences:
        raise DataError(f"{path}: the file holds no sentence.")
    return sentences


def conllu_tag_field(tag_column):
    """The 0-based field of a CoNLL-U file that `task.tag_column` names."""
    name = "upos" if tag_column is None else str(tag_column).lower()
    if name not in CONLLU_TAG_FIELDS:
        raise ConfigError(
            f"task.tag_column={tag_column} does not name a tag of a CoNLL-U file (expected upos or xpos)."
        )
    return CONLLU_TAG_FIELDS[name]


def read_sentences(text, parse_line):
    """The sentences of a file whose sentences are runs of lines separated by blank lines.

    `parse_line(number, line, words_so_far)` gives a line's (word, tag), or None for a line that
    holds no word of the sentence (a comment, a multiword token's range).
    """
    sentences, words, tags = [], [], []
    # A blank line after the last one ends the last sentence.
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if words:
                sentences.append(Sentence(words, tags))
                words, tags = [], []
            continue
        pair = parse_line(number, line, len(words))
        if pair is not None:
            words.append(pair[0])
            tags.append(pair[1])
    return sentences


def read_conllu(path, text, tag_column=None):
    """The sentences of a CoNLL-U file: its syntactic words and their UPOS or XPOS tags."""
    tag_field = conllu_tag_field(tag_column)
    tag_name = "UPOS" if tag_field == 3 else "XPOS"

    def parse_line(number, line, count):
        if line.startswith("#"):
            return None
        where = f"{path}, line {number}"
        fields = line.split("\t")
        if len(fields) != 10:
            raise DataError(f"{where}: expected 10 tab-separated fields (CoNLL-U), found {len(fields)}.")
        word_id = fields[0]
        if not all(part.isdigit() for part in word_id.replace("-", ".").split(".")):
            raise DataError(f"{where}: {word_id!r} is not a word ID (expected 1, 2-3 or 4.1).")
        if not word_id.isdigit():
            # A multiword token's range or an empty node: no tag of its own.
            return None
        if int(word_id) != count + 1:
            raise DataError(f"{where}: word ID {word_id} follows word {count} (a blank line must end each sentence).")
        form, tag = fields[1], fields[tag_field]
        if not form:
            raise DataError(f"{where}: word {word_id} has an empty form.")
        if tag in ("", "_"):
            hint = " (this treebank may have no XPOS tags; try task.tag_column=upos)" if tag_field == 4 else ""
            raise DataError(f"{where}: word {form!r} has no {tag_name} tag{hint}.")
        return form, tag

    return read_sentences(text, parse_line)


def column_index(value, name):
    """A 1-based column number from the configuration, as a 0-based index."""
    text = str(value)
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            f"task.{name}={value} is not a column number for a column file (expected 1 for the first column, 2, ...)."
        )
    return int(text) - 1


def read_columns(path, text, word_column=1, tag_column=None):
    """The sentences of a column file: the word and the tag columns of every line."""
    word_index = column_index(word_column, "word_column")
    tag_index = -1 if tag_column is None else column_index(tag_column, "tag_column")
    needed = max(word_index, tag_index, 1) + 1

    def parse_line(number, line, count):
        fields = [field.strip() for field in (line.split("\t") if "\t" in line else line.split())]
        if fields[0] == "-DOCSTART-":
            return None
        if len(fields) < needed:
            raise DataError(
                f"{path}, line {number}: expected at least {needed} columns (a word and its tag), found {len(fields)}."
            )
        word, tag = fields[word_index], fields[tag_index]
        if not word or not tag:
            raise DataError(f"{path}, line {number}: an empty word or tag.")
        return word, tag

    return read_sentences(text, parse_line)


# Vocabularies and encoding.


def build_vocabulary(items, min_frequency, max_size=None):
    """The items seen at least `min_frequency` times, most frequent first, after the padding and
    unknown entries: ["", "<unk>", ...]."""
    counts = collections.Counter(items)
    kept = sorted((item for item, count in counts.items() if count >= min_frequency), key=lambda item: (-counts[item], item))
    if max_size:
        kept = kept[: max_size - 2]
    return ["", "<unk>", *kept]


def word_key(word, lowercase):
    return word.lower() if lowercase else word


def word_characters(word, max_word_length):
    """The characters a word is read by: all of them, or, for a longer word, its beginning and
    its end (where prefixes and suffixes are)."""
    if len(word) <= max_word_length:
        return word
    head = max_word_length // 2
    return word[:head] + word[len(word) - (max_word_length - head):]


class SentenceEncoder:
    """Turns words into word ids and character ids, and tags into tag ids.

    Built from the training sentences; saved beside the model (`to_json`) so prediction encodes
    text exactly as training did.
    """

    def __init__(self, words, characters, tags, lowercase=True, max_word_length=20):
        self.words, self.characters, self.tags = list(words), list(characters), list(tags)
        self.lowercase, self.max_word_length = lowercase, max_word_length
        self.word_ids = {word: index for index, word in enumerate(self.words)}
        self.character_ids = {character: index for index, character in enumerate(self.characters)}
        self.tag_ids = {tag: index for index, tag in enumerate(self.tags)}

    @classmethod
    def from_sentences(cls, sentences, tags, min_frequency, vocabulary_size, lowercase, max_word_length):
        words = build_vocabulary(
            (word_key(word, lowercase) for sentence in sentences for word in sentence.words),
            min_frequency, vocabulary_size,
        )
        characters = build_vocabulary(
            (character for sentence in sentences for word in sentence.words for character in word), min_frequency
        )
        return cls(words, characters, tags, lowercase, max_word_length)

    def encode_words(self, words):
        return np.asarray([self.word_ids.get(word_key(word, self.lowercase), UNKNOWN) for word in words], np.int32)

    def encode_characters(self, words):
        """(words, max_word_length) character ids, padded with 0."""
        ids = np.zeros((len(words), self.max_word_length), np.int32)
        for row, word in enumerate(words):
            characters = word_characters(word, self.max_word_length)
            ids[row, : len(characters)] = [self.character_ids.get(character, UNKNOWN) for character in characters]
        return ids

    def encode_tags(self, tags):
        return np.asarray([self.tag_ids[tag] for tag in tags], np.int32)

    def to_json(self):
        return {
            "words": self.words, "characters": self.characters, "tags": self.tags,
            "lowercase": self.lowercase, "max_word_length": self.max_word_length,
        }

    @classmethod
    def from_json(cls, data):
        return cls(data["words"], data["characters"], data["tags"], data["lowercase"], data["max_word_length"])


@dataclasses.dataclass
class EncodedSplit:
    """One split as arrays, one entry per sentence."""

    word_ids: list
    character_ids: list
    tag_ids: list
    # True for the words never seen in the training sentences.
    unseen: list

    def __len__(self):
        return len(self.word_ids)


def encode_split(encoder, sentences, training_words):
    return EncodedSplit(
        [encoder.encode_words(sentence.words) for sentence in sentences],
        [encoder.encode_characters(sentence.words) for sentence in sentences],
        [encoder.encode_tags(sentence.tags) for sentence in sentences],
        [np.asarray([word_key(word, encoder.lowercase) not in training_words for word in sentence.words])
         for sentence in sentences],
    )


def batches(split, batch_size, boundaries, characters, training, seed):
    """Batches of ({"words", "characters"}, tag ids, weights) grouped by sentence length, padded
    with 0 (`text.batches_by_length`); the weights are 1 on real words and 0 on padding. The
    split's words, spellings and tags are held as tensors of every sentence end to end, and each
    sentence is cut from them by index."""
    import tensorflow as tf

    from taskzoo.data.text import batches_by_length

    lengths = np.array([len(tags) for tags in split.tag_ids], np.int64)
    row_splits = tf.constant(np.concatenate([[0], np.cumsum(lengths)]))
    words = tf.constant(np.concatenate(split.word_ids).astype(np.int32))
    tag_ids = tf.constant(np.concatenate(split.tag_ids).astype(np.int32))
    if characters:
        spellings = tf.constant(np.concatenate(split.character_ids).astype(np.int32))

    def example(index):
        start, end = row_splits[index], row_splits[index + 1]
        inputs = {"words": words[start:end]}
        if characters:
            inputs["characters"] = spellings[start:end]
        return inputs, tag_ids[start:end], tf.ones([end - start], tf.float32)

    return batches_by_length(example, lengths, batch_size, boundaries, training, seed)
