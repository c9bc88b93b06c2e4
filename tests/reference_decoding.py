"""The decoders taskzoo used before its compiled loop, kept as the reference the tests compare with.

One compiled call of the step function per output position; the beam's bookkeeping in numpy
with a loop over the examples. `blocks.decoding` must give the same tokens, scores and
attention on the same model.
"""

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


# Decoding a whole sequence with a recurrent decoder: greedy and beam search.
#
# Both work on a batch of examples at once and drive a `step` function:
#     step(tokens, states, memory_inputs) -> (logits, states, attention weights or None)
# where tokens is (batch,), states a nested structure of (batch, ...) tensors and memory_inputs
# a nested structure of (batch, ...) tensors that every step reads (the encoder's outputs, their
# attention projection, the mask). Beam search keeps `beam_size` hypotheses per example by
# repeating each example's states and memory along the batch axis.


def _gather(structure, indices):
    """Selects rows `indices` of every tensor in a nested structure."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda tensor: tf.gather(tensor, indices), structure)


def _log_softmax(logits):
    logits = np.asarray(logits, dtype="float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def length_normalizer(length, alpha):
    """The length penalty of Wu et al. (2016): ((5 + length) / 6) ** alpha; alpha 0 turns it off."""
    return ((5.0 + length) / 6.0) ** alpha


def greedy_decode(step, states, memory_inputs, max_lengths, start_id, end_id, banned_ids=()):
    """Picks the most likely token at every step until the end token or `max_lengths`; the
    `banned_ids` (padding, the start token) are never chosen.

    Returns one dict per example: `tokens` (without the end token), `attention` (one row of
    weights per generated token, end token included; None without attention) and `score` (the
    sum of the chosen tokens' log-probabilities).
    """
    max_lengths = np.asarray(max_lengths)
    batch = len(max_lengths)
    tokens = np.full(batch, start_id, dtype="int32")
    chosen, attention = [], []
    scores = np.zeros(batch)
    # The number of steps each example has taken; it stops counting once the example is done.
    steps = np.zeros(batch, dtype="int64")
    done = np.zeros(batch, dtype=bool)
    for position in range(int(max_lengths.max())):
        logits, states, weights = step(tokens, states, memory_inputs)
        log_probabilities = _log_softmax(logits)
        log_probabilities[:, list(banned_ids)] = -np.inf
        tokens = log_probabilities.argmax(axis=-1).astype("int32")
        live = ~done
        scores[live] += log_probabilities[live, tokens[live]]
        steps[live] += 1
        chosen.append(tokens)
        if weights is not None:
            attention.append(np.asarray(weights))
        done |= (tokens == end_id) | (steps >= max_lengths)
        if done.all():
            break
    chosen = np.stack(chosen, axis=1)  # (batch, steps)
    attention = np.stack(attention, axis=1) if attention else None  # (batch, steps, positions)
    results = []
    for example in range(batch):
        taken = chosen[example, : steps[example]]
        ended = len(taken) > 0 and taken[-1] == end_id
        results.append(
            {
                "tokens": [int(token) for token in (taken[:-1] if ended else taken)],
                "attention": None if attention is None else attention[example, : steps[example]],
                "score": float(scores[example]),
            }
        )
    return results


def beam_search(
    step, states, memory_inputs, max_lengths, start_id, end_id, beam_size, length_penalty=0.0, banned_ids=()
):
    """Keeps the `beam_size` best partial hypotheses of every example at each step.

    A hypothesis ends when it chooses the end token among the step's `beam_size` best candidates,
    or reaches its example's maximum length. An example is done when `beam_size` hypotheses have
    ended and no live hypothesis is more likely than all of them (an unlikely early ending does
    not end the search while a likelier hypothesis is still growing). Ended hypotheses are ranked by their
    log-probability divided by `length_normalizer(length, length_penalty)`, so a positive penalty
    favours longer translations. A beam of width 1 makes the same choices as `greedy_decode`.

    The `banned_ids` are never chosen. Returns one dict per example, as `greedy_decode` does, for
    the best hypothesis.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be 1 or more; received {beam_size}.")
    max_lengths = np.asarray(max_lengths)
    batch, width = len(max_lengths), beam_size
    # Row b * width + k of the expanded batch holds hypothesis k of example b.
    rows = np.repeat(np.arange(batch), width)
    states = _gather(states, rows)
    memory_inputs = _gather(memory_inputs, rows)
    tokens = np.full(batch * width, start_id, dtype="int32")
    # Only the first hypothesis of each example is live at the start: the others are copies.
    scores = np.full((batch, width), -np.inf)
    scores[:, 0] = 0.0
    # The tokens and the attention rows of every hypothesis so far, one row per hypothesis.
    sequences = np.zeros((batch * width, 0), dtype="int32")
    attention = None
    finished = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)

    for position in range(int(max_lengths.max())):
        logits, states, weights = step(tokens, states, memory_inputs)
        if weights is not None:
            # (rows, steps so far + 1, positions): the histories with this step's weights.
            weights = np.asarray(weights)[:, None]
            attention = weights if attention is None else np.concatenate([attention, weights], axis=1)
        log_probabilities = _log_softmax(logits)
        log_probabilities[:, list(banned_ids)] = -np.inf
        vocabulary_size = log_probabilities.shape[-1]
        # (batch, width * vocabulary): every extension of every live hypothesis.
        totals = (scores[:, :, None] + log_probabilities.reshape(batch, width, vocabulary_size)).reshape(batch, -1)
        parents = np.arange(batch * width)
        new_tokens = np.full(batch * width, end_id, dtype="int32")
        new_scores = np.full((batch, width), -np.inf)
        for example in range(batch):
            if done[example]:
                continue
            kept = 0
            # The best 2 * width candidates always hold `width` that do not end here.
            candidates = np.argsort(-totals[example], kind="stable")[: 2 * width]
            for rank, candidate in enumerate(candidates):
                total = totals[example, candidate]
                if not np.isfinite(total):
                    break
                parent = example * width + candidate // vocabulary_size
                token = int(candidate % vocabulary_size)
                if token == end_id or sequences.shape[1] + 1 >= max_lengths[example]:
                    # Only an ending among this step's `width` best candidates counts.
                    if rank < width:
                        hypothesis = list(sequences[parent]) + ([] if token == end_id else [token])
                        history = None if attention is None else attention[parent]
                        normalized = total / length_normalizer(len(hypothesis) + 1, length_penalty)
                        finished[example].append((normalized, total, hypothesis, history))
                    continue
                row = example * width + kept
                parents[row] = parent
                new_tokens[row] = token
                new_scores[example, kept] = total
                kept += 1
                if kept == width:
                    break
            # Keep the `width` best ended hypotheses. The example is done when no live one is
            # more likely than every one of them: a live log-probability only falls as it grows.
            finished[example] = sorted(finished[example], key=lambda item: -item[0])[:width]
            if kept == 0:
                done[example] = True
            elif len(finished[example]) == width:
                done[example] = new_scores[example, :kept].max() <= min(item[1] for item in finished[example])
        if done.all():
            break
        sequences = np.concatenate([sequences[parents], new_tokens[:, None]], axis=1)
        if attention is not None:
            attention = attention[parents]
        states = _gather(states, parents)
        tokens, scores = new_tokens, new_scores

    results = []
    for example in range(batch):
        candidates = finished[example] or [
            (
                scores[example, k] / length_normalizer(sequences.shape[1] + 1, length_penalty),
                scores[example, k],
                list(sequences[example * width + k]),
                None if attention is None else attention[example * width + k],
            )
            for k in range(width)
            if np.isfinite(scores[example, k])
        ]
        _, total, tokens, history = max(candidates, key=lambda candidate: candidate[0])
        results.append({"tokens": [int(token) for token in tokens], "attention": history, "score": float(total)})
    return results


def generate(generator, inputs, max_lengths, beam_size, length_penalty=0.0):
    """What a `SequenceGenerator` gave before its compiled loop: its encoder, then the decoders
    above driving its one-step function."""
    states, memory_inputs = generator.encode(inputs)
    arguments = (generator.step, states, memory_inputs, max_lengths, generator.start_id, generator.end_id)
    if beam_size == 1:
        return greedy_decode(*arguments, banned_ids=generator.banned_ids)
    return beam_search(*arguments, beam_size=beam_size, length_penalty=length_penalty, banned_ids=generator.banned_ids)
