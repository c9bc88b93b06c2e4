"""Validation and test splits carved off the training data: one way, deterministic by seed, for
every task."""

import numpy as np

from taskzoo.errors import DataError

# Tells apart the two splits carved with the same seed.
SALTS = {"test": 2, "validation": 1}


def split_indices(count, fraction, seed, salt, of_total=None, what="examples"):
    """Splits the indices of `count` items deterministically by seed into (rest, part), each
    sorted. The part holds `fraction` of `of_total` items (by default, of `count`)."""
    rng = np.random.default_rng([seed, salt])
    order = rng.permutation(count)
    size = max(1, int(round(fraction * (of_total or count))))
    if size >= count:
        raise DataError(f"Too few {what} ({count}) to split off a {fraction:.0%} part.")
    return np.sort(order[size:]), np.sort(order[:size])


def take_list(items, indices):
    return [items[index] for index in indices]


def complete_splits(splits, fractions, seed, take=take_list, size=len, what="examples"):
    """Carves the missing test split, then the missing validation split, off the training data.

    Args:
        splits: {"train": data, and "validation" and "test" where given}.
        fractions: {"validation": fraction, "test": fraction}, each of the whole training data.
        take: `take(data, indices)` picks items of a split's data by position (default: a list).
        size: `size(data)`, the number of items.
        what: the name of the items, for the error when there are too few.

    Returns (train, validation, test).
    """
    splits = dict(splits)
    train = splits["train"]
    total = size(train)
    for name in ("test", "validation"):
        if splits.get(name) is None:
            rest, part = split_indices(size(train), fractions[name], seed, SALTS[name], of_total=total, what=what)
            train, splits[name] = take(train, rest), take(train, part)
    return train, splits["validation"], splits["test"]


def fractions(data_config):
    """The carved fractions of a task's `task.data` node."""
    return {"validation": data_config.validation_fraction, "test": data_config.test_fraction}
