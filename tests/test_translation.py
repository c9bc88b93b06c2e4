"""Translation: the decoder and its attention, greedy and beam decoding, data formats, TFDS, runs."""

import gzip
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import compose_config, event_tags, run_cli
from taskzoo import predict, train
from taskzoo.blocks.attention import AdditiveAttention, MeanAttention, MultiplicativeAttention
from taskzoo.blocks.decoder import RecurrentDecoder, StateBridge
import reference_decoding
from taskzoo.blocks import decoding
from taskzoo.data import parallel
from taskzoo.data.synthetic import number_pairs
from taskzoo.data.synthetic.number_pairs import date_pair, generate_pairs, number_pair
from taskzoo.errors import ConfigError, DataError
from taskzoo.tasks.base import warn_if_mostly_unknown, warn_of_empty_outputs
from taskzoo.tasks.translation import TranslationTask, Translator

TINY_TRANSLATION = [
    "task=translation", "trainer=smoke", "model.units=8", "model.embedding_dim=8",
    "task.data.num_train=64", "task.data.num_validation=8", "task.data.num_test=8",
    "task.eval_decode_examples=8", "task.beam_size=2",
]


def translation_config(*overrides):
    return compose_config(*TINY_TRANSLATION, *overrides)


def tiny_task(*overrides):
    task = TranslationTask(translation_config(*overrides))
    task.datasets()
    return task


def masked_cross_entropy_sum(targets, logits):
    losses = keras.ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return float(np.sum(np.asarray(losses) * (targets != 0)))


# The decoder: teacher forcing is the step-by-step decoder fed the reference tokens.


@pytest.mark.parametrize(
    "cell, attention, bidirectional",
    [("gru", "additive", True), ("lstm", "multiplicative", False), ("rnn", "none", True), ("lstm", "additive", True)],
)
def test_teacher_forced_loss_equals_the_sum_of_step_by_step_losses(cell, attention, bidirectional):
    task = tiny_task(f"model={cell}", f"task.attention={attention}", f"model.bidirectional={bidirectional}",
                     "model.num_layers=2")
    network = task.build_model()
    inputs, targets, _ = next(iter(task.datasets()[1]))
    targets = targets.numpy()
    teacher_forced = masked_cross_entropy_sum(targets, network(inputs, training=False))

    translator = Translator(network, task.tokenizer, task.source_vocabulary, task.target_vocabulary)
    states, memory_inputs = translator.generator.encode(inputs["source"])
    stepped = 0.0
    for position in range(targets.shape[1]):
        logits, states, _ = translator.generator.step(inputs["target_input"][:, position], states, memory_inputs)
        stepped += masked_cross_entropy_sum(targets[:, position], logits)
    assert stepped == pytest.approx(teacher_forced, rel=1e-5)


@pytest.mark.parametrize("layer_class", [AdditiveAttention, MultiplicativeAttention])
def test_attention_weights_sum_to_one_over_real_positions_and_are_zero_on_padding(layer_class):
    rng = np.random.default_rng(0)
    query = rng.normal(size=(3, 6)).astype("float32")
    memory = rng.normal(size=(3, 5, 4)).astype("float32") * 10
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)
    context, weights = layer_class(6)(query, memory, memory_mask=mask)
    weights = np.asarray(weights)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    # The context is the weighted sum of the memory: padded positions add nothing.
    np.testing.assert_allclose(context, np.einsum("bp,bpf->bf", weights, memory), rtol=1e-5, atol=1e-5)


def test_mean_attention_averages_the_real_positions_and_takes_one_position_silently():
    memory = np.arange(24, dtype="float32").reshape(2, 3, 4)
    mask = np.array([[1, 1, 1], [1, 1, 0]], dtype=bool)
    context, weights = MeanAttention()(np.zeros((2, 6), "float32"), memory, memory_mask=mask)
    np.testing.assert_allclose(weights, [[1 / 3] * 3, [0.5, 0.5, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(context, [memory[0].mean(axis=0), memory[1, :2].mean(axis=0)], rtol=1e-6)
    # A captioner's pooled features are a memory of one position: its weight is 1, with no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context, weights = MeanAttention()(np.zeros((2, 6), "float32"), memory[:, :1])
    np.testing.assert_array_equal(weights, np.ones((2, 1)))
    np.testing.assert_array_equal(context, memory[:, 0])


def test_evaluation_batches_hold_every_pair_once_with_teacher_forcing_inputs_and_padding_weighted_zero():
    # Pairs of several lengths, one with an empty source; the last target id is the end token.
    encoded = [([4 + index % 7] * (1 + index % 5 if index % 9 else 0), [5 + index % 3] * (1 + index % 4) + [parallel.END_ID])
               for index in range(40)]
    seen = []
    for inputs, target_output, weights in parallel.batches(encoded, 8, training=False, seed=0):
        for source, target_input, output, weight in zip(inputs["source"].numpy(), inputs["target_input"].numpy(),
                                                        target_output.numpy(), weights.numpy()):
            real = int(weight.sum())
            assert (weight[:real] == 1).all() and (output[real:] == parallel.PADDING_ID).all()
            assert target_input[0] == parallel.START_ID and (target_input[1:real] == output[: real - 1]).all()
            seen.append((tuple(int(token) for token in source if token != parallel.PADDING_ID), tuple(output[:real].tolist())))
    assert sorted(seen) == sorted((tuple(source), tuple(target)) for source, target in encoded)


def test_source_padding_changes_neither_the_translation_logits_nor_the_attention():
    task = tiny_task("model.bidirectional=true")
    network = task.build_model()
    decoder = network.get_layer("decoder")
    source = np.array([[5, 6, 7, 0]], dtype="int32")
    longer = np.array([[5, 6, 7, 0, 0, 0, 0]], dtype="int32")
    target_input = np.array([[parallel.START_ID, 4, 5]], dtype="int32")
    outputs = [np.asarray(network({"source": ids, "target_input": target_input})) for ids in (source, longer)]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)

    translator = Translator(network, task.tokenizer, task.source_vocabulary, task.target_vocabulary)
    states, (memory, _, memory_mask) = translator.generator.encode(tf.constant(longer))
    _, weights = decoder.teacher_forced(tf.constant(target_input), memory, memory_mask, states)
    weights = np.asarray(weights)[0]  # (target time, source time)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)
    assert (weights[:, 3:] == 0).all()


def test_the_bridge_maps_bidirectional_lstm_states_to_the_decoder_size():
    forward_h, forward_c, backward_h, backward_c = (np.full((2, 3), value, "float32") for value in (1, 2, 3, 4))
    bridge = StateBridge("lstm", units=5, bidirectional=True)
    states = bridge([[forward_h, forward_c, backward_h, backward_c]])
    assert [tuple(state.shape) for state in states[0]] == [(2, 5), (2, 5)]
    assert np.abs(np.asarray(states[0][0])).max() < 1  # tanh on the hidden state
    # Same cell, same size, one direction: the states pass through unchanged.
    same = StateBridge("gru", units=3)([[forward_h]])
    np.testing.assert_array_equal(same[0][0], forward_h)


def test_scheduled_sampling_feeds_own_samples_only_in_training():
    decoder = RecurrentDecoder(9, "gru", 6, 1, 4, attention="additive", scheduled_sampling=True)
    memory = np.random.default_rng(1).normal(size=(4, 3, 5)).astype("float32")
    target_input = np.tile(np.array([[2, 4, 5, 6, 7, 8]], "int32"), (4, 1))
    states = [[np.zeros((4, 6), "float32")]]
    arguments = (target_input, memory, np.ones((4, 3), bool), states)
    teacher_forced = np.asarray(decoder(*arguments, training=False))
    np.testing.assert_allclose(decoder(*arguments, training=True), teacher_forced, atol=1e-6)
    decoder.sampling_probability.assign(1.0)
    sampled = np.asarray(decoder(*arguments, training=True))
    # The first step always reads the start token; later steps read the model's own samples.
    np.testing.assert_allclose(sampled[:, 0], teacher_forced[:, 0], atol=1e-6)
    assert not np.allclose(sampled[:, 1:], teacher_forced[:, 1:], atol=1e-3)
    np.testing.assert_allclose(decoder(*arguments, training=False), teacher_forced, atol=1e-6)


# Decoding.


def random_translator(attention="additive"):
    task = tiny_task(f"task.attention={attention}", "model.units=16")
    return task, Translator(task.build_model(), task.tokenizer, task.source_vocabulary, task.target_vocabulary)


def test_the_search_is_traced_once_per_beam_size_for_batches_of_every_shape():
    task, translator = random_translator()
    sentences = [source for source, _ in task.pairs["validation"][:40]]
    # Batches of 8 sentences of several lengths, then one sentence alone: many input shapes.
    for beam_size in (1, 3):
        translator.translate(sentences, beam_size=beam_size, batch_size=8)
        translator.translate(sentences[:1], beam_size=beam_size)
    assert translator.generator.search.experimental_get_tracing_count() == 2
    # Its answers are checked against the reference decoders in the tests below.


TRAINED_DECODERS = [("gru", "additive"), ("lstm", "multiplicative"), ("rnn", "none")]


@pytest.fixture(scope="module", params=TRAINED_DECODERS, ids=lambda cell_attention: "-".join(cell_attention))
def trained_translator(request):
    """A small translator trained for 20 epochs of 32 steps: its translations end at several
    lengths before their maximum, and beam search and greedy search differ. (After 8 epochs the
    vanilla RNN's greedy translations all ran to their maximum length.)"""
    cell, attention = request.param
    keras.utils.set_random_seed(1)
    task = tiny_task(f"model={cell}", f"task.attention={attention}", "model.units=16", "task.data.num_train=256")
    train_data, _, _ = task.datasets()
    network = task.build_model()
    network.compile(optimizer=keras.optimizers.Adam(0.01), loss=task.loss())
    network.fit(train_data, epochs=20, steps_per_epoch=task.steps_per_epoch, shuffle=False, verbose=0)
    translator = Translator(network, task.tokenizer, task.source_vocabulary, task.target_vocabulary)
    sources = [source for source, _ in task.pairs["train"][:24]]
    source_ids = tf.constant(parallel.padded(
        [task.source_vocabulary.encode(task.tokenizer.tokenize(source)) for source in sources]))
    return translator.generator, source_ids


def assert_same_results(results, expected):
    assert [result["tokens"] for result in results] == [result["tokens"] for result in expected]
    np.testing.assert_allclose([result["score"] for result in results], [result["score"] for result in expected],
                               rtol=1e-6)
    for result, reference in zip(results, expected):
        if reference["attention"] is None:
            assert result["attention"] is None
        else:
            np.testing.assert_allclose(result["attention"], reference["attention"], atol=1e-6)


# The tests that share a trained translator run in one process (pytest-xdist's loadgroup), so
# that each of its models is trained once.
@pytest.mark.xdist_group("trained_translator")
@pytest.mark.parametrize("beam_size, length_penalty", [(1, 0.0), (2, 0.0), (5, 0.6), (3, 1.5)])
def test_the_compiled_decoder_gives_the_reference_decoders_answers(trained_translator, beam_size, length_penalty):
    generator, source_ids = trained_translator
    # Different maximum lengths in one batch: some translations are cut, others end.
    max_lengths = np.tile([4, 12, 7], len(source_ids))[: len(source_ids)]
    results = generator.generate(source_ids, max_lengths, beam_size, length_penalty)
    expected = reference_decoding.generate(generator, source_ids, max_lengths, beam_size, length_penalty)
    assert_same_results(results, expected)
    ended = {len(result["tokens"]) for result, max_length in zip(results, max_lengths) if len(result["tokens"]) < max_length}
    assert len(ended) > 1, "the test model should end translations at several lengths before their maximum"
    if beam_size == 1:
        beam_results = generator.generate(source_ids, max_lengths, 5, 0.0)
        assert [result["tokens"] for result in beam_results] != [result["tokens"] for result in results]


@pytest.mark.xdist_group("trained_translator")
def test_one_sentence_alone_is_decoded_as_in_a_batch(trained_translator):
    generator, source_ids = trained_translator
    max_lengths = np.full(len(source_ids), 10)
    for beam_size in (1, 4):
        together = generator.generate(source_ids, max_lengths, beam_size, 0.6)
        for index in (0, 5, len(source_ids) - 1):
            alone = generator.generate(source_ids[index : index + 1], max_lengths[:1], beam_size, 0.6)
            assert alone[0]["tokens"] == together[index]["tokens"]
            assert alone[0]["score"] == pytest.approx(together[index]["score"], abs=1e-5)


@pytest.mark.parametrize("attention", ["additive", "none"])
def test_a_beam_of_width_one_equals_greedy_search(attention):
    task, translator = random_translator(attention)
    sources = [source for source, _ in task.pairs["validation"]]
    greedy = translator.translate(sources, beam_size=1)
    source_ids = tf.constant(parallel.padded(
        [task.source_vocabulary.encode(task.tokenizer.tokenize(source)) for source in sources]))
    lengths = np.full(len(sources), 12)
    by_greedy = translator.generator.generate(source_ids, lengths, 1)
    by_beam = decoding.decoded_results(decoding.beam_search(
        translator.generator.step, *translator.generator.encode(source_ids), lengths, parallel.START_ID,
        parallel.END_ID, beam_size=1, length_penalty=0.6, banned_ids=translator.generator.banned_ids))
    assert [result["tokens"] for result in by_beam] == [result["tokens"] for result in by_greedy]
    assert [result["score"] for result in by_beam] == pytest.approx([result["score"] for result in by_greedy])
    assert len(greedy) == len(sources) and all(isinstance(result["text"], str) for result in greedy)


def table_step(table):
    """A decoder whose next-token probabilities depend on the previous token only."""
    log_table = tf.constant(np.log(table))

    def step(tokens, states, memory_inputs):
        return tf.gather(log_table, tokens), states, None

    return step


def decode_with_table(table, max_length, beam_size, length_penalty=0.0):
    states, memory = tf.zeros((1, 1)), tf.zeros((1, 1))
    arguments = (table_step(table), states, memory, [max_length], parallel.START_ID, parallel.END_ID)
    if beam_size == 1:
        return decoding.decoded_results(decoding.sample_search(*arguments))[0]
    return decoding.decoded_results(decoding.beam_search(*arguments, beam_size, length_penalty))[0]


def test_beam_search_finds_the_translation_that_greedy_search_misses():
    # A two-word language: after the start token "a" is likelier than "b", but "a" is rarely
    # followed by the end token, while "b" almost always is.
    start, end, a, b = parallel.START_ID, parallel.END_ID, 4, 5
    table = np.full((6, 6), 1e-9)
    table[start, [a, b]] = [0.6, 0.4]
    table[a, [end, a, b]] = [0.3, 0.35, 0.35]
    table[b, [end, a]] = [0.98, 0.02]
    table /= table.sum(axis=1, keepdims=True)

    greedy = decode_with_table(table, 2, beam_size=1)
    beam = decode_with_table(table, 2, beam_size=2)
    assert greedy["tokens"] == [a, a] and beam["tokens"] == [b]
    assert beam["score"] == pytest.approx(np.log(0.4 * 0.98), rel=1e-6)
    assert greedy["score"] == pytest.approx(np.log(0.6 * 0.35), rel=1e-6)  # cut at the maximum length


def test_unlikely_early_endings_do_not_stop_the_beam_before_the_likely_translation_ends():
    # A confident model: "a b c" then the end token, each with probability 0.97; ending early
    # is possible but unlikely (0.01), so an early ending is among the two best candidates at
    # every step without being the best translation.
    start, end, a, b, c = parallel.START_ID, parallel.END_ID, 4, 5, 6
    table = np.full((7, 7), 1e-9)
    table[start, [a, end]] = [0.97, 0.01]
    table[a, [b, end]] = [0.97, 0.01]
    table[b, [c, end]] = [0.97, 0.01]
    table[c, end] = 0.97
    table /= table.sum(axis=1, keepdims=True)
    for length_penalty in (0.0, 0.6):
        assert decode_with_table(table, 10, beam_size=2, length_penalty=length_penalty)["tokens"] == [a, b, c]


def test_banned_tokens_are_never_chosen_even_where_they_are_likeliest():
    # Padding or the start token is the likeliest next token after every token, and the
    # vocabulary of six leaves four allowed tokens, fewer than the 2 x 3 extensions a beam of
    # three ranks for each hypothesis.
    padding, unknown, start, end, a, b = range(6)
    banned = (padding, start)
    table = np.full((6, 6), 1e-3)
    table[start, [padding, start, a, b, end]] = [0.5, 0.2, 0.15, 0.1, 0.05]
    table[a, [start, b, end, unknown]] = [0.6, 0.25, 0.1, 0.05]
    table[b, [padding, end, a]] = [0.7, 0.2, 0.1]
    table /= table.sum(axis=1, keepdims=True)
    max_lengths = np.array([1, 2, 5])
    arguments = (table_step(table), tf.zeros((3, 1)), tf.zeros((3, 1)), max_lengths, start, end)
    searches = [
        (decoding.sample_search(*arguments, banned_ids=banned, skip_ended=True),
         reference_decoding.greedy_decode(*arguments, banned_ids=banned)),
        (decoding.beam_search(*arguments, 3, 0.6, banned_ids=banned, skip_ended=True),
         reference_decoding.beam_search(*arguments, beam_size=3, length_penalty=0.6, banned_ids=banned)),
    ]
    for decoded, expected in searches:
        results = decoding.decoded_results(decoded)
        assert [result["tokens"] for result in results] == [result["tokens"] for result in expected]
        assert [result["score"] for result in results] == pytest.approx([result["score"] for result in expected])
        assert not set(banned) & {token for result in results for token in result["tokens"]}
    # Greedy search takes the likeliest allowed token: a, then b, then the end token.
    assert [result["tokens"] for result in decoding.decoded_results(
        decoding.sample_search(*arguments, banned_ids=banned))] == [[a], [a, b], [a, b]]


def test_the_searches_skip_the_rows_that_ended_and_answer_the_same():
    # A chain start, 4, 5, 6, 7, end that may end early at every token: greedy outputs are cut
    # by their maximum lengths only, sampled outputs end where their draws say.
    start, end = parallel.START_ID, parallel.END_ID
    table = np.full((8, 8), 0.01)
    for token, following in ((start, 4), (4, 5), (5, 6), (6, 7), (7, end)):
        table[token, following] = 0.6
    table[4:8, end] += 0.25
    table /= table.sum(axis=1, keepdims=True)
    step = table_step(table)
    rows_stepped = tf.Variable(0)

    def counting_step(tokens, states, memory_inputs):
        rows_stepped.assign_add(tf.shape(tokens)[0])
        return step(tokens, states, memory_inputs)

    max_lengths = np.array([1, 9, 3, 9, 2, 9])
    arguments = (counting_step, tf.zeros((6, 1)), tf.zeros((6, 1)), max_lengths, start, end)
    uniforms = tf.constant(np.random.default_rng(0).random((6, 9)))
    for search, options in [(decoding.sample_search, {}),
                            (decoding.sample_search, {"temperature": 1.0, "uniforms": uniforms}),
                            (decoding.beam_search, {"beam_size": 3, "length_penalty": 0.6})]:
        decoded, rows = {}, {}
        for skip_ended in (False, True):
            rows_stepped.assign(0)
            decoded[skip_ended] = search(*arguments, **options, skip_ended=skip_ended)
            rows[skip_ended] = int(rows_stepped.numpy())
        results, expected = decoding.decoded_results(decoded[True]), decoding.decoded_results(decoded[False])
        assert [result["tokens"] for result in results] == [result["tokens"] for result in expected]
        assert [result["score"] for result in results] == pytest.approx([result["score"] for result in expected])
        if search is decoding.sample_search:
            # Without skipping, every row runs until the last output ends; with it, each row
            # runs its own steps only.
            step_counts = decoded[True].step_counts.numpy()
            assert len(set(step_counts)) > 2
            assert rows[False] == 6 * step_counts.max() and rows[True] == step_counts.sum()
        else:
            assert rows[True] < rows[False]


def test_the_maximum_output_length_is_respected_by_both_decoders():
    task, translator = random_translator()
    translator.max_output_length = 3
    for beam_size in (1, 3):
        for result in translator.translate([source for source, _ in task.pairs["test"]], beam_size=beam_size):
            assert len(result["tokens"]) <= 3
            # One row of attention per decoding step: the end token's step is the last one, if any.
            assert result["attention"].shape[0] in (len(result["tokens"]), len(result["tokens"]) + 1)
            assert result["attention"].shape[1] == len(result["source_tokens"])


# The generated data.


def test_the_runs_of_a_sweep_in_one_process_spell_the_pairs_once(monkeypatch):
    first = generate_pairs([30, 5, 5], seed=11)
    # Spelling is not needed again: the same pairs come back, as lists a run may change freely.
    monkeypatch.setattr(number_pairs, "_draw_item", lambda rng: pytest.fail("the pairs were spelled again"))
    second = generate_pairs([30, 5, 5], seed=11)
    assert second == first
    second[0].clear()
    assert generate_pairs([30, 5, 5], seed=11) == first


def test_generated_pairs_are_deterministic_disjoint_and_need_reordering():
    first = generate_pairs([50, 10, 10], seed=3)
    # Generated again, not read from the cache of recent pairs.
    assert first == [list(split) for split in number_pairs._generated_pairs.__wrapped__((50, 10, 10), 3)]
    assert first != generate_pairs([50, 10, 10], seed=4)
    train_sources = {source for source, _ in first[0]}
    assert not train_sources & {source for source, _ in first[2]}
    assert number_pair(71) == ("seventy-one", "soixante et onze")
    assert number_pair(97) == ("ninety-seven", "quatre-vingt-dix-sept")
    import datetime

    # The month comes before the day in English, after it in French; ordinals become cardinals.
    assert date_pair(datetime.date(1999, 3, 3)) == (
        "Wednesday, March third, nineteen ninety-nine",
        "mercredi trois mars mille neuf cent quatre-vingt-dix-neuf",
    )
    assert date_pair(datetime.date(2001, 5, 1))[1].split()[1] == "premier"


def test_tokenizer_words_punctuation_and_characters():
    words = parallel.Tokenizer("word", lowercase=True, split_punctuation=True)
    assert words.tokenize("Ein Mann, der  Fahrrad fährt.") == ["ein", "mann", ",", "der", "fahrrad", "fährt", "."]
    assert words.detokenize(["a", "t", "-", "shirt", ",", "(", "red", ")", "."]) == "a t-shirt, (red)."
    assert parallel.Tokenizer("word", lowercase=False, split_punctuation=False).tokenize("Hi, you.") == ["Hi,", "you."]
    assert parallel.Tokenizer("char").tokenize("Ab c") == ["a", "b", " ", "c"]
    vocabulary = parallel.Vocabulary.build([["b", "a", "b"], ["c", "b", "a"]], max_size=6, min_frequency=2)
    assert vocabulary.tokens == [*parallel.SPECIAL_TOKENS, "b", "a"]
    assert vocabulary.encode(["a", "zzz"]) == [5, parallel.UNKNOWN_ID]
    assert vocabulary.decode([4, 5, parallel.END_ID, 4]) == ["b", "a"]


# Local files.


def write_tsv(path, pairs, extra_column=True):
    lines = [f"{source}\t{target}" + ("\tCC-BY 2.0 (France) Attribution" if extra_column else "")
             for source, target in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PAIRS = [(f"ich sehe {count} hunde .", f"i see {count} dogs .") for count in range(40)]


def files_config(*overrides):
    return translation_config("task.data.source=files", "task.min_frequency=1", *overrides)


def test_a_tsv_file_of_pairs_extra_columns_ignored_and_reversible(tmp_path):
    path = write_tsv(tmp_path / "deu.txt", PAIRS)
    task = tiny_task("task.data.source=files", f"task.data.train={path}")
    assert sum(len(pairs) for pairs in task.pairs.values()) == 40
    assert len(task.pairs["test"]) == 2 and len(task.pairs["validation"]) == 2  # 5% each, by seed
    assert task.pairs["train"][0] == PAIRS[0] or task.pairs["train"][0] in PAIRS
    assert "dogs" not in task.source_vocabulary.ids and "dogs" in task.target_vocabulary.ids
    reversed_task = tiny_task("task.data.source=files", f"task.data.train={path}", "task.data.reverse=true")
    assert "dogs" in reversed_task.source_vocabulary.ids and "hunde" in reversed_task.target_vocabulary.ids
    again = tiny_task("task.data.source=files", f"task.data.train={path}")
    assert again.pairs == task.pairs


def test_line_aligned_files_plain_and_gzip(tmp_path):
    (tmp_path / "train.de").write_text("\n".join(source for source, _ in PAIRS) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "train.en.gz", "wt", encoding="utf-8") as file:
        file.write("\n".join(target for _, target in PAIRS) + "\n")
    (tmp_path / "val.de").write_text("ich sehe 3 hunde .\n", encoding="utf-8")
    (tmp_path / "val.en").write_text("i see 3 dogs .\n", encoding="utf-8")
    task = tiny_task(
        "task.data.source=files", f"task.data.train={tmp_path / 'train'}", f"task.data.validation={tmp_path / 'val'}",
        "task.data.source_lang=de", "task.data.target_lang=en",
    )
    assert task.pairs["validation"] == [("ich sehe 3 hunde .", "i see 3 dogs .")]
    # Every line pair once, aligned, in train or test (carved off by seed).
    assert sorted(task.pairs["train"] + task.pairs["test"]) == sorted(PAIRS)
    assert task.languages == ("de", "en")


def test_bad_parallel_inputs_name_the_problem(tmp_path, caplog):
    (tmp_path / "a.de").write_text("eins\nzwei\ndrei\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        tiny_task("task.data.source=files", f"task.data.train={tmp_path / 'a'}",
                  "task.data.source_lang=de", "task.data.target_lang=en")
    assert str(error.value) == f"{tmp_path / 'a.de'} has 3 lines but {tmp_path / 'a.en'} has 2: line-aligned files need the same number of lines."

    with pytest.raises(DataError, match=r"b\.en: no such file \(nor b\.en\.gz\)"):
        tiny_task("task.data.source=files", f"task.data.train={tmp_path / 'b'}",
                  "task.data.source_lang=en", "task.data.target_lang=en")

    bad = tmp_path / "bad.tsv"
    bad.write_text("hallo\thello\nkein tab hier\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv, line 2: expected a source and a target sentence separated by a tab"):
        tiny_task("task.data.source=files", f"task.data.train={bad}")

    latin = tmp_path / "latin.tsv"
    latin.write_bytes("gr\u00fc\u00dfe\tgreetings\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.tsv, line 1: invalid UTF-8 byte 0xfc at byte offset 2"):
        tiny_task("task.data.source=files", f"task.data.train={latin}")

    with pytest.raises(ConfigError, match="need both task.data.source_lang and task.data.target_lang"):
        tiny_task("task.data.source=files", f"task.data.train={bad}", "task.data.source_lang=de")
    with pytest.raises(ConfigError, match="task.data.source=files needs task.data.train"):
        tiny_task("task.data.source=files")
    with pytest.raises(ConfigError, match="task=translation needs model.num_layers of 1 or more: the encoder"):
        tiny_task("model.num_layers=0")

    # Empty sides are left out, and so are over-long training pairs, each with a warning.
    pairs = PAIRS + [("", "nothing"), ("nichts", " ")] + [(" ".join(["lang"] * 30), "long")]
    mixed = write_tsv(tmp_path / "mixed.tsv", pairs, extra_column=False)
    task = tiny_task("task.data.source=files", f"task.data.train={mixed}", f"task.data.test={mixed}",
                     f"task.data.validation={mixed}", "task.data.max_length=20")
    assert task.dropped["train"] == {"empty": 2, "too_long": 1}
    assert task.dropped["test"] == {"empty": 2, "too_long": 0}  # evaluation keeps long pairs
    assert len(task.pairs["test"]) == 41
    assert f"Left out 2 train pairs with an empty side (the first at {mixed}, line 41)" in caplog.text


def test_a_tfds_translation_dataset_through_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        task = TranslationTask(translation_config(
            "task.data.source=tfds", "task.data.name=ted_hrlr_translate/pt_to_en", "task.min_frequency=1"))
        train_batches = task.datasets()[0]
    assert task.languages == ("pt", "en")
    assert {name: len(pairs) for name, pairs in task.pairs.items()} == {"train": 12, "validation": 12, "test": 12}
    inputs, targets, weights = next(iter(train_batches))
    assert inputs["source"].shape[0] == targets.shape[0] and weights.shape == targets.shape


def test_an_unprepared_tfds_translation_dataset_fails_with_one_line(tmp_path):
    with pytest.raises(DataError) as error:
        tiny_task("task.data.source=tfds", "task.data.name=ted_hrlr_translate/pt_to_en", f"task.data.data_dir={tmp_path}")
    assert "is not prepared in" in str(error.value) and "\n" not in str(error.value)


# Whole runs.


@pytest.mark.slow
def test_a_small_model_memorises_a_handful_of_pairs_and_translates_them_back(tmp_path):
    pairs = [("ich sehe zwei hunde", "i see two dogs"), ("der mann fährt rad", "the man rides a bike"),
             ("eine frau liest", "a woman reads"), ("zwei kinder spielen im park", "two children play in the park"),
             ("ein hund läuft", "a dog runs"), ("die frau fährt rad", "the woman rides a bike")]
    path = write_tsv(tmp_path / "few.tsv", pairs)
    cfg = translation_config(
        "task.data.source=files", f"task.data.train={path}", f"task.data.validation={path}", f"task.data.test={path}",
        "task.min_frequency=1", "model.units=32", "model.embedding_dim=16", "trainer.batch_size=6",
        "trainer.epochs=150", "trainer.steps_per_epoch=1", "trainer.learning_rate=0.01", "task.sample_sentences=0",
        "trainer.early_stopping_patience=null", "trainer.schedule=constant",
    )
    results = train.run(cfg, run_dir=tmp_path / "run")
    assert results["test"]["bleu"] == pytest.approx(100.0)
    assert results["test"]["accuracy"] == pytest.approx(1.0)


@pytest.mark.slow
def test_a_run_logs_translations_and_attention_and_its_reload_translates_the_same(tmp_path, capsys):
    run_dir = tmp_path / "run"
    trained = run_cli([*TINY_TRANSLATION, "task.data.num_train=200", "trainer.steps_per_epoch=20",
                       "trainer.evaluation_steps=null", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    results = json.loads((run_dir / "metrics.json").read_text())
    assert set(results["test"]) == {"accuracy", "loss", "perplexity", "bleu"}
    # Perplexity is exp of the mean over all test tokens; Keras' loss averages per batch, so the
    # two agree only roughly.
    assert results["test"]["perplexity"] == pytest.approx(np.exp(results["test"]["loss"]), rel=0.15)
    assert {"epoch_bleu", "epoch_accuracy", "epoch_perplexity"} <= set(event_tags(run_dir / "validation"))
    samples = event_tags(run_dir / "samples")
    assert samples["validation/translations"] == 2 and samples["validation/attention_0"] == 2

    # The reloaded model gives the test BLEU the run recorded, with the configured beam.
    task = tiny_task("task.data.num_train=200")
    reloaded = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    sources, references = zip(*task.pairs["test"])
    translations = task.translator(reloaded).translate(sources, beam_size=2, length_penalty=0.6)
    assert task.bleu(translations, references) == pytest.approx(results["test"]["bleu"])

    # The predict command: free text passes through as typed; the attention heatmap is saved.
    text = 'Monday, May "first", nineteen = ninety'
    heatmap = tmp_path / "attention.png"
    completed = run_cli([f"run_dir={run_dir}", f"text={text}", "beam_size=3", f"attention={heatmap}"],
                        cwd=tmp_path, module="taskzoo.predict")
    assert completed.returncode == 0, completed.stderr
    expected = task.translator(reloaded).translate([text], beam_size=3, length_penalty=0.6)[0]["text"]
    assert completed.stdout.splitlines()[0] == expected
    assert ("the translation is empty" in completed.stderr) == (expected == "")
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A picture path under a file: one line naming the path.
    (tmp_path / "a_file").write_text("")
    unwritable = run_cli([f"run_dir={run_dir}", "text=one", f"attention={tmp_path / 'a_file' / 'x.png'}"],
                         cwd=tmp_path, module="taskzoo.predict")
    assert unwritable.returncode == 2 and "Traceback" not in unwritable.stderr
    assert unwritable.stderr.strip().splitlines()[-1].startswith(f"Error: {tmp_path / 'a_file' / 'x.png'}: cannot write the file")

    # A beam of no hypotheses, checked in this process.
    with pytest.raises(ConfigError, match=r"^beam_size must be 1 or more; received 0\.$"):
        predict.predict([f"run_dir={run_dir}", "text=one", "beam_size=0"])

    # A file: one line out per line in, a blank line for a blank line; an empty translation is
    # named by its line on standard error.
    lines = ["twenty one", "", "Monday, May first", "one"]
    (tmp_path / "sentences.txt").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    predict.predict([f"run_dir={run_dir}", f"file={tmp_path / 'sentences.txt'}", "beam_size=3"])
    captured = capsys.readouterr()
    answers = captured.out.split("\n")[: len(lines)]
    assert answers == [
        task.translator(reloaded).translate([line], beam_size=3, length_penalty=0.6)[0]["text"] if line else ""
        for line in lines
    ]
    empty = [f"line {number}" for number, (line, answer) in enumerate(zip(lines, answers), start=1) if line and not answer]
    assert all(place in captured.err for place in empty) and ("empty" in captured.err) == bool(empty)


def test_an_empty_output_is_flagged_on_standard_error_only(capsys):
    warn_of_empty_outputs(["", "un deux", ""], "translation", ["line 1", "line 2", "line 4"])
    warn_of_empty_outputs([""], "caption", ["cat.png"])
    warn_of_empty_outputs(["un deux"], "translation", ["text"])
    warn_of_empty_outputs([""] * 7, "translation", [f"line {number}" for number in range(1, 8)])
    captured = capsys.readouterr()
    assert captured.out == ""
    reason = "the model chose the end token first, as a model trained briefly often does."
    assert captured.err.splitlines() == [
        f"Warning: line 1, line 4: the translations are empty: {reason}",
        f"Warning: cat.png: the caption is empty: {reason}",
        f"Warning: line 1, line 2, line 3, line 4, line 5 and 2 more: the translations are empty: {reason}",
    ]


def test_texts_of_mostly_unknown_words_are_flagged_on_standard_error_only(capsys):
    known = {"the", "cat"}.__contains__
    warn_if_mostly_unknown(["the", "zzyzx", "qwrtp"], known, "line 1")
    warn_if_mostly_unknown(["zzyzx", "qwrtp"], known, "line 2")
    warn_if_mostly_unknown(["the", "cat", "zzyzx"], known, "line 3")  # Most words known: no warning.
    warn_if_mostly_unknown(["the", "zzyzx"], known, "line 4")  # Half: no warning.
    warn_if_mostly_unknown([], known, "line 5")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "Warning: line 1: 2 of 3 words are not in the model's vocabulary; the answer rests on the others.",
        "Warning: line 2: none of its 2 words is in the model's vocabulary; the answer rests on none of them.",
    ]


def test_decoding_scores_respect_the_evaluation_cap_of_smoke_runs():
    # A smoke run evaluates 2 batches of 8: its BLEU decodes at most those 16 pairs.
    smoke = TranslationTask(translation_config())
    assert smoke.decode_limit(1000) == 16 and smoke.decode_limit(1000, limit=8) == 8
    full = TranslationTask(translation_config("trainer.evaluation_steps=null"))
    assert full.decode_limit(1000) == 1000 and full.decode_limit(1000, limit=300) == 300
