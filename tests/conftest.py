"""Shared test helpers: composing the real configuration, and running the command line."""

import os
import subprocess
import sys

# pytest-xdist runs the suite on two processes, one per core of the reference machine. Each of
# them, and each command line a test starts, gets one TensorFlow thread per pool, so that the two
# processes do not fight over the cores: six of the slowest tests, run in turns with and without,
# took 7% less time so. The variables must be set before TensorFlow starts; `pytest -n 0` keeps
# TensorFlow's default of every core.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from taskzoo.quiet import import_tensorflow_quietly  # noqa: E402

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


def pytest_collection_modifyitems(config, items):
    """Slow tests first, in their files' order: on two processes (pytest-xdist), the longest tests
    then start while the other process still has work, rather than running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def no_gradient_alarm(request, caplog):
    """Every run trained in a test is healthy: it must raise no exploding- or vanishing-gradient
    alarm, except in the tests marked `alarm_expected`, which build an unhealthy case."""
    import logging

    caplog.set_level(logging.WARNING, logger="taskzoo.alarms")
    yield
    if request.node.get_closest_marker("alarm_expected") is None:
        alarms = [record.getMessage() for record in caplog.records if record.name == "taskzoo.alarms"]
        assert not alarms, f"a gradient alarm in a healthy run: {alarms}"


def compose_config(*overrides):
    """Composes the real configuration from `conf/` with Hydra, as the command line does."""
    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture
def tiny_config():
    def make(*overrides):
        return compose_config(*TINY, *overrides)

    return make


def run_cli(arguments, cwd, module="taskzoo", env=None, alarm_expected=False):
    """Runs `python -m taskzoo ARGUMENTS` in `cwd` (outside the source tree, so the installed
    package is what runs) and returns the completed process. The runs of the tests are healthy:
    an exploding- or vanishing-gradient alarm fails the test unless `alarm_expected`. Their
    console holds no warning, of TensorFlow's runtime or of Python (`runtime_warnings`)."""
    environment = dict(os.environ, **(env or {}))
    environment.pop("HYDRA_FULL_ERROR", None)
    completed = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if not alarm_expected:
        output = completed.stdout + completed.stderr
        assert "Exploding gradient" not in output and "Vanishing gradient" not in output, output[-2000:]
    assert not runtime_warnings(completed.stderr)
    return completed


def runtime_warnings(stderr):
    """The warnings in a run's standard error: the lines of TensorFlow's C++ runtime, such as
    "W0000 00:00:... cache_dataset_ops.cc:912] The calling iterator did not fully read ...", and
    Python's warnings ("...: UserWarning: ...")."""
    import re

    return [line for line in stderr.splitlines() if re.match(r"[WEF]\d{4} |\S+:\d+: \w*Warning: ", line)]


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


def hparams_trial_ids(directory):
    """The trial IDs (TensorBoard's HParams session names) written directly in `directory`."""
    return [session.group_name for session in hparams_records(directory, "session_start_info")]


def hparams_experiment(directory):
    """The HParams experiment declared directly in `directory`: ({name: varied}, [metric tags])."""
    [experiment] = hparams_records(directory, "experiment")
    return ({info.name: info.differs for info in experiment.hparam_infos},
            [info.name.tag for info in experiment.metric_infos])


def hparams_records(directory, kind):
    """The HParams records of one kind ("experiment", "session_start_info") in `directory`."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    records = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            for value in tf.compat.v1.Event.FromString(record.numpy()).summary.value:
                if value.tag.startswith("_hparams_/"):
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.WhichOneof("data") == kind:
                        records.append(getattr(data, kind))
    return records
