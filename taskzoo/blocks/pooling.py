"""Summaries of a sequence over time that respect the mask of padded steps."""

import keras
from keras import ops

POOLING_MODES = ("mean", "max")


@keras.saving.register_keras_serializable(package="taskzoo")
class MaskedPooling(keras.layers.Layer):
    """Mean or max over time of (batch, time, features), counting only the unmasked steps.

    A sequence whose steps are all masked pools to zeros.
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"Unknown pooling mode {mode!r}; expected one of {list(POOLING_MODES)}.")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        # (batch, time, 1)
        step_weights = ops.expand_dims(ops.cast(mask, inputs.dtype), axis=-1)
        num_steps = ops.sum(step_weights, axis=1)
        if self.mode == "mean":
            return ops.sum(inputs * step_weights, axis=1) / ops.maximum(num_steps, 1.0)
        lowest = ops.min(inputs) - 1.0
        maxima = ops.max(ops.where(step_weights > 0, inputs, lowest), axis=1)
        return ops.where(num_steps > 0, maxima, ops.zeros_like(maxima))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config
