"""The shared recurrent blocks: shapes, masks, depth, bidirectionality, states and reloading."""

import gc

import keras
import numpy as np
import pytest

from taskzoo.blocks.pooling import MaskedPooling
from taskzoo.blocks.recurrent import RecurrentStack, fused_kernel_warning

BATCH, TIME, FEATURES, UNITS = 2, 5, 3, 4
NUM_STATES = {"rnn": 1, "lstm": 2, "gru": 1}


def random_inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(BATCH, TIME, FEATURES)).astype("float32")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_shapes_and_states(cell, bidirectional, num_layers):
    stack = RecurrentStack(
        cell, UNITS, num_layers=num_layers, bidirectional=bidirectional,
        return_sequences=True, return_state=True,
    )
    outputs, states = stack(random_inputs())
    directions = 2 if bidirectional else 1
    assert outputs.shape == (BATCH, TIME, UNITS * directions)
    assert stack.output_size == UNITS * directions
    assert len(states) == num_layers
    for layer_states in states:
        assert len(layer_states) == NUM_STATES[cell] * directions
        assert all(state.shape == (BATCH, UNITS) for state in layer_states)
    # Depth is a stack of Keras layers, one per level (each keeps the fused kernel).
    assert len(stack.recurrent_layers) == num_layers


def test_final_output_is_the_last_step_of_the_sequence_output():
    keras.utils.set_random_seed(1)
    stack = RecurrentStack("gru", UNITS, num_layers=2, return_sequences=True)
    inputs = random_inputs()
    sequence = keras.ops.convert_to_numpy(stack(inputs))
    last_only = RecurrentStack.from_config({**stack.get_config(), "return_sequences": False})
    last_only.build(inputs.shape)
    last_only.set_weights(stack.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(last_only(inputs)), sequence[:, -1], atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_the_outputs_of_real_steps(cell, bidirectional):
    keras.utils.set_random_seed(2)
    token_ids = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(10, FEATURES, mask_zero=True)(token_ids)
    last = RecurrentStack(cell, UNITS, num_layers=2, bidirectional=bidirectional)(embedded)
    sequence = RecurrentStack(cell, UNITS, bidirectional=bidirectional, return_sequences=True)(embedded)
    mean = MaskedPooling("mean")(sequence)
    maximum = MaskedPooling("max")(sequence)
    model = keras.Model(token_ids, [last, sequence, mean, maximum])

    short = np.array([[3, 4, 5], [6, 7, 8]])
    padded = np.array([[3, 4, 5, 0, 0, 0], [6, 7, 8, 0, 0, 0]])
    short_outputs = model.predict(short, verbose=0)
    padded_outputs = model.predict(padded, verbose=0)
    np.testing.assert_allclose(padded_outputs[0], short_outputs[0], atol=1e-6)
    np.testing.assert_allclose(padded_outputs[1][:, :3], short_outputs[1], atol=1e-6)
    np.testing.assert_allclose(padded_outputs[2], short_outputs[2], atol=1e-6)
    np.testing.assert_allclose(padded_outputs[3], short_outputs[3], atol=1e-6)


def test_bidirectional_reads_the_future():
    keras.utils.set_random_seed(3)
    forward = RecurrentStack("gru", UNITS, return_sequences=True)
    both = RecurrentStack("gru", UNITS, bidirectional=True, return_sequences=True)
    inputs = random_inputs()
    changed = inputs.copy()
    changed[:, -1] += 1.0
    # Changing the last step changes the first output only when the stack also reads backwards.
    np.testing.assert_allclose(forward(inputs)[:, 0], forward(changed)[:, 0], atol=1e-6)
    assert np.abs(keras.ops.convert_to_numpy(both(inputs)[:, 0] - both(changed)[:, 0])).max() > 1e-4


def test_initial_state_is_used():
    stack = RecurrentStack("lstm", UNITS, num_layers=2, return_state=True)
    inputs = random_inputs()
    zero_output, states = stack(inputs)
    shifted_states = [[state + 1.0 for state in layer_states] for layer_states in states]
    shifted_output, _ = stack(inputs, initial_state=shifted_states)
    assert np.abs(keras.ops.convert_to_numpy(zero_output - shifted_output)).max() > 1e-4


@pytest.mark.parametrize("initializer", ["glorot_uniform", "he_normal", "orthogonal"])
def test_initializers_reach_the_keras_layers(initializer):
    stack = RecurrentStack("lstm", UNITS, kernel_initializer=initializer, recurrent_initializer="orthogonal")
    layer = stack.recurrent_layers[0]
    config = layer.get_config()
    assert config["kernel_initializer"]["class_name"].lower() == initializer.replace("_", "").lower()
    assert config["recurrent_initializer"]["class_name"] == "Orthogonal"


def test_zero_layers_is_the_identity_on_sequences():
    stack = RecurrentStack("gru", UNITS, num_layers=0, return_sequences=True)
    inputs = random_inputs()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(stack(inputs)), inputs)
    with pytest.raises(ValueError, match="num_layers=0"):
        RecurrentStack("gru", UNITS, num_layers=0, return_sequences=False)


def test_invalid_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="Unknown cell 'lstmm'"):
        RecurrentStack("lstmm", UNITS)
    with pytest.raises(ValueError, match="Unknown kernel_initializer 'zeros'"):
        RecurrentStack("gru", UNITS, kernel_initializer="zeros")


def test_reloaded_model_predicts_identically(tmp_path):
    keras.utils.set_random_seed(4)
    token_ids = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(10, FEATURES, mask_zero=True)(token_ids)
    encoded = RecurrentStack("lstm", UNITS, num_layers=2, bidirectional=True, return_sequences=True)(embedded)
    pooled = MaskedPooling("max")(encoded)
    model = keras.Model(token_ids, keras.layers.Dense(2)(pooled))
    inputs = np.array([[1, 2, 3, 0], [4, 5, 0, 0]])
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))


def test_bidirectional_stacks_built_while_a_model_loads_keep_their_own_layers():
    # While a saved model loads, Keras matches objects by their Python id. Keras' Bidirectional
    # rebuilds the layers it is given, so a given layer that was freed could pass its rebuilt copy
    # on to a later stack: a shared forward layer, or an error that both directions run forward.
    # The stacks here are built the way `load_model` builds them, freeing memory between them.
    from keras.src.saving.serialization_lib import ObjectSharingScope

    with ObjectSharingScope():
        stacks = []
        for _ in range(40):
            gc.collect(1)
            stacks.append(RecurrentStack("gru", UNITS, bidirectional=True))
    layers = [stack.recurrent_layers[0] for stack in stacks]
    assert len({id(layer.forward_layer) for layer in layers}) == len(stacks)
    assert len({id(layer.backward_layer) for layer in layers}) == len(stacks)
    assert all(layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards for layer in layers)


def test_fused_kernel_warning():
    assert "disables the fused cuDNN LSTM kernel" in fused_kernel_warning("lstm", 0.2)
    assert fused_kernel_warning("gru", 0.0) is None
    assert fused_kernel_warning("rnn", 0.5) is None
