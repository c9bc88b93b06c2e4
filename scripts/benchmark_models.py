"""Times the default run of a task for several models and prints a Markdown table.

    python scripts/benchmark_models.py --task sentiment --models rnn lstm gru
    python scripts/benchmark_models.py --task sentiment --models gru \
        --variant "bag of words=model.num_layers=0 task.pooling=mean"

Each configuration runs as its own `python -m taskzoo` process, so the wall time is what a user
waits for: start-up, data, training, evaluation and saving. Outputs go to --out (default
benchmarks/<timestamp>/), one run directory per configuration.
"""

import argparse
import datetime
import json
import pathlib
import shlex
import subprocess
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--models", nargs="*", default=["rnn", "lstm", "gru"])
    parser.add_argument(
        "--variant", action="append", default=[],
        help='an extra row, "NAME=OVERRIDES" (space-separated Hydra overrides)',
    )
    parser.add_argument("--overrides", default="", help="overrides added to every run")
    parser.add_argument("--out", type=pathlib.Path)
    arguments = parser.parse_args()

    out = arguments.out or pathlib.Path("benchmarks") / datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    rows = [(model, [f"model={model}"]) for model in arguments.models]
    for variant in arguments.variant:
        name, _, overrides = variant.partition("=")
        rows.append((name, shlex.split(overrides)))

    print("| configuration | test metrics | epochs | train time (s) | wall time (s) |")
    print("|---|---|---|---|---|")
    for name, overrides in rows:
        run_dir = out / "".join(c if c.isalnum() else "_" for c in name)
        command = [
            sys.executable, "-m", "taskzoo", f"task={arguments.task}", *overrides,
            *shlex.split(arguments.overrides), "trainer.verbose=0", f"hydra.run.dir={run_dir}",
        ]
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if completed.returncode != 0:
            print(f"| {name} | failed: {completed.stderr.strip().splitlines()[-1]} | | | {wall:.0f} |")
            continue
        metrics = json.loads((run_dir / "metrics.json").read_text())
        test = ", ".join(f"{key} {value:.4f}" for key, value in metrics["test"].items())
        print(f"| {name} | {test} | {metrics['epochs_completed']} | {metrics['train_seconds']:.0f} | {wall:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
