"""Word-level input blocks: a character encoder of every word, and dropout of whole words."""

import keras
from keras import ops

from taskzoo.blocks.recurrent import RecurrentStack


@keras.saving.register_keras_serializable(package="taskzoo")
class CharacterWordEncoder(keras.layers.Layer):
    """Encodes every word of padded sentences from its characters with a bidirectional
    `RecurrentStack`: the final states of the forward and the backward pass, concatenated.

    A word never seen in training still gets a representation from its spelling (its suffix,
    its capital letter, its digits).

    Args:
        vocabulary_size: the number of character ids (0 pads, 1 is the unknown character).
        embedding_dim: the size of a character's embedding.
        cell, units: the recurrent cell and its units per direction.

    Call arguments:
        character_ids: (batch, words, characters) integers, 0 on padding.

    Returns (batch, words, 2 * units), zeros on padded words. Only real words go through the
    recurrent stack, and only as far as the longest word of the batch.
    """

    def __init__(self, vocabulary_size, embedding_dim=32, cell="lstm", units=32, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.units = units
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="character_embedding")
        self.encoder = RecurrentStack(cell=cell, units=units, bidirectional=True, name="character_stack")

    def build(self, character_ids_shape):
        self.embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim))
        self.built = True

    def call(self, character_ids, training=None):
        import tensorflow as tf

        character_ids = ops.cast(character_ids, "int32")
        # (batch, words): the characters of each word; the batch's longest word bounds the loop.
        lengths = ops.sum(ops.cast(character_ids > 0, "int32"), axis=-1)
        character_ids = character_ids[:, :, : ops.maximum(ops.max(lengths), 1)]
        indices = tf.where(lengths > 0)
        # (real words, characters) -> (real words, 2 * units).
        words = tf.gather_nd(character_ids, indices)
        encoded = self.encoder(self.embedding(words), mask=words > 0, training=training)
        shape = tf.shape(lengths, out_type=tf.int64)
        return tf.scatter_nd(indices, encoded, tf.stack([shape[0], shape[1], 2 * self.units]))

    def compute_output_shape(self, character_ids_shape):
        return (character_ids_shape[0], character_ids_shape[1], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size, embedding_dim=self.embedding_dim, cell=self.cell, units=self.units
        )
        return config


@keras.saving.register_keras_serializable(package="taskzoo")
class WordDropout(keras.layers.Layer):
    """In training, replaces each real word id by the unknown id with probability `rate`, so the
    unknown word's embedding learns what words outside the vocabulary look like in context.

    Padding (id 0) stays padding; outside training the ids pass unchanged.
    """

    def __init__(self, rate, unknown_id=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.unknown_id = unknown_id
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, word_ids, training=None):
        if not training or self.rate == 0:
            return word_ids
        dropped = keras.random.uniform(ops.shape(word_ids), seed=self.seed_generator) < self.rate
        return ops.where(ops.logical_and(dropped, word_ids > 0), ops.cast(self.unknown_id, word_ids.dtype), word_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, unknown_id=self.unknown_id, seed=self.seed)
        return config
