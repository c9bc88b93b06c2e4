"""The names a user chooses among for the shared building blocks and the trainer, defined once.

Each tuple below is read three ways: the configuration schema builds its enum from it (so Hydra
refuses any other name when it composes a configuration), the registry beside the code that a
name selects is built with `registry` (so the module fails to import if the registry misses a name
or adds one), and error messages list the names with `expected`. Adding a choice is one name here
and one entry in its registry.

This module imports nothing, so the blocks, the trainer and the configuration can all read it.
"""

# The recurrent cell of every stack and decoder (`model.cell`).
CELLS = ("rnn", "lstm", "gru")
# The initialisers of the input and recurrent kernels (`model.initializer`, `model.recurrent_initializer`).
INITIALIZERS = ("glorot_uniform", "he_normal", "orthogonal")
# The optimizers (`trainer.optimizer`).
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
# The tf.distribute strategies (`trainer.strategy`).
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
# The learned attentions of the recurrent decoder; translation's `task.attention` also offers "none".
ATTENTION_SCORES = ("additive", "multiplicative")
ATTENTION_KINDS = ("none", *ATTENTION_SCORES)


def registry(names, **entries):
    """A dict from each of `names` to its entry, in the order of `names`.

    Raises `TypeError` when the entries leave out one of the names or add another, so a registry
    cannot drift from its choice names.
    """
    missing = [name for name in names if name not in entries]
    unknown = [name for name in entries if name not in names]
    if missing or unknown:
        raise TypeError(f"A registry of {expected(names)} misses {missing} and has unknown {unknown}.")
    return {name: entries[name] for name in names}


def expected(names):
    """How an error message lists the allowed names: "one of 'rnn', 'lstm', 'gru'"."""
    return "one of " + ", ".join(repr(name) for name in names)
