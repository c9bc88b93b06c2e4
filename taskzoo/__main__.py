"""The command line: `python -m taskzoo task=sentiment model=gru` (Hydra overrides)."""

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import hydra  # noqa: E402

from taskzoo.config import register_configs  # noqa: E402
from taskzoo.errors import one_line_errors  # noqa: E402

register_configs()


@hydra.main(version_base="1.3", config_path="pkg://taskzoo.conf", config_name="config")
def main(cfg):
    from taskzoo import train

    with one_line_errors():
        return train.run(cfg)


if __name__ == "__main__":
    main()
