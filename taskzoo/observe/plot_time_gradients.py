"""Draws the gradient flow through time of several runs side by side, on one colour scale.

Each run must have been trained with `observe.time_gradients=true`. For every run, the figure has
a heatmap (time step down, training step across) of one recurrent layer's gradient norms, and a
last panel draws them against the time step at the end of each run's training. The norms are
shown relative to the last step's, log10 ‖∂L/∂h_t‖ / ‖∂L/∂h_T‖, so that how far back the gradient
reaches is not confused with how small the loss has become (`--absolute` shows the raw norms):

    python -m taskzoo task=sentiment model=rnn observe.time_gradients=true hydra.run.dir=runs/rnn
    python -m taskzoo task=sentiment model=lstm observe.time_gradients=true hydra.run.dir=runs/lstm
    taskzoo-plot-gradients runs/rnn runs/lstm --out time_gradients.png
"""

import argparse
import json
import pathlib
import sys

import numpy as np

from taskzoo.atomic import check_picture_target
from taskzoo.errors import DataError
from taskzoo.observe.time_gradients import load_time_gradients


def run_label(run_dir):
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        return f"{metrics['task']} {metrics['model']}"
    return run_dir.name


def main(arguments=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path, help="run directories")
    parser.add_argument("--layer", type=int, default=0, help="which recurrent layer, by order (default: the first)")
    parser.add_argument("--absolute", action="store_true", help="raw norms, not relative to the last step")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("time_gradients.png"))
    options = parser.parse_args(arguments)
    try:
        check_picture_target(options.out)
    except DataError as error:
        sys.exit(f"Error: {error}")

    panels = []
    for run_dir in options.runs:
        path = run_dir / "time_gradients.npz"
        if not path.exists():
            sys.exit(f"Error: {path} does not exist; train the run with observe.time_gradients=true.")
        history = load_time_gradients(path)
        names = list(history["layers"])
        if options.layer >= len(names):
            sys.exit(f"Error: {run_dir} has {len(names)} recurrent layer(s); --layer={options.layer} is out of range.")
        norms, real = history["layers"][names[options.layer]]
        norms = norms[:, real].T
        if not options.absolute:
            norms = norms / np.maximum(norms[-1:], np.finfo("float32").tiny)
        with np.errstate(divide="ignore"):
            image = np.log10(norms)
        panels.append((f"{run_label(run_dir)}: {names[options.layer]}", history["steps"], image))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = np.concatenate([image[np.isfinite(image)] for _, _, image in panels])
    low, high = np.percentile(finite, 1), finite.max()
    figure, axes = plt.subplots(1, len(panels) + 1, figsize=(4.4 * (len(panels) + 1), 3.8), layout="constrained")
    for axis, (title, steps, image) in zip(axes, panels):
        # A run measured once (a short run) gets a column one step wide.
        first, last = (steps[0], steps[-1]) if steps[-1] > steps[0] else (steps[0] - 0.5, steps[0] + 0.5)
        shown = axis.imshow(
            np.clip(image, low, high), aspect="auto", cmap="viridis", vmin=low, vmax=high,
            extent=(first, last, image.shape[0] + 0.5, 0.5), interpolation="nearest",
        )
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("training step")
        axis.set_ylabel("time step t")
    quantity = "log10 ‖∂L/∂h_t‖" if options.absolute else "log10 ‖∂L/∂h_t‖ / ‖∂L/∂h_T‖"
    figure.colorbar(shown, ax=axes[:-1], label=quantity, fraction=0.05, pad=0.02)
    last = axes[-1]
    for title, steps, image in panels:
        last.plot(np.arange(1, image.shape[0] + 1), image[:, -1], label=f"{title.split(':')[0]} (step {steps[-1]})")
    last.set_xlabel("time step t")
    last.set_ylabel(quantity)
    last.set_title("at the end of training", fontsize=9)
    last.legend(fontsize=8)
    figure.savefig(options.out, dpi=110, bbox_inches="tight")
    print(f"Wrote {options.out}")


if __name__ == "__main__":
    main()
