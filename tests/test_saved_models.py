"""Every task's saved model loads as the README documents: `import taskzoo`, then
`keras.saving.load_model("model.keras")` in safe mode, in a fresh process."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import compose_config
from test_time_gradients import EVERY_TASK

from taskzoo import train

LOADER = """
import json, sys
import keras
import numpy as np
import taskzoo

summaries = {}
for path in sys.argv[1:]:
    model = keras.saving.load_model(path)  # safe_mode=True is Keras' default.
    summaries[path] = [model.count_params(), float(sum(np.abs(weight).sum() for weight in model.get_weights()))]
print(json.dumps(summaries))
"""


@pytest.mark.slow
def test_every_task_model_loads_after_importing_taskzoo(tmp_path):
    expected = {}
    for task_name, (overrides, _) in EVERY_TASK.items():
        run_dir = tmp_path / task_name
        train.run(compose_config(*overrides), run_dir=run_dir)
        model = keras.saving.load_model(run_dir / "model.keras")
        expected[str(run_dir / "model.keras")] = [
            model.count_params(), float(sum(np.abs(weight).sum() for weight in model.get_weights()))
        ]
    completed = subprocess.run([sys.executable, "-c", LOADER, *expected], capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(loaded) == set(expected)
    for path, (parameters, weight_sum) in expected.items():
        assert loaded[path][0] == parameters > 0
        assert loaded[path][1] == pytest.approx(weight_sum, rel=1e-6)
