"""The training step with gradient norms is Keras' own step, and its norms are the true ones."""

import pathlib
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from taskzoo.blocks.recurrent import RecurrentStack
from taskzoo.observe.gradients import GradientNormLogger, GradientNormModel, group_by_layer


def small_network():
    token_ids = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(12, 4, mask_zero=True, name="embedding")(token_ids)
    encoded = RecurrentStack("lstm", 4, num_layers=2, name="recurrent_stack")(embedded)
    return keras.Model(token_ids, keras.layers.Dense(2, name="classifier")(encoded))


BATCH = (np.array([[1, 2, 3, 0], [4, 5, 6, 7]]), np.array([0, 1]))


def test_layer_groups_are_named_by_layer():
    names, groups = group_by_layer(small_network().trainable_variables)
    assert names == ["embedding", "recurrent_stack/lstm_0", "recurrent_stack/lstm_1", "classifier"]
    assert [len(group) for group in groups] == [1, 3, 3, 2]


def test_norms_match_a_direct_gradient_tape_computation():
    keras.utils.set_random_seed(0)
    network = small_network()
    loss_function = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_function(BATCH[1], network(BATCH[0], training=True))
    gradients = tape.gradient(loss, network.trainable_variables)
    expected_global = float(tf.linalg.global_norm(gradients))
    expected_lstm_1 = float(tf.linalg.global_norm(gradients[4:7]))

    # A huge gradient relative to the clip threshold: the recorded norm is the one before clipping.
    model = GradientNormModel(network)
    model.compile(optimizer=keras.optimizers.SGD(0.1, global_clipnorm=1e-3), loss=loss_function)
    model.train_on_batch(*BATCH)
    np.testing.assert_allclose(float(model.global_gradient_norm.numpy()), expected_global, rtol=1e-5)
    layer_norms = model.layer_gradient_norms.numpy()
    np.testing.assert_allclose(layer_norms[2], expected_lstm_1, rtol=1e-5)
    np.testing.assert_allclose(np.sqrt((layer_norms**2).sum()), expected_global, rtol=1e-5)


@pytest.mark.parametrize("clipnorm, expected", [(1e-3, 1.0), (1e6, 0.0), (None, None)])
def test_the_fraction_of_clipped_steps_is_logged_per_epoch(clipnorm, expected):
    keras.utils.set_random_seed(0)
    model = GradientNormModel(small_network())
    model.compile(optimizer=keras.optimizers.SGD(0.01, global_clipnorm=clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logger = GradientNormLogger(pathlib.Path(tempfile.mkdtemp()), every_n_steps=100)
    history = model.fit(np.tile(BATCH[0], (4, 1)), np.tile(BATCH[1], (4,)), batch_size=2, epochs=2,
                        callbacks=[logger], verbose=0)
    if expected is None:
        assert "clipped_fraction" not in history.history
    else:
        assert history.history["clipped_fraction"] == [expected, expected]


def test_training_matches_plain_keras_fit():
    keras.utils.set_random_seed(1)
    reference = small_network()
    keras.utils.set_random_seed(1)
    network = small_network()
    network.set_weights(reference.get_weights())
    wrapped = GradientNormModel(network)
    for model in (reference, wrapped):
        model.compile(
            optimizer=keras.optimizers.Adam(0.01, global_clipnorm=0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    inputs = np.tile(BATCH[0], (4, 1))
    labels = np.tile(BATCH[1], 4)
    reference_history = reference.fit(inputs, labels, batch_size=3, epochs=3, shuffle=False, verbose=0)
    wrapped_history = wrapped.fit(inputs, labels, batch_size=3, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(wrapped_history.history["loss"], reference_history.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(wrapped_history.history["accuracy"], reference_history.history["accuracy"])
    for ours, theirs in zip(network.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
