"""The command line: `python -m taskzoo task=sentiment model=gru` (Hydra overrides)."""

import os
import sys

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import hydra  # noqa: E402

from taskzoo.config import register_configs  # noqa: E402
from taskzoo.errors import TaskzooError  # noqa: E402

register_configs()


@hydra.main(version_base="1.3", config_path="pkg://taskzoo.conf", config_name="config")
def main(cfg):
    from taskzoo import train

    try:
        return train.run(cfg)
    except TaskzooError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
