"""A generated corpus of film reviews whose labels need word order.

Every review holds one opinion, written in one of three forms, surrounded by neutral sentences:

- a single clause, negated half of the time: "the plot was not boring" is positive;
- two clauses of opposite polarity joined by a contrast: after "but" (and in the main clause of
  "although") the second clause decides, before "even though" the first one does:
  "the acting was great , but the plot was dull" is negative;
- two clauses of opposite polarity joined by "and", one with a strong intensifier and one with a
  weak one; the strongly felt clause decides: "the plot was slightly dull and the acting was
  extremely funny" is positive.

Any clause may be negated. In the two-clause forms, swapping the clauses keeps the bag of words
and flips the label, so a bag-of-words model cannot do better than chance on them. About a third
of the reviews end with a long run of neutral sentences, so the deciding clause sits far from the
end and a recurrent model has to carry it across many steps.

The corpus is deterministic: the same seed and split name give the same reviews.
"""

import numpy as np

CLASS_NAMES = ("negative", "positive")

POSITIVE_WORDS = (
    "good", "great", "excellent", "wonderful", "brilliant", "delightful", "enjoyable", "charming",
    "gripping", "moving", "funny", "clever", "beautiful", "superb", "fresh", "thrilling",
)
NEGATIVE_WORDS = (
    "bad", "awful", "boring", "dull", "terrible", "tedious", "clumsy", "bland", "predictable",
    "weak", "messy", "forgettable", "lifeless", "silly", "poor", "confusing",
)
SUBJECTS = (
    "the plot", "the acting", "the script", "the soundtrack", "the ending", "the cast",
    "the dialogue", "the direction", "the pacing", "the story", "the camera work", "the humour",
    "the lead actor", "the villain", "the film", "the movie", "it", "the first half",
    "the second half", "the special effects",
)
VERBS = ("was", "is", "felt", "seemed")
NEGATORS = ("not", "never", "hardly")
STRONG_INTENSIFIERS = ("extremely", "incredibly", "truly", "remarkably", "utterly")
WEAK_INTENSIFIERS = ("slightly", "somewhat", "mildly", "a little", "fairly")

RELATIVES = ("brother", "sister", "mother", "father", "cousin", "friend", "neighbour", "partner")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PLACES = ("cinema", "festival", "library", "airport", "hotel", "campus", "theatre downtown")
CITIES = ("paris", "london", "tokyo", "lagos", "lima", "oslo", "madrid", "delhi", "toronto")
SOURCES = ("novel", "play", "true story", "comic book", "short story", "radio drama")
NEUTRAL_TEMPLATES = (
    "i watched it with my {relative} on a {day}",
    "the film runs about {number} minutes",
    "it came out in {year}",
    "we saw it at the {place}",
    "the tickets cost {small} dollars",
    "my {relative} picked it for us",
    "it is based on a {source}",
    "part of it is set in {city}",
    "the story takes place over {small} days",
    "the director also made a film about {city}",
    "there were about {number} people in the room",
    "i had read the {source} before",
    "it was shot in {city} in {year}",
    "my {relative} had seen it twice already",
    "we bought popcorn and sat near the back",
    "the credits list {number} names",
)


def _choose(rng, options):
    return options[rng.integers(len(options))]


def _neutral_sentence(rng):
    template = _choose(rng, NEUTRAL_TEMPLATES)
    return template.format(
        relative=_choose(rng, RELATIVES),
        day=_choose(rng, DAYS),
        number=int(rng.integers(20, 200)),
        year=int(rng.integers(1950, 2025)),
        place=_choose(rng, PLACES),
        small=int(rng.integers(2, 15)),
        source=_choose(rng, SOURCES),
        city=_choose(rng, CITIES),
    )


def _clause(rng, polarity, intensifiers=None, negation_probability=0.5):
    """A clause whose meaning has the given polarity (+1 or -1)."""
    negated = rng.random() < negation_probability
    word_polarity = -polarity if negated else polarity
    adjective = _choose(rng, POSITIVE_WORDS if word_polarity > 0 else NEGATIVE_WORDS)
    words = [_choose(rng, SUBJECTS), _choose(rng, VERBS)]
    if negated:
        words.append(_choose(rng, NEGATORS))
    if intensifiers is not None:
        words.append(_choose(rng, intensifiers))
    words.append(adjective)
    return " ".join(words)


def _opinion(rng, polarity):
    """One opinion of the given polarity in one of the three forms."""
    form = rng.random()
    if form < 0.25:
        return _clause(rng, polarity)
    if form < 0.65:
        deciding, other = _clause(rng, polarity), _clause(rng, -polarity)
        connective = rng.integers(3)
        if connective == 0:
            return f"{other} , but {deciding}"
        if connective == 1:
            return f"although {other} , {deciding}"
        return f"{deciding} , even though {other}"
    # The intensity form; negation is left out so that "not extremely good" never arises.
    strong = _clause(rng, polarity, STRONG_INTENSIFIERS, negation_probability=0.0)
    weak = _clause(rng, -polarity, WEAK_INTENSIFIERS, negation_probability=0.0)
    first, second = (strong, weak) if rng.random() < 0.5 else (weak, strong)
    return f"{first} and {second}"


def generate_reviews(num_examples, seed, split):
    """Returns (texts, labels): `num_examples` reviews and their labels (0 negative, 1 positive).

    `split` names the stream ("train", "validation", "test"), so splits never share a generator.
    """
    split_index = {"train": 0, "validation": 1, "test": 2}[split]
    rng = np.random.default_rng([seed, split_index])
    texts, labels = [], []
    for _ in range(num_examples):
        label = int(rng.integers(2))
        sentences = [_neutral_sentence(rng) for _ in range(rng.integers(0, 3))]
        sentences.append(_opinion(rng, +1 if label == 1 else -1))
        long_tail = rng.random() < 0.35
        num_after = rng.integers(3, 9) if long_tail else rng.integers(0, 2)
        sentences.extend(_neutral_sentence(rng) for _ in range(num_after))
        texts.append(" . ".join(sentences) + " .")
        labels.append(label)
    return texts, np.asarray(labels, dtype="int32")
