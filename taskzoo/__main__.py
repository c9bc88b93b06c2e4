"""`python -m taskzoo ...`: the command line, see `taskzoo/cli.py`."""

from taskzoo.cli import command

if __name__ == "__main__":
    command()
