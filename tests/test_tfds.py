"""TFDS sources: read through `tfds.testing.mock_data`, and a fast clear failure offline."""

import logging
import time

import pytest
import tensorflow_datasets as tfds

from taskzoo.errors import DataError
from taskzoo.tasks.sentiment import SentimentTask


@pytest.mark.parametrize("name", ["imdb_reviews", "glue/sst2"])
def test_sentiment_reads_a_tfds_text_dataset(tiny_config, name):
    cfg = tiny_config("task.data.source=tfds", f"task.data.name={name}")
    with tfds.testing.mock_data(num_examples=24):
        task = SentimentTask(cfg)
        train, validation, test = task.datasets()
    expected_classes = {"imdb_reviews": ["neg", "pos"], "glue/sst2": ["negative", "positive"]}
    assert task.class_names == expected_classes[name]
    assert sum(task.sizes.values()) > 24
    token_ids, labels = next(iter(train))
    assert token_ids.shape[0] == labels.shape[0] > 0


def test_an_unprepared_dataset_fails_fast_with_one_line(tiny_config, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = tiny_config("task.data.source=tfds", "task.data.name=imdb_reviews", f"task.data.data_dir={tmp_path}")
    start = time.perf_counter()
    with pytest.raises(DataError) as error:
        SentimentTask(cfg).datasets()
    assert time.perf_counter() - start < 30
    message = str(error.value)
    assert "'imdb_reviews' is not prepared in" in message and "tfds build imdb_reviews" in message
    assert "\n" not in message
    # TFDS's own lines (a folder "has no dataset_info.json", and so on) do not come before it.
    assert [record.getMessage() for record in caplog.records if record.name == "absl"] == []


def test_an_unknown_dataset_name(tiny_config):
    cfg = tiny_config("task.data.source=tfds", "task.data.name=no_such_reviews")
    with pytest.raises(DataError, match="TFDS has no dataset named 'no_such_reviews'"):
        SentimentTask(cfg).datasets()
