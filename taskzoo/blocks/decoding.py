"""Generating sequences with a recurrent decoder: greedy search, sampling and beam search.

Each search generates a whole batch inside one TensorFlow loop (`tf.while_loop`), so a batch
costs one compiled call however long its outputs are, and the bookkeeping of beam search
(the best extensions over beams × vocabulary, the hypotheses that ended, the states that follow
their hypotheses) is done on tensors for the whole batch at once.

The searches drive a `step` function:

    step(tokens, states, memory_inputs) -> (logits, states, attention weights or None)

where tokens is (batch,), logits (batch, vocabulary), states a nested structure of (batch, ...)
tensors and memory_inputs a nested structure of (batch, ...) tensors that every step reads (the
encoder's outputs, their attention projection, the mask). Beam search keeps `beam_size`
hypotheses per example by repeating each example's states and memory along the batch axis.

Both searches return a `Decoded` tuple of tensors; `decoded_results` turns it into one dict per
example. Log-probabilities are summed in float64, so long outputs rank the same way in any batch.
Only the log-probabilities a search keeps are computed: the chosen token's in greedy search and
sampling, the best 2 × beam_size tokens of each hypothesis in beam search (a row's ranking is its
logits' ranking, so the rest of the vocabulary cannot be among the best extensions). With
`skip_ended` (what `SequenceGenerator` uses), the decoder runs on the rows still generating only.
"""

import collections

import numpy as np
import tensorflow as tf

Decoded = collections.namedtuple("Decoded", ["tokens", "token_counts", "step_counts", "scores", "attention"])
Decoded.__doc__ = """The output of a search, one row per example.

tokens: (batch, steps) int32, the generated tokens, end token excluded, padded after
    `token_counts`. token_counts: (batch,) the number of generated tokens. step_counts: (batch,) the
    number of decoding steps (the end token's step included). scores: (batch,) float64, the sum of
    the tokens' log-probabilities (the end token's included). attention: (batch, steps, positions),
    one row of weights per step, or None for a decoder without attention.
"""


def length_normalizer(length, alpha):
    """The length penalty of Wu et al. (2016): ((5 + length) / 6) ** alpha; alpha 0 turns it off."""
    return ((5.0 + length) / 6.0) ** alpha


def log_normalizer(logits):
    """(batch,) float64 log Σ exp(logits) of each row of (batch, vocabulary) float32 logits: a
    token's log-probability is its logit minus its row's normaliser. The exponentials are taken in
    float32 (each within a unit in the last place) and summed in float64, so the result is within
    about 1e-7 of a float64 log-softmax at a fraction of its cost."""
    top = tf.reduce_max(logits, axis=-1, keepdims=True)
    total = tf.reduce_sum(tf.cast(tf.exp(logits - top), tf.float64), axis=-1)
    return tf.cast(top[:, 0], tf.float64) + tf.math.log(total)


def _ban(values, banned_ids):
    if not banned_ids:
        return values
    banned = tf.reduce_any(tf.one_hot(list(banned_ids), tf.shape(values)[-1], dtype=tf.int32) > 0, axis=0)
    return tf.where(banned[None, :], tf.constant(-np.inf, values.dtype), values)


def sampled_tokens(logits, temperature, top_k, uniforms):
    """Draws one token per row from softmax(logits / temperature), among the `top_k` likeliest
    (0: all). `uniforms` (batch,) are draws from [0, 1): the token is the first whose cumulative
    probability exceeds the draw, as numpy's `Generator.choice` picks it, so a numpy generator's
    `random()` values make the choice repeatable."""
    scaled = tf.cast(logits, tf.float64) / temperature
    if top_k:
        # Everything below the k-th largest logit is left out.
        k = tf.minimum(top_k, tf.shape(scaled)[-1])
        threshold = tf.math.top_k(scaled, k=k).values[:, -1:]
        scaled = tf.where(scaled >= threshold, scaled, tf.constant(-np.inf, tf.float64))
    probabilities = tf.exp(scaled - tf.reduce_max(scaled, axis=-1, keepdims=True))
    cumulative = tf.cumsum(probabilities, axis=-1)
    cumulative /= cumulative[:, -1:]
    chosen = tf.searchsorted(cumulative, tf.cast(uniforms, tf.float64)[:, None], side="right")[:, 0]
    return tf.cast(chosen, tf.int32)


def _step_and_score(step, score, tokens, states, memory_inputs, live=None):
    """Runs `step`, then `score(logits, rows)` on its logits, on the rows where `live` (rows,) is
    true only (every row when `live` is None): their tokens, states and memory are gathered and
    their new states scattered back, so rows whose output ended cost no decoder step. `rows` are
    the indices of the rows scored. Returns the scores (a nested structure of per-row tensors)
    and the attention weights spread over every row, zeros in the rows left out, which the
    searches never read, and the states, unchanged in the rows left out."""
    if live is None:
        logits, states, weights = step(tokens, states, memory_inputs)
        return score(logits, tf.range(tf.shape(tokens)[0])), states, weights
    rows = tf.cast(tf.where(live)[:, 0], tf.int32)
    take = lambda tensor: tf.gather(tensor, rows)  # noqa: E731
    logits, new_states, weights = step(take(tokens), tf.nest.map_structure(take, states),
                                       tf.nest.map_structure(take, memory_inputs))
    states = tf.nest.map_structure(
        lambda full, part: tf.tensor_scatter_nd_update(full, rows[:, None], part), states, new_states)

    def spread(part):
        full = tf.scatter_nd(rows[:, None], part, tf.concat([tf.shape(live), tf.shape(part)[1:]], axis=0))
        return tf.ensure_shape(full, [live.shape[0], *part.shape[1:]])

    scores = tf.nest.map_structure(spread, score(logits, rows))
    return scores, states, None if weights is None else spread(weights)


def sample_search(step, states, memory_inputs, max_lengths, start_id, end_id, banned_ids=(),
                  temperature=0.0, top_k=0, uniforms=None, skip_ended=False):
    """Generates until the end token or `max_lengths` (batch,): the most likely token at every
    step (temperature 0, greedy search), or a token sampled with `temperature` and `top_k`
    using `uniforms` (batch, max steps) of draws from [0, 1). A positive temperature may be a
    scalar tensor (one compiled loop for every temperature); 0 must be a number. The `banned_ids`
    (padding, the start token) are never chosen. Returns a `Decoded` tuple.

    With `skip_ended`, each step runs the decoder on the examples still generating only (their
    states and memory gathered, the new states scattered back), so a batch's short outputs stop
    costing decoder steps once they end. `step` must then accept any number of rows, which a
    decoder that keeps its states in variables (a stateful layer) does not."""
    max_lengths = tf.cast(max_lengths, tf.int32)
    batch = tf.shape(max_lengths)[0]
    max_steps = tf.reduce_max(max_lengths)
    has_attention = []

    def body(position, tokens, states, scores, steps, done, chosen, attention):
        def choose(logits, rows):
            """The chosen token of each row and its log-probability."""
            allowed = _ban(logits, banned_ids)
            if temperature == 0:
                tokens = tf.argmax(allowed, axis=-1, output_type=tf.int32)
            else:
                tokens = sampled_tokens(allowed, temperature, top_k, tf.gather(uniforms[:, position], rows))
            return tokens, tf.cast(tf.gather(logits, tokens, batch_dims=1), tf.float64) - log_normalizer(logits)

        live = ~done
        (tokens, log_probs), states, weights = _step_and_score(
            step, choose, tokens, states, memory_inputs, live if skip_ended else None)
        scores += tf.where(live, log_probs, tf.constant(0.0, tf.float64))
        steps += tf.cast(live, tf.int32)
        chosen = chosen.write(position, tokens)
        if weights is not None:
            has_attention.append(True)
            attention = attention.write(position, tf.cast(weights, tf.float32))
        done = done | (tokens == end_id) | (steps >= max_lengths)
        return position + 1, tokens, states, scores, steps, done, chosen, attention

    start = (
        tf.constant(0), tf.fill([batch], tf.cast(start_id, tf.int32)), states,
        tf.zeros([batch], tf.float64), tf.zeros([batch], tf.int32), tf.zeros([batch], tf.bool),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False),
    )
    position, _, _, scores, steps, _, chosen, attention = tf.while_loop(
        lambda position, *carry: (position < max_steps) & ~tf.reduce_all(carry[4]), body, start,
    )
    tokens = tf.transpose(chosen.stack())  # (batch, steps)
    last = tf.gather(tokens, tf.maximum(steps - 1, 0), batch_dims=1)
    token_counts = steps - tf.cast((steps > 0) & (last == end_id), tf.int32)
    tokens = tf.where(tf.range(position)[None, :] < token_counts[:, None], tokens, 0)
    weights = tf.transpose(attention.stack(), [1, 0, 2]) if has_attention else None
    return Decoded(tokens, token_counts, steps, scores, weights)


def beam_search(step, states, memory_inputs, max_lengths, start_id, end_id, beam_size, length_penalty=0.0,
                banned_ids=(), skip_ended=False):
    """Keeps the `beam_size` best partial hypotheses of every example at each step.

    A hypothesis ends when it chooses the end token among the step's `beam_size` best candidates,
    or reaches its example's maximum length. An example is done when `beam_size` hypotheses have
    ended and no live hypothesis is more likely than all of them (an unlikely early ending does
    not end the search while a likelier hypothesis is still growing). Ended hypotheses are ranked
    by their log-probability divided by `length_normalizer(length, length_penalty)`, so a
    positive penalty favours longer outputs. A beam of width 1 makes the same choices as greedy
    search. The `banned_ids` are never chosen.

    Every step records, for every hypothesis, its new token and the hypothesis it extends (its
    parent); an ended hypothesis is remembered by its last step and parent, and the best one's
    tokens and attention are read back along the parents at the end. Returns a `Decoded` tuple
    for each example's best hypothesis. `skip_ended` is as in `sample_search`.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be 1 or more; received {beam_size}.")
    width = beam_size
    max_lengths = tf.cast(max_lengths, tf.int32)
    batch = tf.shape(max_lengths)[0]
    alpha = tf.cast(length_penalty, tf.float64)
    # Row b * width + k of the expanded batch holds hypothesis k of example b.
    states, memory_inputs = tf.nest.map_structure(lambda tensor: tf.repeat(tensor, width, axis=0),
                                                  (states, memory_inputs))
    own_rows = tf.reshape(tf.range(batch * width), [batch, width])
    has_attention = []

    def body(position, tokens, states, scores, done, ended, history):
        # The live hypotheses of examples not done: not the copies of the first step, nor
        # hypotheses that fell out of a beam with fewer than `width` candidates.
        live = tf.reshape(tf.math.is_finite(scores) & ~done[:, None], [-1]) if skip_ended else None
        (row_log_probs, row_tokens), states, weights = _step_and_score(
            step, lambda logits, rows: _best_tokens(logits, banned_ids, 2 * width), tokens, states, memory_inputs, live)
        if weights is not None:
            has_attention.append(True)
            history["attention"] = history["attention"].write(position, tf.cast(weights, tf.float32))
        candidates = _best_extensions(scores, row_log_probs, row_tokens, own_rows, width)
        candidates["valid"] &= ~done[:, None]
        candidates["ends"] = (candidates["token"] == end_id) | (position + 1 >= max_lengths[:, None])
        ended = _keep_best_ended(ended, candidates, position, width, end_id, alpha)
        scores, new_tokens, parents, kept = _next_beam(candidates, own_rows, width, end_id)
        # The loop's variables keep the static shapes they entered with.
        tokens, parents = tf.ensure_shape(new_tokens, tokens.shape), tf.ensure_shape(parents, tokens.shape)
        done = done | ~kept | _cannot_improve(ended, scores)
        history["tokens"] = history["tokens"].write(position, tokens)
        history["parents"] = history["parents"].write(position, parents)
        states = tf.nest.map_structure(lambda tensor: tf.gather(tensor, parents), states)
        return position + 1, tokens, states, scores, done, ended, history

    start = (tf.constant(0), tf.fill([batch * width], tf.cast(start_id, tf.int32)), states,
             *_beam_start(batch, width))
    position, _, _, scores, _, ended, history = tf.while_loop(
        lambda position, tokens, states, scores, done, *rest: (position < tf.reduce_max(max_lengths))
        & ~tf.reduce_all(done), body, start)
    attention = history["attention"].stack() if has_attention else None  # (steps, rows, positions)
    return _best_hypotheses(ended, scores, position, history["tokens"].stack(), history["parents"].stack(),
                            attention, own_rows, end_id)


def _beam_start(batch, width):
    """The loop's first scores (batch, width), done flags (batch,), ended hypotheses and history."""
    minus_infinity = tf.fill([batch, width], tf.constant(-np.inf, tf.float64))
    return (
        # Only the first hypothesis of each example is live at the start: the others are copies.
        tf.concat([tf.zeros([batch, 1], tf.float64), minus_infinity[:, 1:]], axis=1),
        tf.zeros([batch], tf.bool),
        {"normalized": minus_infinity, "total": minus_infinity,
         **{key: tf.zeros([batch, width], tf.int32) for key in ("step", "parent", "token", "length")}},
        {key: tf.TensorArray(dtype, size=0, dynamic_size=True, infer_shape=key != "attention")
         for key, dtype in (("tokens", tf.int32), ("parents", tf.int32), ("attention", tf.float32))},
    )


def _cannot_improve(ended, scores):
    """(batch,) whether an example has `width` ended hypotheses and no live hypothesis more likely
    than every one of them: a live log-probability only falls as it grows."""
    full = tf.reduce_all(tf.math.is_finite(ended["normalized"]), axis=1)
    return full & (tf.reduce_max(scores, axis=1) <= tf.reduce_min(ended["total"], axis=1))


def _best_tokens(logits, banned_ids, count):
    """The `count` likeliest tokens of each row of logits (rows, vocabulary), the lower token first
    among equals, and their float64 log-probabilities, both (rows, count)."""
    count = min(count, logits.shape[-1] or count)
    row_logits, row_tokens = tf.math.top_k(_ban(logits, banned_ids), k=count)
    return tf.cast(row_logits, tf.float64) - log_normalizer(logits)[:, None], row_tokens


def _best_extensions(scores, row_log_probs, row_tokens, own_rows, width):
    """The best 2 × width extensions of each example's live hypotheses (scores (batch, width);
    row_log_probs and row_tokens (batch × width, per_row), each hypothesis' best tokens from
    `_best_tokens`): they always hold `width` that do not end here. Ties keep the lower
    hypothesis, then the lower token, as a stable sort of every extension would.

    Within a hypothesis the extensions rank as its logits do, so an example's best 2 × width are
    among the best 2 × width tokens of each of its hypotheses: only those get a log-probability.
    """
    batch = tf.shape(scores)[0]
    per_row = row_tokens.shape[-1]
    # (batch, width * per_row): the candidates of each example, hypothesis by hypothesis.
    totals = tf.reshape(tf.reshape(scores, [-1, 1]) + row_log_probs, [batch, width * per_row])
    values, indices = tf.math.top_k(totals, k=2 * width)
    return {
        "total": values,
        "token": tf.gather(tf.reshape(row_tokens, [batch, width * per_row]), indices, batch_dims=1),
        "parent": own_rows[:, :1] + indices // per_row,
        "valid": tf.math.is_finite(values),
    }


def _keep_best_ended(ended, candidates, position, width, end_id, alpha):
    """Adds the candidates that end here, among the step's `width` best, to the ended hypotheses
    and keeps the `width` best by normalised score (earlier ones first among equals)."""
    ending = candidates["valid"] & candidates["ends"] & (tf.range(2 * width) < width)[None, :]
    lengths = position + tf.cast(candidates["token"] != end_id, tf.int32)
    normalizer = length_normalizer(tf.cast(lengths + 1, tf.float64), alpha)
    new = {
        "normalized": tf.where(ending, candidates["total"] / normalizer, tf.constant(-np.inf, tf.float64)),
        "total": candidates["total"],
        "step": tf.fill(tf.shape(lengths), position),
        "parent": candidates["parent"],
        "token": candidates["token"],
        "length": lengths,
    }
    merged = {key: tf.concat([ended[key], new[key]], axis=1) for key in ended}
    best = tf.math.top_k(merged["normalized"], k=width).indices
    return {key: tf.gather(value, best, batch_dims=1) for key, value in merged.items()}


def _next_beam(candidates, own_rows, width, end_id):
    """The first `width` candidates that do not end, in order: their scores (batch, width), and
    their tokens and parent rows (batch × width,); whether each example kept any (batch,).
    Empty places get -inf, the end token and their own row."""
    going_on = candidates["valid"] & ~candidates["ends"]
    slot = tf.cumsum(tf.cast(going_on, tf.int32), axis=1) - 1
    kept = going_on & (slot < width)
    count = 2 * width
    order = tf.argsort(tf.where(kept, slot, count + tf.range(count)[None, :]), stable=True)[:, :width]
    filled = tf.gather(kept, order, batch_dims=1)

    def take(key, empty):
        return tf.where(filled, tf.gather(candidates[key], order, batch_dims=1), empty)

    scores = take("total", tf.constant(-np.inf, tf.float64))
    tokens, parents = take("token", end_id), take("parent", own_rows)
    return scores, tf.reshape(tokens, [-1]), tf.reshape(parents, [-1]), tf.reduce_any(kept, axis=1)


def _best_hypotheses(ended, scores, position, tokens, parents, attention, own_rows, end_id):
    """Each example's best ended hypothesis (the first: they are sorted) as a `Decoded` tuple;
    an example with none (every candidate was banned) takes its best live hypothesis."""
    has_ended = tf.math.is_finite(ended["normalized"][:, 0])
    live_row = tf.gather(own_rows, tf.argmax(scores, axis=1, output_type=tf.int32), batch_dims=1)
    last_step = tf.maximum(position - 1, 0)
    end_step = tf.where(has_ended, ended["step"][:, 0], last_step)
    end_parent = tf.where(has_ended, ended["parent"][:, 0], tf.gather(parents[last_step], live_row))
    end_token = tf.where(has_ended, ended["token"][:, 0], tf.gather(tokens[last_step], live_row))
    token_counts = tf.where(has_ended, ended["length"][:, 0], position)
    total = tf.where(has_ended, ended["total"][:, 0], tf.gather(tf.reshape(scores, [-1]), live_row))
    best_tokens, best_attention = _read_back(tokens, parents, attention, end_step, end_parent, end_token, end_id)
    return Decoded(best_tokens, token_counts, end_step + 1, total, best_attention)


def _read_back(tokens, parents, attention, end_step, end_parent, end_token, end_id):
    """The tokens (batch, steps) and attention rows (batch, steps, positions) of one hypothesis
    per example, read backwards from its last step along the recorded parents.

    tokens, parents: (steps, rows), the token chosen at each step for each row and the row it
    extends. end_step, end_parent, end_token: (batch,), where each hypothesis ended: the step,
    the row it extended then and the token it chose (its last token unless the end token).
    """
    steps = tf.shape(tokens)[0]

    def body(step, row, output_tokens, output_attention):
        before_end = step < end_step
        token = tf.where(before_end, tf.gather(tokens[step], row),
                         tf.where((step == end_step) & (end_token != end_id), end_token, 0))
        row = tf.where(before_end, tf.gather(parents[step], row), row)
        output_tokens = output_tokens.write(step, token)
        if attention is not None:
            weights = tf.gather(attention[step], row)
            output_attention = output_attention.write(step, tf.where((step <= end_step)[:, None], weights, 0.0))
        return step - 1, row, output_tokens, output_attention

    # Before the loop `row` is the row the hypothesis extended at its last step; at each earlier
    # step it becomes that row's parent.
    _, _, output_tokens, output_attention = tf.while_loop(
        lambda step, *rest: step >= 0, body,
        (steps - 1, end_parent, tf.TensorArray(tf.int32, size=steps), tf.TensorArray(tf.float32, size=steps, infer_shape=False)),
    )
    best_tokens = tf.transpose(output_tokens.stack())
    if attention is None:
        return best_tokens, None
    return best_tokens, tf.transpose(output_attention.stack(), [1, 0, 2])


def decoded_results(decoded):
    """One dict per example: `tokens` (a list, end token excluded), `attention` ((steps,
    positions), the end token's step included; None without attention) and `score`."""
    decoded = Decoded(*(None if value is None else np.asarray(value) for value in decoded))
    return [
        {
            "tokens": decoded.tokens[example, : decoded.token_counts[example]].tolist(),
            "attention": None if decoded.attention is None else decoded.attention[example, : decoded.step_counts[example]],
            "score": float(decoded.scores[example]),
        }
        for example in range(len(decoded.tokens))
    ]


class SequenceGenerator:
    """Runs a trained encoder and a `RecurrentDecoder` to generate token sequences.

    Args:
        encoder: a Keras model from the network's inputs to [memory (batch, positions,
            features), memory mask (batch, positions), the decoder's initial states].
        decoder: the network's `RecurrentDecoder` layer.
        start_id, end_id: the start and end tokens.
        banned_ids: tokens never generated (padding, the start token).

    A batch is encoded and decoded in one compiled call (one trace per beam size). The
    compiled functions read the current weights, so a generator made before training keeps
    working while the network trains.
    """

    def __init__(self, encoder, decoder, start_id, end_id, banned_ids=()):
        from taskzoo.blocks.decoder import state_size

        self.start_id, self.end_id, self.banned_ids = start_id, end_id, tuple(banned_ids)
        self.decoder = decoder
        per_layer = state_size(decoder.cell)

        def encode(inputs):
            memory, memory_mask, states = encoder(inputs, training=False)
            # One list of state tensors per decoder layer, whatever nesting the model returns.
            flat = tf.nest.flatten(states)
            states = [flat[start : start + per_layer] for start in range(0, len(flat), per_layer)]
            projected = decoder.prepare_memory(memory)
            # Without attention, the memory stands in for its (unused) projection.
            return states, (memory, memory if projected is None else projected, memory_mask)

        def step(tokens, states, memory_inputs):
            memory, projected, memory_mask = memory_inputs
            if decoder.attention is None:
                projected = None
            return decoder.step(tokens, states, memory, projected, memory_mask)

        def search(inputs, max_lengths, beam_size, length_penalty):
            states, memory_inputs = encode(inputs)
            arguments = (step, states, memory_inputs, max_lengths, self.start_id, self.end_id)
            if beam_size == 1:
                return sample_search(*arguments, banned_ids=self.banned_ids, skip_ended=True)
            return beam_search(*arguments, beam_size, length_penalty, banned_ids=self.banned_ids, skip_ended=True)

        # The searches branch on Python values only (the beam size, whether there is attention),
        # so AutoGraph's rewriting of every function they call is not needed. Without it, the
        # first greedy search of the default translation model took 0.71 s instead of 1.55 s, the
        # first beam search 1.51 s instead of 2.26 s.
        self.encode = tf.function(encode, reduce_retracing=True, autograph=False)
        self.step = tf.function(step, reduce_retracing=True, autograph=False)
        self.search = tf.function(search, reduce_retracing=True, autograph=False)
        # Any batch size and input length: the shapes of the encoder's inputs.
        self.input_spec = tf.nest.map_structure(
            lambda tensor: tf.TensorSpec(tensor.shape, tensor.dtype),
            encoder.inputs[0] if len(encoder.inputs) == 1 else encoder.inputs,
        )

    def generate(self, inputs, max_lengths, beam_size=1, length_penalty=0.0):
        """Greedy search (beam_size 1) or beam search for a batch of inputs; returns the list of
        `decoded_results`."""
        if beam_size < 1:
            raise ValueError(f"beam_size must be 1 or more; received {beam_size}.")
        if np.min(max_lengths) < 1:
            raise ValueError(f"every maximum length must be 1 or more; received {np.min(max_lengths)}.")
        self.trace_for_any_shape(inputs, beam_size)
        decoded = self.search(inputs, tf.constant(max_lengths, tf.int32), int(beam_size),
                              tf.constant(length_penalty, tf.float64))
        return decoded_results(decoded)

    def trace_for_any_shape(self, inputs, beam_size):
        """Traces the search of `beam_size` once for the shapes of the encoder's inputs (any batch
        size, any input length), which batches of every shape then reuse. Otherwise the first
        batch's shapes are traced, and the next batch of other shapes traces again; a sweep's runs
        in one process add up such traces and TensorFlow warns of them. After the first call of a
        beam size, tf.function finds the trace in its cache (about 0.1 ms)."""
        flat_spec, flat_inputs = tf.nest.flatten(self.input_spec), tf.nest.flatten(inputs)
        if len(flat_spec) == len(flat_inputs) and all(
            spec.is_compatible_with(tensor) for spec, tensor in zip(flat_spec, flat_inputs)
        ):
            self.search.get_concrete_function(self.input_spec, tf.TensorSpec([None], tf.int32), int(beam_size),
                                              tf.TensorSpec([], tf.float64))
