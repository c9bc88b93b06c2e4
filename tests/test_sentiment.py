"""The sentiment task: its generated data needs word order, masks hide padding, models reload."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import compose_config
from taskzoo import train
from taskzoo.data.synthetic.reviews import generate_reviews
from taskzoo.tasks.sentiment import SentimentTask


def test_generated_reviews_are_deterministic_balanced_and_split_apart():
    texts, labels = generate_reviews(400, seed=3, split="train")
    again_texts, again_labels = generate_reviews(400, seed=3, split="train")
    assert texts == again_texts and (labels == again_labels).all()
    assert 0.4 < labels.mean() < 0.6
    test_texts, _ = generate_reviews(400, seed=3, split="test")
    assert test_texts != texts
    assert generate_reviews(400, seed=4, split="train")[0] != texts


def test_padding_changes_neither_predictions_nor_loss(tiny_config):
    keras.utils.set_random_seed(0)
    task = SentimentTask(tiny_config("model.num_layers=2", "model.bidirectional=true"))
    task.datasets()
    model = task.build_model()
    short = np.array([[5, 6, 7, 8], [9, 10, 11, 0]])
    padded = np.concatenate([short, np.zeros((2, 6), dtype=int)], axis=1)
    np.testing.assert_allclose(model.predict(padded, verbose=0), model.predict(short, verbose=0), atol=1e-6)
    model.compile(loss=task.loss(), metrics=task.metrics())
    labels = np.array([0, 1])
    np.testing.assert_allclose(
        model.evaluate(padded, labels, verbose=0), model.evaluate(short, labels, verbose=0), rtol=1e-6
    )


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_a_small_model_overfits_a_tiny_batch(tiny_config, pooling):
    keras.utils.set_random_seed(0)
    task = SentimentTask(tiny_config(f"task.pooling={pooling}", "model.units=16"))
    train_data, _, _ = task.datasets()
    token_ids, labels = next(iter(train_data))
    model = task.build_model()
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=task.loss(), metrics=task.metrics())
    model.fit(token_ids, labels, epochs=60, verbose=0)
    loss, accuracy = model.evaluate(token_ids, labels, verbose=0)
    assert accuracy == 1.0 and loss < 0.1


def test_run_saves_a_text_model_that_reloads_and_predicts_identically(tmp_path, tiny_config):
    cfg = tiny_config("model=lstm")
    results = train.run(cfg, run_dir=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert set(saved["test"]) == {"accuracy", "loss"}

    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    reviews = tf.constant([["the plot was not dull"], ["it was great , but the ending was awful ."]])
    probabilities = reloaded.predict(reviews, verbose=0)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    again = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True).predict(reviews, verbose=0)
    np.testing.assert_array_equal(again, probabilities)


def test_saved_model_predicts_what_the_trained_network_predicts(tmp_path, tiny_config):
    keras.utils.set_random_seed(0)
    task = SentimentTask(tiny_config())
    task.datasets()
    network = task.build_model()
    exported = task.export_model(network)
    exported.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    review = "the acting felt extremely clumsy and the plot was slightly funny"
    token_ids = task.vectorizer([review]).to_tensor()
    expected = keras.ops.softmax(network.predict(token_ids, verbose=0))
    np.testing.assert_allclose(reloaded.predict(tf.constant([[review]]), verbose=0), expected, atol=1e-6)


@pytest.mark.slow
def test_word_order_matters_a_recurrent_model_beats_a_bag_of_words(tmp_path):
    common = [
        "trainer.verbose=0",
        "trainer.epochs=10",
        "trainer.batch_size=32",
        "trainer.max_minutes=null",
        "task.data.num_train=4000",
        "task.data.num_validation=500",
        "task.data.num_test=1000",
        "model.units=64",
    ]
    recurrent = train.run(compose_config(*common, "model=gru"), run_dir=tmp_path / "gru")
    bag_of_words = train.run(
        compose_config(*common, "model.num_layers=0", "task.pooling=mean"), run_dir=tmp_path / "bag"
    )
    recurrent_accuracy = recurrent["test"]["accuracy"]
    bag_accuracy = bag_of_words["test"]["accuracy"]
    assert recurrent_accuracy >= 0.9
    assert bag_accuracy <= 0.72
    assert recurrent_accuracy - bag_accuracy >= 0.2

