"""Choosing the next token from a model's logits: greedy, or sampled with temperature and top-k."""

import numpy as np


def choose_token(logits, temperature, top_k, rng):
    """Returns the index of the next token.

    Args:
        logits: (vocabulary,) unnormalised log-probabilities.
        temperature: 0 picks the most likely token (greedy); otherwise logits are divided by it
            before sampling, so values below 1 sharpen the distribution and above 1 flatten it.
        top_k: sample only among the k most likely tokens (None or 0: all of them).
        rng: a numpy Generator, for repeatable sampling.
    """
    logits = np.asarray(logits, dtype="float64")
    if temperature == 0:
        return int(np.argmax(logits))
    if temperature < 0:
        raise ValueError(f"temperature must be 0 or more; received {temperature}.")
    scaled = logits / temperature
    if top_k:
        # Everything below the k-th largest logit is left out.
        threshold = np.sort(scaled)[-min(top_k, scaled.size)]
        scaled = np.where(scaled >= threshold, scaled, -np.inf)
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    return int(rng.choice(probabilities.size, p=probabilities))
