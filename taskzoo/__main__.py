"""`python -m taskzoo ...`: the command line, see `taskzoo/cli.py`."""

from taskzoo.cli import main

if __name__ == "__main__":
    main()
