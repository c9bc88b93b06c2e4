"""Re-scores a finished run's saved model on its validation and test splits, with the task's
current evaluation code (for example after a decoding fix), and prints the scores as JSON.

    taskzoo-evaluate RUN_DIR [RUN_DIR ...] [--set task.beam_size=1 ...]

The run's data is rebuilt from its own `.hydra/config.yaml`; `--set` overrides a value of it
(decoding settings such as `task.beam_size`). `metrics.json` is left as the run wrote it.
"""

import argparse
import json
import pathlib

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

from omegaconf import OmegaConf  # noqa: E402

from taskzoo.tasks import build_task  # noqa: E402
from taskzoo.tasks.base import load_run_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", type=pathlib.Path)
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, a configuration override")
    arguments = parser.parse_args()
    for run_dir in arguments.run_dirs:
        cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        cfg.merge_with(OmegaConf.from_dotlist(arguments.set))
        task = build_task(cfg)
        task.datasets()
        network = load_run_model(run_dir)
        scores = {split: task.extra_metrics(network, split) for split in ("validation", "test")}
        print(json.dumps({"run_dir": str(run_dir), **scores}), flush=True)


if __name__ == "__main__":
    main()
