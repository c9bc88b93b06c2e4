"""Generated English -> French sentence pairs: numbers and dates written out in words.

The words come from real linguistic rules, not from a table written here: `num2words` spells the
numbers in each language and Babel's CLDR locale data gives the month and weekday names. The
pairs exercise what makes translation harder than labelling:

- length change: "ninety-seven" (3 tokens) is "quatre-vingt-dix-sept" (7 tokens), and a year
  "twenty twenty-one" is "deux mille vingt et un";
- reordering: English dates put the month before the day ("wednesday , march third ,
  nineteen ninety-nine"), French after it ("mercredi trois mars mille neuf cent
  quatre-vingt-dix-neuf"), and English ordinals become French cardinals except "premier";
- long-range agreement: French numbers are built on base twenty between 60 and 99 ("soixante
  et onze" is 71), so a word depends on two source words at once.

Each sentence lists one to four items separated by semicolons (English numbers use "and" and
commas themselves, so neither could separate items unambiguously): cardinal numbers below a billion
and full dates between 1900 and 2099. Sentences of up to about sixty tokens are where a
decoder that only sees the encoder's final state runs out of memory and attention pays off.
The splits are disjoint: no source sentence of the test split occurs in training.
"""

import datetime
import functools

import numpy as np

SOURCE_LANGUAGE = "en"
TARGET_LANGUAGE = "fr"

_FIRST_DAY = datetime.date(1900, 1, 1)
_NUMBER_OF_DAYS = (datetime.date(2099, 12, 31) - _FIRST_DAY).days + 1


@functools.lru_cache(maxsize=65536)
def _spell(number, language, to="cardinal"):
    from num2words import num2words

    return num2words(number, lang=language, to=to)


def number_pair(number):
    """The cardinal `number` in English and in French words."""
    return _spell(number, "en"), _spell(number, "fr")


@functools.lru_cache(maxsize=None)
def _calendar_names(language):
    """(weekday names Monday first, month names January first) from Babel's CLDR locale data."""
    from babel import dates

    weekdays = dates.get_day_names("wide", locale=language)
    months = dates.get_month_names("wide", locale=language)
    return [weekdays[day] for day in range(7)], [months[month] for month in range(1, 13)]


def date_pair(date):
    """A date in English ("wednesday, march third, two thousand and one") and in French
    ("mercredi trois mars deux mille un")."""
    weekdays, months = _calendar_names("en")
    english = (
        f"{weekdays[date.weekday()]}, {months[date.month - 1]} "
        f"{_spell(date.day, 'en', to='ordinal')}, {_spell(date.year, 'en', to='year')}"
    )
    weekdays, months = _calendar_names("fr")
    french_day = _spell(1, "fr", to="ordinal") if date.day == 1 else _spell(date.day, "fr")
    french = f"{weekdays[date.weekday()]} {french_day} {months[date.month - 1]} {_spell(date.year, 'fr')}"
    return english, french


MAX_ITEMS = 4


def _draw_number(rng):
    # Every magnitude from units to hundreds of millions is equally likely.
    digits = int(rng.integers(1, 10))
    return int(rng.integers(0 if digits == 1 else 10 ** (digits - 1), 10**digits))


def _draw_item(rng):
    if rng.random() < 0.5:
        return number_pair(_draw_number(rng))
    return date_pair(_FIRST_DAY + datetime.timedelta(days=int(rng.integers(_NUMBER_OF_DAYS))))


def sentence_pair(items):
    """Joins (english, french) items into one pair: "a; b; c"."""
    return "; ".join(english for english, _ in items), "; ".join(french for _, french in items)


def generate_pairs(sizes, seed):
    """Returns one list of (english, french) pairs per entry of `sizes`, deterministically by seed;
    no source sentence occurs in two lists.

    The pairs of the last few (sizes, seed) are kept, so the runs of a sweep in one process (Hydra's
    default launcher) spell the 22,000 default pairs once, not once per run (about 5 s each)."""
    return [list(split) for split in _generated_pairs(tuple(sizes), seed)]


@functools.lru_cache(maxsize=2)
def _generated_pairs(sizes, seed):
    rng = np.random.default_rng([seed, 2024])
    wanted = sum(sizes)
    seen = set()
    pairs = []
    while len(pairs) < wanted:
        pair = sentence_pair([_draw_item(rng) for _ in range(int(rng.integers(1, MAX_ITEMS + 1)))])
        if pair[0] not in seen:
            seen.add(pair[0])
            pairs.append(pair)
    splits, start = [], 0
    for size in sizes:
        splits.append(tuple(pairs[start : start + size]))
        start += size
    return tuple(splits)
