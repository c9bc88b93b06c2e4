"""Attention over a memory (the encoder's outputs, or a CNN's grid of image features).

At every decoder step the query (the decoder's previous hidden state) scores each memory
position, a softmax over the real positions turns the scores into weights, and the context is
the weighted sum of the memory. Both layers return the weights as well, so they can be logged and
drawn.

- AdditiveAttention (Bahdanau et al., 2015): score = v . tanh(W_memory m + W_query q).
- MultiplicativeAttention (Luong et al., 2015, "general"): score = q . (W m).
- MeanAttention: no scores, the same weight on every real position; the context is the mean of
  the memory (a captioner that feeds its pooled image features at every step).

The memory's projection does not depend on the step, so `project_memory` computes it once per
sequence and every step reuses it.
"""

import keras
from keras import ops

from taskzoo import choices

# Added to the scores of padded positions: their softmax weight underflows to exactly zero.
_MASKED_SCORE = -1e9


def masked_softmax(scores, mask):
    """Softmax over the last axis of (batch, positions) scores; masked positions get weight 0."""
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, _MASKED_SCORE)
    return ops.softmax(scores, axis=-1)


class MemoryAttention(keras.layers.Layer):
    """What the attention layers share: a subclass scores every memory position for a query
    (`scores`); a softmax over the real positions turns the scores into weights, and the context
    is the weighted sum of the memory."""

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def project_memory(self, memory):
        """What every step reuses: the memory's projection, or None when the scores need none."""
        return None

    def scores(self, query, memory, projected_memory):
        """(batch, positions) scores of the memory positions for the (batch, query features) query."""
        raise NotImplementedError

    def call(self, query, memory, projected_memory=None, memory_mask=None):
        """Returns (context (batch, memory_features), weights (batch, positions)); `memory_mask`
        (batch, positions) is true at the real positions."""
        if projected_memory is None:
            projected_memory = self.project_memory(memory)
        weights = masked_softmax(self.scores(query, memory, projected_memory), memory_mask)
        return ops.einsum("bp,bpf->bf", weights, memory), weights

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="taskzoo")
class AdditiveAttention(MemoryAttention):
    """Bahdanau attention. `units` is the size of the hidden layer of the scoring network."""

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.memory_projection = keras.layers.Dense(units, use_bias=False, name="memory_projection")
        self.query_projection = keras.layers.Dense(units, name="query_projection")
        self.score = keras.layers.Dense(1, use_bias=False, name="score")

    def build(self, query_shape, memory_shape):
        self.memory_projection.build(memory_shape)
        self.query_projection.build(query_shape)
        self.score.build(tuple(query_shape[:-1]) + (self.units,))

    def project_memory(self, memory):
        # (batch, positions, memory_features) -> (batch, positions, units)
        return self.memory_projection(memory)

    def scores(self, query, memory, projected_memory):
        # (batch, 1, units) broadcast over the positions.
        hidden = ops.tanh(projected_memory + ops.expand_dims(self.query_projection(query), 1))
        return ops.squeeze(self.score(hidden), -1)


@keras.saving.register_keras_serializable(package="taskzoo")
class MultiplicativeAttention(MemoryAttention):
    """Luong's "general" attention: the memory is projected to the query's size, then dotted."""

    def __init__(self, units, **kwargs):
        # The query's size: the memory is projected to it.
        super().__init__(units, **kwargs)
        self.memory_projection = keras.layers.Dense(units, use_bias=False, name="memory_projection")

    def build(self, query_shape, memory_shape):
        self.memory_projection.build(memory_shape)

    def project_memory(self, memory):
        return self.memory_projection(memory)

    def scores(self, query, memory, projected_memory):
        return ops.einsum("bu,bpu->bp", query, projected_memory)


@keras.saving.register_keras_serializable(package="taskzoo")
class MeanAttention(MemoryAttention):
    """Equal weights on the real positions: the context is the masked mean of the memory."""

    def build(self, query_shape, memory_shape):
        pass

    def call(self, query, memory, projected_memory=None, memory_mask=None):
        # The weights a softmax of equal scores would give, without the softmax: a memory of one
        # position (a captioner's pooled features) would make Keras warn about a softmax over one value.
        if memory_mask is None:
            weights = ops.ones(ops.shape(memory)[:2], dtype=memory.dtype)
        else:
            weights = ops.cast(memory_mask, memory.dtype)
        weights = weights / ops.sum(weights, axis=-1, keepdims=True)
        return ops.einsum("bp,bpf->bf", weights, memory), weights


# The layer of each learned attention in `choices.ATTENTION_SCORES`, and the fixed "mean" attention
# that captioning uses when it feeds image features without learning where to look.
ATTENTION_LAYERS = choices.registry(
    (*choices.ATTENTION_SCORES, "mean"),
    additive=AdditiveAttention,
    multiplicative=MultiplicativeAttention,
    mean=MeanAttention,
)
