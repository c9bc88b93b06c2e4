"""One small run of every task, and what every run must leave behind: the gradients of its
recurrent layers through time, a console without TensorFlow's warnings, and a saved model that
loads as the README documents (`import taskzoo`, then `keras.saving.load_model("model.keras")` in
safe mode) in a fresh process."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import TINY, compose_config, event_tags, runtime_warnings
from test_captioning import TINY_CAPTIONING
from test_tagging import TINY_TAGGING
from test_translation import TINY_TRANSLATION
from test_video import TINY_VIDEO

from taskzoo import train
from taskzoo.observe.time_gradients import load_time_gradients

# Each task's small run, and the recurrent layers its gradients through time must record.
EVERY_TASK = {
    "sentiment": (["task=sentiment", *TINY, "model.bidirectional=true"],
                  ["recurrent_stack/bidirectional_gru_0/forward", "recurrent_stack/bidirectional_gru_0/backward"]),
    "char_lm": (["task=char_lm", "trainer=smoke", "model=lstm", "model.units=8", "model.embedding_dim=8",
                 "trainer.batch_size=2", "task.seq_length=8", "task.sample_length=5",
                 "task.data.max_characters=20000"],
                ["recurrent_stack/lstm_0"]),
    "video": (TINY_VIDEO, ["recurrent_stack/gru_0"]),
    "translation": (TINY_TRANSLATION, ["encoder/gru_0", "decoder/gru_cell_0"]),
    "captioning": (TINY_CAPTIONING, ["decoder/gru_cell_0"]),
    # The character encoder's stack is recorded through the characters of each word.
    "tagging": ([*TINY_TAGGING, "task.data.num_validation=200"],
                [f"{stack}/bidirectional_gru_0/{direction}" for stack in ("character_stack", "recurrent_stack")
                 for direction in ("forward", "backward")]),
}



def test_every_task_has_its_small_run():
    from taskzoo.tasks import TASKS

    assert set(EVERY_TASK) == set(TASKS)


LOADER = """
import json, sys
import keras
import numpy as np
import taskzoo

model = keras.saving.load_model(sys.argv[1])  # safe_mode=True is Keras' default.
print(json.dumps([model.count_params(), float(sum(np.abs(weight).sum() for weight in model.get_weights()))]))
"""


def parameters_and_weight_sum(model):
    return [model.count_params(), float(sum(np.abs(weight).sum() for weight in model.get_weights()))]


@pytest.mark.slow
@pytest.mark.parametrize("task_name", list(EVERY_TASK))
def test_every_task_records_its_recurrent_layers_through_time_and_its_model_loads_in_a_fresh_process(
    task_name, tmp_path, capfd
):
    overrides, expected_layers = EVERY_TASK[task_name]
    # One batch of the validation split per evaluation: a run reads part of its splits (tagging's
    # validation split is larger than its tiny run's for this, since batches read ahead).
    cfg = compose_config(*overrides, "observe.time_gradients=true", "observe.every_n_steps=2",
                         "trainer.evaluation_steps=1")
    results = train.run(cfg, run_dir=tmp_path)
    # TensorFlow's runtime printed no warning about the splits read in part.
    assert not runtime_warnings(capfd.readouterr().err)

    history = load_time_gradients(tmp_path / "time_gradients.npz")
    recorded = list(range(0, results["train_steps"] + 1, 2))
    assert history["steps"].tolist() == recorded and len(recorded) >= 3
    assert list(history["layers"]) == expected_layers
    for norms, real in history["layers"].values():
        assert np.isfinite(norms).all() and (norms[:, real] > 0).any()
    tags = event_tags(tmp_path / "train")
    assert tags[f"time_gradients/{expected_layers[0]}"] == len(recorded)
    assert tags[f"time_gradients/{expected_layers[-1]}/first_over_last"] == len(recorded)

    model_path = tmp_path / "model.keras"
    expected = parameters_and_weight_sum(keras.saving.load_model(model_path))
    completed = subprocess.run([sys.executable, "-c", LOADER, str(model_path)], capture_output=True, text=True,
                               cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert loaded[0] == expected[0] > 0
    assert loaded[1] == pytest.approx(expected[1], rel=1e-6)
