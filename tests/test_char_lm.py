"""The character language model: streams, carried state, sampling, scoring, data sources."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import reference_decoding
from conftest import compose_config, run_cli
from taskzoo import predict, train
from taskzoo.blocks.recurrent import reset_recurrent_states
from taskzoo.data import characters
from taskzoo.errors import ConfigError, DataError
from taskzoo.tasks.char_lm import (
    CharLanguageModelTask, StateResets, TextGenerator, generate, score, warn_of_unknown_characters,
)

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def char_lm_config(tmp_path, *overrides, text=TEXT):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    return compose_config(
        "task=char_lm", "trainer=smoke", "model=lstm", "model.units=16", "model.embedding_dim=8",
        "trainer.batch_size=2", "task.seq_length=8", "task.sample_length=20",
        "task.data.source=files", f"task.data.train={corpus}", *overrides,
    )


def recurrent_states(model):
    """The carried state variables of every recurrent layer, as arrays."""
    return [
        state.numpy()
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.RNN) and layer.stateful and layer.states and layer.states[0] is not None
        for state in layer.states
    ]


def test_streams_continue_across_batches_and_targets_are_shifted():
    ids = np.arange(100, dtype="int32")
    batches = list(characters.stream_batches(ids, batch_size=3, seq_length=4, split="training"))
    assert len(batches) == (99 // 3) // 4
    for (previous_inputs, _), (inputs, _) in zip(batches, batches[1:]):
        # Row b of a batch continues row b of the batch before it.
        np.testing.assert_array_equal(inputs.numpy()[:, 0], previous_inputs.numpy()[:, -1] + 1)
    for inputs, targets in batches:
        np.testing.assert_array_equal(targets.numpy(), inputs.numpy() + 1)


def test_too_short_a_split_names_the_split_and_the_fix():
    with pytest.raises(DataError, match="The validation text has 50 characters: too short for 8 streams"):
        characters.stream_batches(np.zeros(50, dtype="int32"), 8, 10, "validation")


class StateProbe(keras.callbacks.Callback):
    """Records whether the carried states are all zero at the start of every training batch."""

    def __init__(self):
        super().__init__()
        self.zero_at_batch_start = []

    def on_train_batch_begin(self, batch, logs=None):
        states = recurrent_states(self.model)
        self.zero_at_batch_start.append((batch, all(not np.any(state) for state in states)))


def fit_with_probe(tmp_path, bptt):
    keras.utils.set_random_seed(0)
    cfg = char_lm_config(tmp_path, f"task.bptt={bptt}")
    task = CharLanguageModelTask(cfg)
    train_data, _, _ = task.datasets()
    model = task.build_model()
    model.compile(optimizer="adam", loss=task.loss())
    probe = StateProbe()
    resets = StateResets(reset_every_batch=bptt == "windows")
    model.fit(train_data.take(4), epochs=2, callbacks=[resets, probe], shuffle=False, verbose=0)
    return task, model, probe.zero_at_batch_start


def test_truncated_bptt_carries_state_across_batches_and_resets_each_epoch(tmp_path):
    _, _, observed = fit_with_probe(tmp_path, "truncated")
    # Two epochs of four batches: zero at the first batch of each epoch, carried otherwise.
    assert observed == [(0, True), (1, False), (2, False), (3, False)] * 2


def test_windows_start_every_batch_from_a_zero_state(tmp_path):
    _, _, observed = fit_with_probe(tmp_path, "windows")
    assert all(zero for _, zero in observed)


def test_the_carried_state_changes_what_the_model_predicts(tmp_path):
    task, model, _ = fit_with_probe(tmp_path, "truncated")
    batches = list(task.datasets()[1])
    reset_recurrent_states(model)
    carried = [model.predict_on_batch(inputs) for inputs, _ in batches]
    fresh = []
    for inputs, _ in batches:
        reset_recurrent_states(model)
        fresh.append(model.predict_on_batch(inputs))
    np.testing.assert_allclose(carried[0], fresh[0], atol=1e-6)
    assert np.abs(carried[1] - fresh[1]).max() > 1e-4


@pytest.fixture
def generator(tmp_path):
    keras.utils.set_random_seed(1)
    task = CharLanguageModelTask(char_lm_config(tmp_path))
    task.datasets()
    return task.export_model(task.build_model()), task.vocabulary


def test_temperature_zero_is_argmax_and_top_k_one_is_greedy(generator):
    model, vocabulary = generator
    greedy = generate(model, vocabulary, "the ", 30, temperature=0)
    assert generate(model, vocabulary, "the ", 30, temperature=1.0, top_k=1, seed=3) == greedy
    # Greedy decoding by hand: argmax at every step, feeding the whole text so far.
    text = "the "
    for _ in range(30):
        reset_recurrent_states(model)
        logits = model.predict_on_batch(vocabulary.encode(text)[None])[0, -1]
        text += vocabulary.characters[int(np.argmax(logits))]
    assert "the " + greedy == text


def test_sampling_is_repeatable_with_a_seed(generator):
    model, vocabulary = generator
    first = generate(model, vocabulary, "t", 40, temperature=1.0, seed=7)
    assert generate(model, vocabulary, "t", 40, temperature=1.0, seed=7) == first
    assert generate(model, vocabulary, "t", 40, temperature=1.0, seed=8) != first


def reference_generate(model, vocabulary, prompt, length, temperature, top_k, seed):
    """Generation as taskzoo did it before its compiled loop: one model call per character."""
    rng = np.random.default_rng(seed)
    reset_recurrent_states(model)
    logits = model.predict_on_batch(vocabulary.encode(prompt)[None])[0, -1]
    generated = []
    for _ in range(length):
        generated.append(reference_decoding.choose_token(logits, temperature, top_k, rng))
        logits = model.predict_on_batch(np.array([[generated[-1]]], dtype="int32"))[0, -1]
    return vocabulary.decode(generated)


@pytest.mark.parametrize("temperature, top_k, seed", [(1.0, None, 7), (0.5, 5, 3), (1.5, 2, 11), (0.0, None, None)])
def test_the_compiled_sampler_draws_what_the_reference_sampler_draws(generator, temperature, top_k, seed):
    model, vocabulary = generator
    expected = reference_generate(model, vocabulary, "def f", 60, temperature, top_k, seed)
    assert generate(model, vocabulary, "def f", 60, temperature, top_k, seed) == expected


def test_one_compiled_sampling_loop_serves_every_temperature(generator):
    model, vocabulary = generator
    text_generator = TextGenerator(model)
    for temperature in (1.0, 0.5, 1.5):
        sampled = text_generator.generate(vocabulary, "def f", 60, temperature, None, seed=3)
        assert sampled == reference_generate(model, vocabulary, "def f", 60, temperature, None, 3)
    assert text_generator.continue_text.experimental_get_tracing_count() == 1


def test_score_is_the_sum_of_per_character_log_probabilities(generator):
    model, vocabulary = generator
    text = "the lazy fox, quickly"
    total, bits = score(model, vocabulary, text)
    # One character at a time, with the state carried: an independent path to the same number.
    reset_recurrent_states(model)
    expected = 0.0
    ids = vocabulary.encode(text)
    for current, following in zip(ids[:-1], ids[1:]):
        logits = model.predict_on_batch(np.array([[current]], dtype="int32"))[0, -1]
        expected += float(tf.nn.log_softmax(logits)[following])
    assert total == pytest.approx(expected, rel=1e-4)
    assert bits == pytest.approx(-expected / math.log(2) / (len(text) - 1), rel=1e-4)


def test_unseen_characters_map_to_the_unknown_symbol():
    vocabulary = characters.CharacterVocabulary.from_text("abc")
    assert list(vocabulary.encode("abz")) == [1, 2, 0]
    assert vocabulary.decode([1, 0]) == "a\ufffd"


@pytest.mark.slow
def test_a_tiny_model_learns_a_repeated_text_and_generates_it_back(tmp_path):
    cfg = char_lm_config(
        tmp_path, "trainer.epochs=20", "trainer.steps_per_epoch=null", "trainer.evaluation_steps=null",
        "trainer.learning_rate=0.01", "model.units=64", "trainer.batch_size=4", "task.seq_length=20",
        "model.dropout=0", "trainer.schedule=constant",
        text="hello world. " * 300,
    )
    results = train.run(cfg, run_dir=tmp_path / "run")
    assert results["test"]["bits_per_char"] < 0.3
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    vocabulary = characters.CharacterVocabulary.load(tmp_path / "run" / "vocabulary.json")
    assert generate(model, vocabulary, "hello", 40, temperature=0) == (" world. hello" * 4)[:40]


def test_default_corpus_is_the_standard_library_source():
    text = characters.stdlib_corpus(200_000)
    assert len(text) == 200_000
    assert "def " in text and "import " in text
    assert characters.stdlib_corpus(200_000) == text


def test_tfds_text_dataset_with_mock_data(tmp_path):
    cfg_overrides = ("task=char_lm", "trainer=smoke", "trainer.batch_size=2", "task.seq_length=4",
                     "task.data.source=tfds", "task.data.name=tiny_shakespeare")
    cfg = compose_config(*cfg_overrides)
    with tfds.testing.mock_data(num_examples=3):
        task = CharLanguageModelTask(cfg)
        train_data, _, _ = task.datasets()
    inputs, targets = next(iter(train_data))
    assert inputs.shape == (2, 4) and targets.shape == (2, 4)

    # A builder without a validation split: the validation text is cut off the end of the training text.
    with tfds.testing.mock_data(num_examples=3):
        task = CharLanguageModelTask(compose_config(*cfg_overrides, "task.data.validation_split=null",
                                                    "task.data.validation_fraction=0.25"))
        task.datasets()
    full_train = task.sizes["train"] + task.sizes["validation"]
    assert task.sizes["validation"] == full_train - int(full_train * 0.75) > 0


def test_tfds_offline_fails_fast(tmp_path):
    cfg = compose_config(
        "task=char_lm", "task.data.source=tfds", "task.data.name=tiny_shakespeare", f"task.data.data_dir={tmp_path}",
    )
    with pytest.raises(DataError, match="'tiny_shakespeare' is not prepared"):
        CharLanguageModelTask(cfg).datasets()


def test_bad_text_inputs(tmp_path):
    (tmp_path / "bad.txt").write_bytes("héllo\nwörld ".encode("utf-8") + b"\xff")
    with pytest.raises(DataError, match=r"bad.txt, line 2: invalid UTF-8 byte 0xff at byte offset 14"):
        characters.read_corpus(tmp_path / "bad.txt")
    with pytest.raises(DataError, match="no such file, directory or matching files"):
        characters.read_corpus(tmp_path / "missing*.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match="empty.txt: the corpus is empty"):
        characters.read_corpus(tmp_path / "empty.txt")
    # Checked when the task is built, before any text is read.
    with pytest.raises(ConfigError, match="cannot predict the next character"):
        CharLanguageModelTask(char_lm_config(tmp_path, "model.bidirectional=true"))


def test_a_directory_or_glob_is_read_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    assert characters.read_corpus(tmp_path) == "first\nsecond"
    assert characters.read_corpus(tmp_path / "*.txt") == "first\nsecond"


@pytest.mark.slow
def test_predict_from_the_command_line(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    run_dir = tmp_path / "run"
    trained = run_cli(
        ["task=char_lm", "model=gru", "trainer=smoke", "model.units=16", "trainer.batch_size=2",
         "task.seq_length=8", "task.data.source=files", f"task.data.train={corpus}", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    assert (run_dir / "samples").is_dir()

    sampled = run_cli([f"run_dir={run_dir}", "prompt=the, 'fox'", "length=30", "temperature=0.8", "seed=1"],
                      cwd=tmp_path, module="taskzoo.predict")
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("the, 'fox'") and len(sampled.stdout.rstrip("\n")) == len("the, 'fox'") + 30

    # Scoring, and bad options, in this process: tests/test_cli.py checks that the command turns
    # such an error into one line and exit status 2.
    capsys.readouterr()
    predict.predict([f"run_dir={run_dir}", 'score=To be, or not to be = "ça"'])
    assert "bits per character:" in capsys.readouterr().out
    (tmp_path / "samples_only").mkdir()
    for arguments, message in [
        ([f"run_dir={run_dir}", "temperature=hot"], "temperature='hot' is not a valid float."),
        ([f"run_dir={run_dir}", "beam=3"], "Unknown option beam= for a char_lm run"),
        ([f"run_dir={tmp_path / 'nothing'}", "score=ab"], "no such run directory."),
        ([f"run_dir={tmp_path / 'samples_only'}", "score=ab"], "no finished taskzoo run in it or below it"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            predict.predict(arguments)
    # A folder with the run below it: the run answers, and a line says which.
    predict.predict([f"run_dir={tmp_path}", "score=ab"])
    assert f"Using the newest finished run below {tmp_path}: {run_dir}" in capsys.readouterr().err


def test_characters_the_training_text_lacked_are_warned_about(capsys):
    vocabulary = characters.CharacterVocabulary.from_text("the cat sat")
    warn_of_unknown_characters("the cat", vocabulary, "prompt")
    warn_of_unknown_characters("the café €", vocabulary, "line 2")
    warn_of_unknown_characters("".join(chr(code) for code in range(0x41, 0x41 + 12)), vocabulary, "score")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "Warning: line 2: characters the model never saw in training (f é €); it reads each as one unknown character.",
        "Warning: score: characters the model never saw in training (A B C D E F G H I J and 2 more); it reads each "
        "as one unknown character.",
    ]
