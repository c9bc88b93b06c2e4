"""Measures what one measurement of the gradient flow through time costs, against a training step.

    python scripts/benchmark_time_gradients.py [--model lstm] [--repeats 20]

On the default sentiment model and data it times, each warmed up first and then the median of
--repeats: one step of the taskzoo training step, on the same batch as the probe; the probe that
computes ‖∂L/∂h_t‖ on the longest of the first validation batches (what
`observe.time_gradients` measures every `observe.every_n_steps` steps); and the drawing of the
heatmap image of 100 measurements.
"""

import argparse
import statistics
import time

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402

from taskzoo.config import register_configs  # noqa: E402
from taskzoo.observe.gradients import GradientNormModel  # noqa: E402
from taskzoo.observe.time_gradients import heatmap_image, longest_batch, time_gradient_function  # noqa: E402
from taskzoo.tasks import build_task  # noqa: E402
from taskzoo.optimization import build_optimizer  # noqa: E402


def median_seconds(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--repeats", type=int, default=20)
    arguments = parser.parse_args()

    register_configs()
    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        cfg = compose("config", overrides=["task=sentiment", f"model={arguments.model}"])
    keras.utils.set_random_seed(0)
    task = build_task(cfg)
    train_data, validation_data, _ = task.datasets()
    network = task.build_model()
    model = GradientNormModel(network)
    model.compile(optimizer=build_optimizer(cfg.trainer), loss=task.loss(), metrics=task.metrics())
    probe_batch = longest_batch(validation_data)
    train_batch = probe_batch
    inputs, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(probe_batch)
    compute = time_gradient_function(network, task.loss())

    step = median_seconds(lambda: model.train_on_batch(*train_batch), arguments.repeats)
    probe = median_seconds(lambda: [n.numpy() for n, _ in compute(inputs, targets, sample_weight).values()],
                           arguments.repeats)
    norms, real = next(iter(compute(inputs, targets, sample_weight).values()))
    history = [norms.numpy() * (1 + 0.01 * i) for i in range(100)]
    draw = median_seconds(lambda: heatmap_image(history, real.numpy()), arguments.repeats)
    steps = np.asarray(inputs).shape[1]
    print(f"sentiment {arguments.model}, probe batch {np.asarray(inputs).shape[0]} x {steps} steps, "
          f"median of {arguments.repeats}")
    print("| what | ms |")
    print("|---|---|")
    print(f"| one training step, same batch | {step * 1000:.1f} |")
    print(f"| one time-gradient measurement | {probe * 1000:.1f} |")
    print(f"| drawing its heatmap (100 measurements) | {draw * 1000:.1f} |")


if __name__ == "__main__":
    main()
