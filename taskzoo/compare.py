"""Compares finished runs: a table of what differs and how they did, and their learning curves.

    taskzoo-compare multirun/2026-11-25/10-00-00
    taskzoo-compare runs/sentiment-gru/A runs/sentiment-lstm/B --markdown
    taskzoo-compare multirun/... --csv > runs.csv

Each argument is a run directory or a directory with runs below it (a multirun). A run is a
directory with a `metrics.json`; runs stopped before their end are left out. The table has one row
per run: the command-line overrides that differ between the runs (from each run's
`.hydra/overrides.yaml`), the final validation and test metrics, the epochs and the training
time, best first by the task's main metric (the one that chose the best epoch). `curves.png`
(in the first directory given, or `--out`) shows that validation metric against training steps
and against wall-clock time, one line per run, read from the runs' TensorBoard event files.

At the end of every sweep the same table is printed and written, with the curves, into the sweep
directory (`comparison.md`, `curves.png`).
"""

import argparse
import csv
import io
import json
import pathlib
import sys

import yaml

from taskzoo.atomic import check_picture_target
from taskzoo.errors import DataError


def find_runs(paths):
    """The finished, tested run directories in or below the given paths, in name order, without
    repeats."""
    from taskzoo.rundir import finished_runs_in

    runs = []
    for path in map(pathlib.Path, paths):
        if not path.is_dir():
            raise SystemExit(f"Error: {path}: no such directory.")
        runs += [run for run in finished_runs_in(path, with_results=True) if run not in runs]
    if not runs:
        raise SystemExit(f"Error: no finished runs (metrics.json) in {', '.join(map(str, paths))}.")
    return runs


def overrides_of(run):
    """{key: value} of the run's command-line overrides, Hydra's own settings left out."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    overrides = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, _, value = str(item).partition("=")
        if not key.lstrip("+~").startswith("hydra"):
            overrides[key.lstrip("+~")] = value
    return overrides


def table(runs):
    """The rows (dicts), the column names, the main metric and the differing overrides, best run
    first."""
    metrics = {run: json.loads((run / "metrics.json").read_text()) for run in runs}
    overrides = {run: overrides_of(run) for run in runs}
    keys = sorted({key for values in overrides.values() for key in values})
    differing = [key for key in keys if len({values.get(key) for values in overrides.values()}) > 1]
    from taskzoo.tasks import main_metric

    split = "validation"
    name, higher_is_better = main_metric(metrics[runs[0]]["task"])

    def score(run):
        value = metrics[run].get(split, {}).get(name)
        if value is None:
            return float("inf")
        return -value if higher_is_better else value

    rows = []
    for run in sorted(runs, key=score):
        result = metrics[run]
        row = {"run": str(run)}
        row.update({key: overrides[run].get(key, "") for key in differing})
        row.update({f"validation.{key}": value for key, value in result.get("validation", {}).items()})
        row.update({f"test.{key}": value for key, value in result.get("test", {}).items()})
        row.update(epochs=result.get("epochs_completed"), train_seconds=result.get("train_seconds"))
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return rows, columns, f"{split}.{name}", differing


def format_value(value, column=None):
    """A cell of the printed table: metrics with four decimals, training seconds with one, and
    long numbers among the overrides (a search's sampled values) with four significant digits;
    CSV keeps them whole."""
    from taskzoo.observe.hparams import short_number

    if isinstance(value, float):
        return f"{value:.1f}" if column == "train_seconds" else f"{value:.4f}"
    if isinstance(value, str):
        return short_number(value)
    return "" if value is None else str(value)


def render(rows, columns, style):
    if style == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    cells = [columns] + [[format_value(row.get(column), column) for column in columns] for row in rows]
    if style == "markdown":
        lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(line) + " |" for line in cells[1:]]
        return "\n".join(lines) + "\n"
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells) + "\n"


def validation_curve(run, name):
    """(steps, seconds since the first epoch began, values) of `epoch_<name>` in the run's
    validation event files."""
    import logging

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    # Its directory watcher logs every file it reads at the INFO level.
    logging.getLogger("tensorboard").setLevel(logging.WARNING)

    accumulator = EventAccumulator(str(run / "validation"), size_guidance={"tensors": 0})
    accumulator.Reload()
    tag = f"epoch_{name}"
    if tag not in accumulator.Tags().get("tensors", []):
        return [], [], []
    events = accumulator.Tensors(tag)
    metrics = json.loads((run / "metrics.json").read_text())
    # Epoch summaries are indexed by epoch; steps per epoch turn them into training steps.
    steps_per_epoch = metrics["train_steps"] / max(metrics["epochs_completed"], 1)
    start = _first_wall_time(run) or events[0].wall_time
    steps = [(event.step + 1) * steps_per_epoch for event in events]
    seconds = [event.wall_time - start for event in events]
    values = [float(tensor_util.make_ndarray(event.tensor_proto)) for event in events]
    return steps, seconds, values


def _first_wall_time(run):
    """The wall time of the first training event: the moment training began."""
    import tensorflow as tf

    times = []
    for path in sorted((run / "train").glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)).take(2):
            times.append(tf.compat.v1.Event.FromString(record.numpy()).wall_time)
    return min(times) if times else None


def plot_curves(rows, metric, differing, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = metric.split(".", 1)[1]
    figure, (by_step, by_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    for row in rows:
        run = pathlib.Path(row["run"])
        steps, seconds, values = validation_curve(run, name)
        label = ", ".join(f"{key}={row[key]}" for key in differing) or run.name
        by_step.plot(steps, values, marker="o", markersize=3, label=label)
        by_time.plot(seconds, values, marker="o", markersize=3, label=label)
    by_step.set_xlabel("training step")
    by_time.set_xlabel("wall-clock seconds")
    for axes in (by_step, by_time):
        axes.set_ylabel(f"validation {name}")
        axes.grid(alpha=0.3)
    by_time.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_sweep_comparison(sweep_dir):
    """At the end of a sweep: prints the comparison table of its finished jobs and writes it
    (`comparison.md`) with the learning curves (`curves.png`) into the sweep directory."""
    from taskzoo.rundir import finished_runs_in

    runs = finished_runs_in(sweep_dir, with_results=True)
    if not runs:
        return
    rows, columns, metric, differing = table(runs)
    plot_curves(rows, metric, differing, sweep_dir / "curves.png")
    # The table names the runs by their directory inside the sweep.
    relative = [{**row, "run": str(pathlib.Path(row["run"]).relative_to(sweep_dir))} for row in rows]
    print(f"\nComparison of the sweep's {len(rows)} finished run(s), best first by {metric}:")
    print(render(relative, columns, "text"), end="")
    (sweep_dir / "comparison.md").write_text(render(relative, columns, "markdown"))
    print(f"Written to {sweep_dir / 'comparison.md'} and {sweep_dir / 'curves.png'}.")


def main(arguments=None):
    from taskzoo.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+", help="run directories or directories with runs below them")
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--csv", action="store_const", const="csv", dest="style", help="print CSV")
    style.add_argument("--markdown", action="store_const", const="markdown", dest="style", help="print a Markdown table")
    parser.add_argument("--out", type=pathlib.Path, help="where to write curves.png (default: the first directory)")
    options = parser.parse_args(arguments)

    runs = find_runs(options.directories)
    out = options.out or pathlib.Path(options.directories[0])
    if out.suffix != ".png":
        out = out / "curves.png"
    if out.parent.is_file():
        raise SystemExit(f"Error: {out.parent}: a file, not a directory for curves.png (give --out a .png name).")
    try:
        check_picture_target(out)
    except DataError as error:
        raise SystemExit(f"Error: {error}") from None
    rows, columns, metric, differing = table(runs)
    sys.stdout.write(render(rows, columns, options.style or "text"))
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(rows, metric, differing, out)
    print(f"Sorted by {metric}; learning curves in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
