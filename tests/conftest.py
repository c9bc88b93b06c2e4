"""Shared test helpers: composing the real configuration, and running the command line."""

import os
import subprocess
import sys

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import pytest  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402

from taskzoo.config import register_configs  # noqa: E402

register_configs()

# A tiny model and a tiny generated corpus: seconds per run on two cores.
TINY = [
    "trainer=smoke",
    "model.units=8",
    "model.embedding_dim=8",
    "task.data.num_train=64",
    "task.data.num_validation=16",
    "task.data.num_test=16",
]


def compose_config(*overrides):
    """Composes the real configuration from `conf/` with Hydra, as the command line does."""
    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture
def tiny_config():
    def make(*overrides):
        return compose_config(*TINY, *overrides)

    return make


def run_cli(arguments, cwd, module="taskzoo", env=None):
    """Runs `python -m taskzoo ARGUMENTS` in `cwd` (outside the source tree, so the installed
    package is what runs) and returns the completed process."""
    environment = dict(os.environ, **(env or {}))
    environment.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def event_tags(directory):
    """The summary tags written to the event files directly in `directory`, with their counts."""
    import collections

    import tensorflow as tf

    counts = collections.Counter()
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                counts[value.tag] += 1
    return counts


def event_values(directory, tag):
    """[(step, value)] of one summary tag in the event files directly in `directory`: a float
    for a scalar, a string for a text entry."""
    import tensorflow as tf

    values = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == tag:
                    array = tf.make_ndarray(value.tensor)
                    item = array.item() if array.ndim == 0 else array
                    values.append((event.step, item.decode() if isinstance(item, bytes) else item))
    return sorted(values, key=lambda pair: pair[0])
