"""Sequence tagging: the file readers, the generated corpus, padding, the scores, TFDS, the whole
run with its reload and predict, and the gap between one and two directions."""

import gzip
import json

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from omegaconf import OmegaConf

from conftest import compose_config, event_tags
from taskzoo import predict, train
from taskzoo.blocks.words import CharacterWordEncoder, WordDropout
from taskzoo.data import tagged
from taskzoo.data.synthetic.tagged_sentences import generate_tagged_sentences
from taskzoo.errors import ConfigError, DataError
from taskzoo.tasks.tagging import TaggingTask, split_words, tag_scores

TINY_TAGGING = [
    "task=tagging", "trainer=smoke", "model.units=8", "model.embedding_dim=8", "task.char_units=4",
    "task.char_embedding_dim=4", "task.data.num_train=64", "task.data.num_validation=16", "task.data.num_test=16",
]

# A CoNLL-U fixture: comments, a multiword token (French "du" = "de le"), an empty node, and a
# sentence that ends the file without a blank line.
CONLLU = """# newdoc id = fixture
# sent_id = 1
# text = Il parle du livre.
1\tIl\til\tPRON\tPRP\t_\t2\tnsubj\t_\t_
2\tparle\tparler\tVERB\tVBZ\t_\t0\troot\t_\t_
3-4\tdu\t_\t_\t_\t_\t_\t_\t_\t_
3\tde\tde\tADP\tIN\t_\t5\tcase\t_\t_
4\tle\tle\tDET\tDT\t_\t5\tdet\t_\t_
5\tlivre\tlivre\tNOUN\tNN\t_\t2\tobl\t_\tSpaceAfter=No
6\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_

# sent_id = 2
1\tSue\tSue\tPROPN\tNNP\t_\t2\tnsubj\t_\t_
2\tlikes\tlike\tVERB\tVBZ\t_\t0\troot\t_\t_
3\tcoffee\tcoffee\tNOUN\tNN\t_\t2\tobj\t_\t_
3.1\tlikes\tlike\tVERB\tVBZ\t_\t_\t_\t2:conj\tCopyOf=2
4\tand\tand\tCCONJ\tCC\t_\t5\tcc\t_\t_
5\tBill\tBill\tPROPN\tNNP\t_\t2\tconj\t_\t_
6\ttea\ttea\tNOUN\tNN\t_\t5\torphan\t_\t_"""


def write(path, text, compress=False):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# Readers.


@pytest.mark.parametrize("compress", [False, True])
def test_conllu_reader_keeps_syntactic_words_and_skips_ranges_and_empty_nodes(tmp_path, compress):
    path = write(tmp_path / ("fixture.conllu" + (".gz" if compress else "")), CONLLU, compress)
    first, second = tagged.read_tagged_file(path)
    assert first.words == ["Il", "parle", "de", "le", "livre", "."]
    assert first.tags == ["PRON", "VERB", "ADP", "DET", "NOUN", "PUNCT"]
    assert second.words == ["Sue", "likes", "coffee", "and", "Bill", "tea"]
    assert second.tags == ["PROPN", "VERB", "NOUN", "CCONJ", "PROPN", "NOUN"]
    [xpos, _] = tagged.read_tagged_file(path, tag_column="xpos")
    assert xpos.tags == ["PRP", "VBZ", "IN", "DT", "NN", "."]


def test_format_is_detected_from_the_content_without_the_extension(tmp_path):
    path = write(tmp_path / "train.txt", CONLLU)
    assert tagged.read_tagged_file(path)[0].tags[2] == "ADP"


@pytest.mark.parametrize(
    "text, options, expected",
    [
        # CoNLL-2003: spaces, four columns, -DOCSTART-, the tag in the last column by default.
        ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n",
         {}, [(["EU", "rejects"], ["B-ORG", "O"]), (["Peter"], ["B-PER"])]),
        ("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n", {"tag_column": "2"}, [(["EU", "rejects"], ["NNP", "VBZ"])]),
        # Tabs, Windows line endings, a word column that is not the first.
        ("1\tThe\tDET\r\n2\tcat\tNOUN\r\n\r\n\r\n1\tSits\tVERB\r\n", {"word_column": 2},
         [(["The", "cat"], ["DET", "NOUN"]), (["Sits"], ["VERB"])]),
        # A "#" is a word of a column file, not a comment.
        ("# #\n5 CD\n", {}, [(["#", "5"], ["#", "CD"])]),
    ],
)
def test_column_reader(tmp_path, text, options, expected):
    path = write(tmp_path / "train.txt", text)
    sentences = tagged.read_tagged_file(path, **options)
    assert [(sentence.words, sentence.tags) for sentence in sentences] == expected


@pytest.mark.parametrize(
    "name, text, options, words",
    [
        ("a.conllu", "1\tcat\tcat\tNOUN\n", {}, ["a.conllu", "line 1", "10 tab-separated"]),
        ("a.conllu", CONLLU.replace("4\tle\tle\tDET", "x\tle\tle\tDET"), {}, ["line 8", "'x'", "word ID"]),
        ("a.conllu", CONLLU.replace("\n\n# sent_id = 2", ""), {}, ["line 11", "blank line"]),
        ("a.conllu", CONLLU.replace("NOUN\tNN", "NOUN\t_"), {"tag_column": "xpos"}, ["line 9", "XPOS", "upos"]),
        ("a.conllu", "# only a comment\n\n", {}, ["a.conllu", "no sentence"]),
        ("a.txt", "word\n", {}, ["a.txt", "line 1", "at least 2 columns"]),
        ("a.txt", "a b\nc\n", {"tag_column": "3"}, ["line 1", "at least 3"]),
    ],
)
def test_a_bad_tagged_file_names_file_line_and_cause(tmp_path, name, text, options, words):
    path = write(tmp_path / name, text)
    with pytest.raises(DataError) as raised:
        tagged.read_tagged_file(path, **options)
    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_a_tag_column_that_does_not_fit_the_format(tmp_path):
    with pytest.raises(ConfigError, match="upos or xpos"):
        tagged.read_tagged_file(write(tmp_path / "a.conllu", CONLLU), tag_column="ner")
    with pytest.raises(ConfigError, match="column number"):
        tagged.read_tagged_file(write(tmp_path / "a.txt", "a b\n"), tag_column="upos")


def test_long_words_are_read_by_their_beginning_and_end():
    assert tagged.word_characters("internationalisation", 10) == "interation"
    assert tagged.word_characters("short", 10) == "short"


def test_split_words_splits_punctuation_off_words():
    assert split_words("They book a flight.") == ["They", "book", "a", "flight", "."]
    assert split_words('"Hi," she said ...') == ['"', "Hi", ",", '"', "she", "said", "..."]


# The generated corpus.


def test_generated_sentences_are_deterministic_and_need_the_words_after():
    first = generate_tagged_sentences(400, seed=3, split="train")
    assert first == generate_tagged_sentences(400, seed=3, split="train")
    assert first != generate_tagged_sentences(400, seed=3, split="test")
    assert all(len(words) == len(tags) for words, tags in first)
    # Two sentences that agree up to a word and tag it differently: only the words after it
    # tell the tags apart.
    tags_after_prefix = {}
    for words, tags in generate_tagged_sentences(3000, seed=0, split="train"):
        for position in range(len(words)):
            key = tuple(word.lower() for word in words[: position + 1])
            tags_after_prefix.setdefault(key, set()).add(tags[position])
    ambiguous = [prefix for prefix, tags in tags_after_prefix.items() if len(tags) > 1]
    assert len(ambiguous) > 50
    assert ("book",) in ambiguous and ("that",) in ambiguous


# Padding and the blocks.


def test_padded_words_change_neither_tags_nor_loss():
    cfg = compose_config(*TINY_TAGGING, "model=lstm", "model.bidirectional=true", "model.dropout=0.3")
    task = TaggingTask(cfg)
    task.datasets()
    network = task.build_model()
    encoded = task.encoded["train"]
    words, characters, tags = encoded.word_ids[0], encoded.character_ids[0], encoded.tag_ids[0]
    length = len(words)
    plain = {"words": words[None], "characters": characters[None]}
    padded = {"words": np.concatenate([words, np.zeros(5, np.int32)])[None],
              "characters": np.concatenate([characters, np.zeros((5, characters.shape[1]), np.int32)])[None]}
    loss = task.loss()
    logits = np.asarray(network(plain, training=False))
    padded_logits = np.asarray(network(padded, training=False))
    np.testing.assert_allclose(padded_logits[:, :length], logits, rtol=1e-5, atol=1e-5)
    plain_loss = loss(tags[None], logits, np.ones((1, length)))
    padded_loss = loss(np.concatenate([tags, np.zeros(5, np.int32)])[None], padded_logits,
                       (np.arange(length + 5) < length)[None].astype("float32"))
    assert float(padded_loss) == pytest.approx(float(plain_loss), rel=1e-5)


def test_character_encoder_reads_real_words_only():
    encoder = CharacterWordEncoder(vocabulary_size=12, embedding_dim=4, cell="gru", units=3)
    words = np.array([[[2, 3, 4, 0], [5, 0, 0, 0], [0, 0, 0, 0]]], np.int32)
    encoded = np.asarray(encoder(words))
    assert encoded.shape == (1, 3, 6)
    assert np.abs(encoded[0, :2]).sum() > 0 and not encoded[0, 2].any()
    # Trailing character padding beyond the batch's longest word changes nothing.
    wider = np.concatenate([words, np.zeros((1, 3, 6), np.int32)], axis=-1)
    np.testing.assert_allclose(np.asarray(encoder(wider)), encoded, atol=1e-6)
    # The same word gives the same vector wherever it stands.
    np.testing.assert_allclose(np.asarray(encoder(words[:, 1:2]))[0, 0], encoded[0, 1], atol=1e-6)


def test_word_dropout_replaces_real_words_in_training_only():
    dropout = WordDropout(0.5, unknown_id=1, seed=4)
    ids = np.tile(np.array([[5, 6, 7, 8, 9, 10, 0, 0]], np.int32), (50, 1))
    np.testing.assert_array_equal(np.asarray(dropout(ids, training=False)), ids)
    dropped = np.asarray(dropout(ids, training=True))
    assert (dropped[:, 6:] == 0).all()
    replaced = dropped[:, :6] == 1
    assert 0.35 < replaced.mean() < 0.65
    assert (dropped[:, :6][~replaced] == ids[:, :6][~replaced]).all()


def test_tag_scores():
    predictions = [np.array([0, 1, 1]), np.array([2, 2])]
    targets = [np.array([0, 1, 2]), np.array([2, 0])]
    unseen = [np.array([False, True, True]), np.array([False, True])]
    scores = tag_scores(predictions, targets, unseen)
    # Unseen words: right, wrong, wrong.
    assert scores["oov_accuracy"] == pytest.approx(1 / 3)
    # Per-tag F1: tag 0 (p 1, r 1/2) 2/3; tag 1 (p 1/2, r 1) 2/3; tag 2 (p 1/2, r 1/2) 1/2.
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)
    assert tag_scores(predictions, targets, [np.zeros(3, bool), np.zeros(2, bool)])["oov_accuracy"] is None


# Files and TFDS through the task.


def test_missing_splits_are_carved_from_the_training_file_and_tags_come_from_all_splits(tmp_path):
    sentences = generate_tagged_sentences(60, seed=1, split="train")
    lines = ["\n".join(f"{word}\t{tag}" for word, tag in zip(words, tags)) for words, tags in sentences]
    train_path = write(tmp_path / "train.tsv", "\n\n".join(lines) + "\n")
    test_path = write(tmp_path / "test.tsv", "Zorps\tPROPN\n.\tPUNCT\n")
    cfg = compose_config(*TINY_TAGGING, "task.data.source=files", f"task.data.train={train_path}",
                         f"task.data.test={test_path}")
    task = TaggingTask(cfg)
    task.datasets()
    assert {name: len(split) for name, split in task.sentences.items()} == {"train": 54, "validation": 6, "test": 1}
    # A tag only the test split holds is known to the model (it counts as an error there).
    assert task.encoder.tags[-1] == "PROPN" and "PROPN" not in task.encoder.tags[:-1]
    assert task.encoded["test"].unseen[0].tolist() == [True, False]


def tagged_examples(builder, *args, **kwargs):
    """Mock examples of a TFDS tagging builder whose tokens and tags have equal lengths (TFDS'
    own mock draws each sequence's length independently)."""
    import tensorflow as tf

    features = builder.info.features
    sequences = {key: feature.feature for key, feature in features.items()
                 if isinstance(feature, tfds.features.Sequence) and key != "tokens"}

    def examples():
        rng = np.random.default_rng(0)
        for _ in range(12):
            length = int(rng.integers(1, 9))
            example = {"tokens": np.asarray([f"word{index}" for index in rng.integers(0, 30, length)])}
            for key, feature in sequences.items():
                if isinstance(feature, tfds.features.ClassLabel):
                    example[key] = rng.integers(0, feature.num_classes, length)
                else:
                    example[key] = np.asarray([f"TAG{index}" for index in rng.integers(0, 4, length)])
            yield example

    signature = {"tokens": tf.TensorSpec((None,), tf.string)}
    for key, feature in sequences.items():
        signature[key] = tf.TensorSpec((None,), tf.int64 if isinstance(feature, tfds.features.ClassLabel) else tf.string)
    return tf.data.Dataset.from_generator(examples, output_signature=signature)


def tfds_task(name, *overrides):
    return TaggingTask(compose_config(*TINY_TAGGING, "task.data.source=tfds", f"task.data.name={name}", *overrides))


def test_reads_conll2003_and_universal_dependencies_from_tfds():
    with tfds.testing.mock_data(as_dataset_fn=tagged_examples):
        task = tfds_task("conll2003", "task.tag_column=ner")
        train, _, _ = task.datasets()
        assert set(task.encoder.tags) <= set(tfds.builder("conll2003").info.features["ner"].feature.names)
        assert len(task.sentences["test"]) == 12 and task.sentences["train"][0].words[0].startswith("word")
        inputs, tags, weights = next(iter(train))
        assert inputs["words"].shape == tags.shape == weights.shape
        with pytest.raises(ConfigError, match="choose one with task.tag_column"):
            tfds_task("conll2003").datasets()
        ud = tfds_task("universal_dependencies/en_ewt", "task.data.validation_split=dev")
        ud.datasets()
        assert set(ud.encoder.tags) <= set(tfds.builder("universal_dependencies/en_ewt").info.features["upos"].feature.names)
        # The treebank's own tags are text, not class labels.
        xpos = tfds_task("universal_dependencies/en_ewt", "task.data.validation_split=dev", "task.tag_column=xpos")
        xpos.datasets()
        assert set(xpos.encoder.tags) <= {"TAG0", "TAG1", "TAG2", "TAG3"}
    with tfds.testing.mock_data(num_examples=12):
        # TFDS' own mock gives tokens and tags of different lengths: one clear line.
        with pytest.raises(DataError, match="tokens but .* ner tags"):
            tfds_task("conll2003", "task.tag_column=ner").datasets()


# The whole run.


@pytest.mark.slow
def test_run_scores_reloads_and_predicts(tmp_path, capsys):
    cfg = compose_config(*TINY_TAGGING, "trainer.epochs=3", "trainer.steps_per_epoch=8", "trainer.evaluation_steps=null")
    run_dir = tmp_path / "run"
    results = train.run(cfg, run_dir=run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name in ("accuracy", "oov_accuracy", "macro_f1"):
        assert 0 <= metrics["test"][name] <= 1
    assert results["test"]["accuracy"] == metrics["test"]["accuracy"]
    tags = event_tags(run_dir / "validation")
    assert tags["epoch_oov_accuracy"] == tags["epoch_macro_f1"] == tags["epoch_accuracy"] == 3
    assert event_tags(run_dir / "samples")["validation/confusion"] >= 1

    # The saved model and vocabularies reproduce the test accuracy.
    task = TaggingTask(cfg)
    _, _, test = task.datasets()
    reloaded = keras.saving.load_model(run_dir / "model.keras")
    encoder = tagged.SentenceEncoder.from_json(json.loads((run_dir / "tagger.json").read_text()))
    assert encoder.to_json() == task.encoder.to_json()
    reloaded.compile(loss=task.loss(), weighted_metrics=task.weighted_metrics())
    assert reloaded.evaluate(test, return_dict=True, verbose=0)["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)

    OmegaConf.save(cfg, (run_dir / ".hydra").mkdir() or run_dir / ".hydra" / "config.yaml")
    capsys.readouterr()
    predict.predict([f"run_dir={run_dir}", "text=They book a flight."])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["They", "book", "a", "flight", "."]
    assert all(line.split("\t")[1] in encoder.tags for line in lines)
    (tmp_path / "in.txt").write_text("They book a flight .\n\nThe cold room is quiet .\n")
    predict.predict([f"run_dir={run_dir}", f"file={tmp_path / 'in.txt'}"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1] == ""
    assert [pair.rsplit("/", 1)[0] for pair in lines[2].split()] == ["The", "cold", "room", "is", "quiet", "."]


@pytest.mark.slow
def test_bidirectional_tagger_beats_unidirectional_on_the_default_data(tmp_path):
    accuracies = {}
    for direction in ("false", "true"):
        cfg = compose_config(
            "task=tagging", f"model.bidirectional={direction}", "model.units=32", "model.embedding_dim=32",
            "task.char_features=false", "task.data.num_train=3000", "task.data.num_validation=200",
            "task.data.num_test=1000", "trainer.epochs=6", "trainer.max_minutes=null", "trainer.verbose=0",
        )
        accuracies[direction] = train.run(cfg, run_dir=tmp_path / direction)["test"]["accuracy"]
    assert accuracies["true"] >= 0.97, accuracies
    assert accuracies["true"] >= accuracies["false"] + 0.04, accuracies
