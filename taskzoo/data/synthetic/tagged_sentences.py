"""A generated corpus of tagged English sentences whose tags need context in both directions.

Many English words are a noun or a verb ("book", "fish", "watch"), an adjective or a noun
("cold", "light"), or a determiner, a pronoun or a subordinating conjunction ("that"). Which one
they are depends on their neighbours, and often on the words that follow:

- "Book a table !" (a verb: a determiner follows) against "Water is cheap ." (a noun: a verb
  follows);
- "the students book a room ." (a verb) against "the school book is new ." (a noun in a
  compound): the two sentences agree up to the ambiguous word;
- "the cold room is quiet ." (an adjective) against "the cold is bad ." (a noun);
- "that room is quiet ." (a determiner) against "that is a room ." (a pronoun), and "we know
  that they ..." (a conjunction).

A unidirectional tagger reads only the words before the ambiguous one and can do no better than
guess there; a bidirectional tagger also reads the words after it. Other ambiguous words are
settled by the words before them ("they book a flight", "the book"), which both can read.

Some nouns, verbs and adjectives are made-up words built from invented stems and a suffix that
marks the part of speech ("blorness", "trangize", "wistous"). Rare ones are missing from the
training sentences, so a tagger that reads the characters of a word can still tag them.

The tags are Universal Dependencies part-of-speech tags. The corpus is deterministic: the same
seed and split name give the same sentences.
"""

import numpy as np

DETERMINERS = ("the", "a", "this", "every", "my", "our", "their", "some")
PRONOUNS = ("they", "we", "you", "I")
AUXILIARIES = ("is", "was")
ADJECTIVES = ("red", "new", "old", "big", "small", "quiet", "cheap", "happy", "late", "busy")
NOUNS = (
    "students", "teachers", "school", "city", "children", "river", "table", "flight", "room",
    "letter", "garden", "window", "doctor", "market", "station", "car", "friend", "music",
    "dinner", "office",
)
VERBS = ("see", "like", "want", "find", "need", "open", "love", "carry", "bring", "follow")
THINKING_VERBS = ("know", "think", "say", "hope")
# Words that are a noun or a verb.
NOUN_OR_VERB = (
    "book", "fish", "watch", "park", "ring", "train", "plan", "play", "visit", "walk", "call",
    "cook", "paint", "dance", "water", "drink", "film", "mark", "order", "check", "dress", "shop",
)
# Words that are an adjective or a noun.
ADJECTIVE_OR_NOUN = ("cold", "light", "fine", "safe", "square", "right", "past", "orange", "daily", "chemical")
ADPOSITIONS = ("in", "on", "near", "with", "after", "before")
ADVERBS = ("today", "often", "again", "now", "later")
CONJUNCTIONS = ("and", "but")

# Made-up words: an invented stem and a suffix that marks the part of speech.
SUFFIXES = {"NOUN": ("ness", "ment", "tion", "ity"), "ADJ": ("ous", "ful", "ive", "less"), "VERB": ("ize", "ify", "ate")}
_ONSETS = ("bl", "tr", "gr", "sn", "pl", "qu", "fr", "st", "cr", "dw", "m", "v", "z", "k", "w")
_VOWELS = ("a", "o", "e", "i", "u", "au", "ee")
_CODAS = ("r", "n", "ng", "nd", "sk", "st", "l", "rm", "x", "p")
# Stems in a fixed order (not drawn by seed), so every split uses the same made-up words.
STEMS = tuple(onset + vowel + coda for onset in _ONSETS for vowel in _VOWELS for coda in _CODAS)
# The share of noun, verb and adjective slots filled with a made-up word.
MADE_UP_SHARE = 0.3
# Stems are drawn by Zipf's law: a few common, many rare (some never seen in training).
STEM_PROBABILITIES = 1.0 / np.arange(1, len(STEMS) + 1)
STEM_PROBABILITIES /= STEM_PROBABILITIES.sum()


class _Sentence:
    """Words and their tags, built left to right."""

    def __init__(self, rng):
        self.rng = rng
        self.words, self.tags = [], []

    def add(self, word, tag):
        self.words.append(word)
        self.tags.append(tag)

    def pick(self, words, tag):
        self.add(words[self.rng.integers(len(words))], tag)

    def content(self, words, tag):
        """A noun, verb or adjective: a real one, or now and then a made-up one."""
        if self.rng.random() < MADE_UP_SHARE:
            stem = STEMS[self.rng.choice(len(STEMS), p=STEM_PROBABILITIES)]
            suffixes = SUFFIXES[tag]
            self.add(stem + suffixes[self.rng.integers(len(suffixes))], tag)
        else:
            self.pick(words, tag)

    def noun_phrase(self):
        self.pick(DETERMINERS, "DET")
        if self.rng.random() < 0.3:
            self.content(ADJECTIVES, "ADJ")
        self.content(NOUNS, "NOUN")

    def verb_phrase(self):
        """A verb (an ambiguous one half of the time), its object and maybe a place."""
        if self.rng.random() < 0.5:
            self.pick(NOUN_OR_VERB, "VERB")
        else:
            self.content(VERBS, "VERB")
        self.noun_phrase()
        if self.rng.random() < 0.3:
            self.pick(ADPOSITIONS, "ADP")
            self.noun_phrase()

    def predicate(self):
        self.pick(AUXILIARIES, "AUX")
        self.content(ADJECTIVES, "ADJ")


def _clause(sentence, form):
    """Adds one clause of the given form (0 to 9) to `sentence`."""
    pick, rng = sentence.pick, sentence.rng
    if form == 0:  # "they book a flight": the pronoun before settles it.
        pick(PRONOUNS, "PRON")
        sentence.verb_phrase()
    elif form == 1:  # "the students book a room": only the words after settle "book".
        sentence.noun_phrase()
        pick(NOUN_OR_VERB, "VERB")
        sentence.noun_phrase()
    elif form == 2:  # "the school book is new": the same start, a noun in a compound.
        pick(DETERMINERS, "DET")
        sentence.content(NOUNS, "NOUN")
        pick(NOUN_OR_VERB, "NOUN")
        sentence.predicate()
    elif form == 3:  # "book a table": an order, a verb first.
        pick(NOUN_OR_VERB, "VERB")
        sentence.noun_phrase()
    elif form == 4:  # "water is cheap": a noun first.
        pick(NOUN_OR_VERB, "NOUN")
        sentence.predicate()
    elif form == 5:  # "the cold room is quiet": an adjective before a noun.
        pick(DETERMINERS, "DET")
        pick(ADJECTIVE_OR_NOUN, "ADJ")
        sentence.content(NOUNS, "NOUN")
        sentence.predicate()
    elif form == 6:  # "the cold is bad": the same word as a noun.
        pick(DETERMINERS, "DET")
        pick(ADJECTIVE_OR_NOUN, "NOUN")
        sentence.predicate()
    elif form == 7:  # "that is a room": a pronoun.
        sentence.add("that", "PRON")
        pick(AUXILIARIES, "AUX")
        sentence.noun_phrase()
    elif form == 8:  # "that room is quiet": a determiner.
        sentence.add("that", "DET")
        sentence.content(NOUNS, "NOUN")
        sentence.predicate()
    else:  # "we know that they book a flight": a conjunction after a verb of thinking.
        pick(PRONOUNS, "PRON")
        pick(THINKING_VERBS, "VERB")
        sentence.add("that", "SCONJ")
        pick(PRONOUNS, "PRON")
        sentence.verb_phrase()
    if rng.random() < 0.2:
        pick(ADVERBS, "ADV")


def generate_tagged_sentences(count, seed, split):
    """Returns `count` sentences as (words, tags) pairs of lists, deterministic by seed and split.

    `split` ("train", "validation", "test") tells apart the sentences drawn with the same seed.
    """
    salt = {"train": 0, "validation": 1, "test": 2}[split]
    rng = np.random.default_rng([seed, 20 + salt])
    sentences = []
    for _ in range(count):
        sentence = _Sentence(rng)
        _clause(sentence, int(rng.integers(10)))
        if rng.random() < 0.2:
            # Two clauses joined by a conjunction; the second starts without a capital letter.
            sentence.pick(CONJUNCTIONS, "CCONJ")
            _clause(sentence, int(rng.integers(10)))
        sentence.add("!" if rng.random() < 0.2 else ".", "PUNCT")
        words = list(sentence.words)
        words[0] = words[0][:1].upper() + words[0][1:]
        sentences.append((words, list(sentence.tags)))
    return sentences
