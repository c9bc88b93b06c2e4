"""Metrics shared by the tasks."""

import math

import keras
from keras import ops


def masked_cross_entropy():
    """The cross-entropy of a label at every step (token, frame) averaged over the real steps
    only: padding has sample weight 0 and does not count in the denominator either."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")


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


def corpus_bleu(hypotheses, references, max_order=4):
    """Corpus BLEU (0-100) of detokenised hypotheses, computed by sacreBLEU with its standard
    settings (13a tokenisation, no smoothing of the corpus score).

    Args:
        hypotheses: one string per example.
        references: one reference string per example, or one list of references per example
            (the lists may differ in length).
        max_order: the longest n-gram counted: 4 gives BLEU-4, 1 gives BLEU-1.
    """
    from sacrebleu.metrics import BLEU

    references = [[reference] if isinstance(reference, str) else list(reference) for reference in references]
    count = max(len(example_references) for example_references in references)
    # sacreBLEU takes one stream per reference position; None marks a missing reference.
    streams = [
        [example_references[k] if k < len(example_references) else None for example_references in references]
        for k in range(count)
    ]
    return float(BLEU(max_ngram_order=max_order).corpus_score(list(hypotheses), streams).score)
