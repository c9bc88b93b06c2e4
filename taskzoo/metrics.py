"""Metrics shared by the tasks."""

import math

import keras
from keras import ops


class _MeanCrossEntropy(keras.metrics.Metric):
    """Accumulates the cross-entropy (in nats) of every predicted token over an evaluation."""

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        # (batch, time) targets, (batch, time, vocabulary) logits.
        losses = ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        weights = ops.ones_like(losses) if sample_weight is None else ops.cast(sample_weight, losses.dtype)
        self.total.assign_add(ops.sum(losses * weights))
        self.count.assign_add(ops.sum(weights))

    def mean(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


class BitsPerCharacter(_MeanCrossEntropy):
    """Mean cross-entropy per character in bits: nats divided by ln 2."""

    def __init__(self, name="bits_per_char", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return self.mean() / math.log(2.0)


class Perplexity(_MeanCrossEntropy):
    """exp of the mean cross-entropy per token (not the mean of per-batch perplexities)."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return ops.exp(self.mean())


def corpus_bleu(hypotheses, references):
    """Corpus BLEU (0-100) of detokenised hypotheses against one reference each, computed by
    sacreBLEU with its standard settings (13a tokenisation, exponential smoothing off)."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)
