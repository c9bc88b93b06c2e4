"""Gradient flow through time and the gradient alarms."""

import logging
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from taskzoo.blocks.decoder import RecurrentDecoder
from taskzoo.blocks.recurrent import RecurrentStack
from taskzoo.observe.alarms import JumpDetector
from taskzoo.observe.gradients import GradientNormLogger, GradientNormModel
from taskzoo.observe.time_gradients import (
    TimeGradientLogger,
    load_time_gradients,
    probing,
    summary_points,
    time_gradient_norms,
)
from conftest import event_tags, event_values

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def stack_network(cell, bidirectional=False, masking=False, num_layers=2):
    inputs = keras.Input((None, 3))
    sequence = keras.layers.Masking()(inputs) if masking else inputs
    encoded = RecurrentStack(cell, 5, num_layers=num_layers, bidirectional=bidirectional, name="stack")(sequence)
    return keras.Model(inputs, keras.layers.Dense(2, name="classifier")(encoded))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_norms_match_a_direct_gradient_tape_over_an_unrolled_stack(cell):
    keras.utils.set_random_seed(0)
    network = stack_network(cell)
    stack = network.get_layer("stack")
    inputs = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
    targets = np.array([0, 1, 1, 0])

    # Direct: unroll each layer's cell by hand and ask the tape for the gradient of the loss with
    # respect to every hidden state, which counts every path from h_t to the loss.
    with tf.GradientTape(persistent=True) as tape:
        sequence = [tf.constant(inputs[:, t]) for t in range(inputs.shape[1])]
        hidden = []
        for layer in stack.recurrent_layers:
            states = [tf.zeros((4, 5)) for _ in tf.nest.flatten(layer.cell.state_size)]
            layer_hidden = []
            for step_inputs in sequence:
                _, states = layer.cell(step_inputs, states)
                states = list(states) if isinstance(states, (list, tuple)) else [states]
                layer_hidden.append(states[0])
            hidden.append(layer_hidden)
            sequence = layer_hidden
        loss = LOSS(targets, network.get_layer("classifier")(sequence[-1]))
    expected = [[float(tf.norm(g)) for g in tape.gradient(loss, layer_hidden)] for layer_hidden in hidden]

    measured = time_gradient_norms(network, LOSS, inputs, targets)
    assert list(measured) == [f"stack/{cell}_0", f"stack/{cell}_1"]
    for (norms, real), reference in zip(measured.values(), expected):
        np.testing.assert_allclose(norms, reference, rtol=1e-4, atol=1e-8)
        assert real.all()
    # The top layer's last step reaches the loss directly; its first step only through time.
    assert measured[f"stack/{cell}_1"][0][-1] > 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_probed_pass_computes_the_same_function_with_masks_and_both_directions(cell):
    keras.utils.set_random_seed(1)
    network = stack_network(cell, bidirectional=True, masking=True)
    inputs = np.random.default_rng(1).normal(size=(3, 7, 3)).astype("float32")
    inputs[0, 4:] = 0.0
    inputs[1, 2:] = 0.0
    with tf.GradientTape() as tape, probing(network, tape) as probe:
        probed = network(inputs)
    np.testing.assert_allclose(probed.numpy(), network(inputs).numpy(), atol=1e-6)
    assert list(probe.perturbations) == [
        f"stack/bidirectional_{cell}_0/forward", f"stack/bidirectional_{cell}_0/backward",
        f"stack/bidirectional_{cell}_1/forward", f"stack/bidirectional_{cell}_1/backward",
    ]


def test_padded_steps_have_no_gradient_and_are_not_real():
    keras.utils.set_random_seed(2)
    network = stack_network("gru", masking=True, num_layers=1)
    inputs = np.random.default_rng(2).normal(size=(2, 6, 3)).astype("float32")
    inputs[:, 4:] = 0.0  # both examples end after four steps
    (norms, real), = time_gradient_norms(network, LOSS, inputs, np.array([0, 1])).values()
    assert real.tolist() == [True] * 4 + [False] * 2
    assert (norms[4:] == 0).all() and (norms[:4] > 0).all()
    points = summary_points(norms, real)
    assert points["last"] == norms[3] and points["first_over_last"] == pytest.approx(norms[0] / norms[3])


@pytest.mark.parametrize("attention", ["none", "additive"])
def test_decoder_norms_match_a_direct_gradient_tape_over_its_steps(attention):
    keras.utils.set_random_seed(3)
    decoder = RecurrentDecoder(9, "lstm", units=4, num_layers=2, embedding_dim=3, attention=attention)
    rng = np.random.default_rng(3)
    memory = tf.constant(rng.normal(size=(2, 5, 6)).astype("float32"))
    initial = [[tf.zeros((2, 4)), tf.zeros((2, 4))] for _ in range(2)]
    target_input = np.array([[2, 4, 5, 6], [2, 7, 8, 0]])
    targets = np.array([[4, 5, 6, 3], [7, 8, 3, 0]])
    weights = (targets > 0).astype("float32")
    decoder(target_input, memory, initial_state=initial)

    with tf.GradientTape(persistent=True) as tape:
        projected = decoder.prepare_memory(memory)
        states, hidden, logits = initial, [[], []], []
        for t in range(4):
            features, states, _ = decoder.advance(
                decoder.embedding(target_input[:, t]), states, memory, projected, None
            )
            for layer in range(2):
                hidden[layer].append(states[layer][0])
            logits.append(decoder.output_projection(features))
        loss = LOSS(targets, tf.stack(logits, axis=1), sample_weight=weights)
    expected = [[float(tf.norm(g)) for g in tape.gradient(loss, layer_hidden)] for layer_hidden in hidden]

    class Wrapper(keras.Model):
        # The probe reaches the blocks a network holds.
        def __init__(self):
            super().__init__()
            self.decoder = decoder

        def call(self, inputs):
            return self.decoder(inputs, memory, initial_state=initial)

    measured = time_gradient_norms(Wrapper(), LOSS, target_input, targets, weights)
    assert list(measured) == [f"{decoder.name}/lstm_cell_0", f"{decoder.name}/lstm_cell_1"]
    for (norms, _), reference in zip(measured.values(), expected):
        np.testing.assert_allclose(norms, reference, rtol=1e-4, atol=1e-8)


@pytest.mark.alarm_expected
def test_the_logger_writes_images_scalars_history_and_the_vanishing_alarm(tmp_path, caplog):
    keras.utils.set_random_seed(4)
    network = stack_network("rnn", num_layers=1)
    rng = np.random.default_rng(4)
    inputs, targets = rng.normal(size=(32, 12, 3)).astype("float32"), rng.integers(0, 2, 32)
    model = GradientNormModel(network)
    model.compile(optimizer="adam", loss=LOSS)
    # Any ratio is below this threshold, so the alarm must fire, once.
    logger = TimeGradientLogger(tmp_path, (inputs[:8], targets[:8]), LOSS, every_n_steps=2, vanish_ratio=1e9)
    with caplog.at_level(logging.WARNING):
        model.fit(inputs, targets, batch_size=8, epochs=2, callbacks=[logger], verbose=0)

    history = load_time_gradients(tmp_path / "time_gradients.npz")
    assert history["steps"].tolist() == [0, 2, 4, 6, 8]
    norms, real = history["layers"]["stack/rnn_0"]
    assert norms.shape == (5, 12) and real.all()
    assert event_tags(tmp_path / "train")["time_gradients/stack/rnn_0"] == 5
    for point in ("first", "middle", "last", "first_over_last"):
        steps = event_values(tmp_path / "train", f"time_gradients/stack/rnn_0/{point}")
        assert [step for step, _ in steps] == [0, 2, 4, 6, 8]
    ratios = dict(event_values(tmp_path / "train", "time_gradients/stack/rnn_0/first_over_last"))
    np.testing.assert_allclose(ratios[8], norms[-1, 0] / norms[-1, -1], rtol=1e-5)
    alarms = [record for record in caplog.records if "Vanishing gradient in stack/rnn_0" in record.getMessage()]
    assert len(alarms) == 1
    assert len(event_values(tmp_path / "train", "alarms")) == 1
    assert any(record.getMessage() == "stack/rnn_0: ‖∂L/∂h_first‖ / ‖∂L/∂h_last‖ was below "
               "observe.vanish_ratio=1e+09 in 5 of 5 measurements." for record in caplog.records)


def test_the_jump_detector_fires_once_per_lasting_jump():
    detector = JumpDetector(factor=5.0, window=3, steps=2)
    values = [1.0, 2.0, 3.0, 50.0, 1.0, 2.0, 3.0, 60.0, 55.0, 2.0, 3.0, 4.0, 20.0, 20.0, 100.0, 2.0]
    results = [detector.update(value) for value in values]
    # 50 is a single large value: nothing. 60 and 55 stay above five times the earlier level for
    # two values: one alarm. That level is 62 / 7, the mean of every value before them, which is
    # larger than the mean 2 of the window (1, 2, 3). The window then starts afresh: 20 and 20
    # are above five times its mean 3, but not above five times the mean of the whole run so far
    # (186 / 12), so they raise nothing; 100 is a single value again.
    assert results == [None] * 8 + [pytest.approx(62.0 / 7)] + [None] * 7


def test_the_jump_detector_stays_silent_on_the_recorded_default_runs():
    # The global gradient norm of every step of healthy default runs (sentiment with each cell,
    # char_lm, video, captioning and translation, recorded with trainer.log_every_n_steps=1): single-step
    # spikes as a model learns its task, and noise on a loss near zero that is tens of times its
    # recent mean.
    recorded = np.load(pathlib.Path(__file__).parent / "data" / "healthy_gradient_norms.npz")
    assert len(recorded.files) == 7
    for name in recorded.files:
        detector = JumpDetector(factor=20.0, window=50, steps=3)
        assert [step for step, norm in enumerate(recorded[name], 1) if detector.update(float(norm))] == [], name
    # The spikes are there: a detector that reacts to a single value fires on them.
    for name in ("sentiment_gru", "sentiment_lstm"):
        single = JumpDetector(factor=20.0, window=50, steps=1)
        assert any(single.update(float(norm)) for norm in recorded[name]), name


@pytest.mark.alarm_expected
def test_an_exploding_gradient_raises_the_alarm_in_real_training(tmp_path, caplog):
    keras.utils.set_random_seed(5)
    inputs = keras.Input((None, 3))
    network = keras.Model(inputs, keras.layers.Dense(1)(RecurrentStack("rnn", 5, name="stack")(inputs)))
    rng = np.random.default_rng(5)
    sequences, targets = rng.normal(size=(96, 10, 3)).astype("float32"), rng.normal(size=(96, 1))
    # Batches 8 to 10 of twelve have outlier targets a thousand times too large: with a squared
    # error, their gradients are about a thousand times larger than the others', three steps in a
    # row.
    targets[56:80] *= 1000.0
    model = GradientNormModel(network)
    model.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mse")
    logger = GradientNormLogger(tmp_path / "train", every_n_steps=100, explode_factor=10.0, explode_window=5,
                                explode_steps=3)
    with caplog.at_level(logging.WARNING):
        model.fit(sequences, targets, batch_size=8, epochs=1, shuffle=False, callbacks=[logger], verbose=0)
    alarms = [record.getMessage() for record in caplog.records if "Exploding gradient" in record.getMessage()]
    assert len(alarms) == 1 and alarms[0].startswith("Exploding gradient at step 10 (epoch 1, batch 10)")
    entries = event_values(tmp_path / "train", "alarms")
    assert [step for step, _ in entries] == [10] and entries[0][1] == alarms[0]


def test_the_plot_draws_runs_measured_many_times_and_once(tmp_path, recwarn):
    from taskzoo.observe import plot_time_gradients

    rng = np.random.default_rng(5)
    inputs, targets = rng.normal(size=(16, 6, 3)).astype("float32"), rng.integers(0, 2, 16)
    for name, every_n_steps in (("often", 1), ("once", 1000)):
        keras.utils.set_random_seed(5)
        model = GradientNormModel(stack_network("lstm", num_layers=1))
        model.compile(optimizer="adam", loss=LOSS)
        logger = TimeGradientLogger(tmp_path / name, (inputs[:8], targets[:8]), LOSS, every_n_steps=every_n_steps)
        model.fit(inputs, targets, batch_size=8, epochs=1, callbacks=[logger], verbose=0)
    assert load_time_gradients(tmp_path / "once" / "time_gradients.npz")["steps"].tolist() == [0]

    plot_time_gradients.main([str(tmp_path / "often"), str(tmp_path / "once"), "--out", str(tmp_path / "flow.png")])
    assert (tmp_path / "flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A run measured once is a column one step wide, not a warning about a singular axis.
    assert [str(warning.message) for warning in recwarn if "singular" in str(warning.message)] == []
