"""Measures what gradient-norm logging costs per training step, and the event-file size.

    python scripts/benchmark_gradient_logging.py [--steps 150] [--repeats 3] [--model gru]

It trains the default sentiment model on the default data in four set-ups, each compiled and
warmed up first, then timed over the same number of steps (the best of --repeats):

- plain Keras `fit`, no per-step logging (the reference);
- the taskzoo training step (it computes the global and per-layer norms), nothing written;
- the taskzoo training step with per-step scalars written every 10 steps;
- the same with the exploding-gradient alarm, which reads the global norm after every step (the
  default);
- the same written every step.
"""

import argparse
import pathlib
import tempfile
import time

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402

from taskzoo.config import register_configs  # noqa: E402
from taskzoo.observe.gradients import GradientNormModel  # noqa: E402
from taskzoo.observe.tensorboard import tensorboard_callbacks  # noqa: E402
from taskzoo.tasks import build_task  # noqa: E402
from taskzoo.optimization import build_optimizer  # noqa: E402


def time_fit(model, data, steps, callbacks, repeats):
    model.fit(data, epochs=1, steps_per_epoch=20, callbacks=callbacks, verbose=0, shuffle=False)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=callbacks, verbose=0, shuffle=False)
        best = min(best, time.perf_counter() - start)
    return best / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="gru")
    arguments = parser.parse_args()

    register_configs()
    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"model={arguments.model}"])
    task = build_task(cfg)
    train_data, _, _ = task.datasets()

    def compiled(wrap):
        keras.utils.set_random_seed(0)
        network = task.build_model()
        model = GradientNormModel(network) if wrap else network
        model.compile(optimizer=build_optimizer(cfg.trainer), loss=task.loss(), metrics=task.metrics())
        return model

    log_root = pathlib.Path(tempfile.mkdtemp(prefix="gradient_logging_"))
    setups = [
        ("plain Keras fit", False, None, False),
        ("taskzoo step, nothing written", True, None, False),
        ("taskzoo step, written every 10 steps", True, 10, False),
        ("taskzoo step, written every 10 steps, exploding-gradient alarm (default)", True, 10, True),
        ("taskzoo step, written every step", True, 1, False),
    ]
    reference = None
    print(f"{arguments.model}, {arguments.steps} steps, best of {arguments.repeats}")
    print("| set-up | ms per step | overhead | event bytes per step |")
    print("|---|---|---|---|")
    for name, wrap, every, alarm in setups:
        log_dir = log_root / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        callbacks = tensorboard_callbacks(log_dir, every, cfg.observe if alarm else None) if every else []
        seconds = time_fit(compiled(wrap), train_data, arguments.steps, callbacks, arguments.repeats)
        reference = reference or seconds
        total_steps = 20 + arguments.steps * arguments.repeats
        size = sum(path.stat().st_size for path in log_dir.rglob("events.*")) if every else 0
        print(f"| {name} | {seconds * 1000:.1f} | {100 * (seconds / reference - 1):+.1f}% | "
              f"{size / total_steps:.0f} |", flush=True)


if __name__ == "__main__":
    main()
