"""Outputs written whole or not at all (a temporary file, then a rename), and never over a file
of another kind."""

import json
import os
import pathlib

from taskzoo.errors import DataError

# The first bytes of the pictures the commands write, by file name suffix.
PICTURE_SIGNATURES = {
    ".png": (b"\x89PNG\r\n\x1a\n",), ".pdf": (b"%PDF",), ".svg": (b"<?xml", b"<svg"), ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
}


def write_json_atomic(path, data):
    """Writes JSON to a temporary file and renames it, so a reader never sees half a file."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


def save_model_atomic(model, path):
    """Saves a `.keras` file through a temporary file and a rename."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def check_picture_target(path, suffix=None):
    """Raises a one-line DataError when `path` exists and is not a picture of the kind that
    `suffix` (by default its own) names: a picture replaces an earlier picture of its name (the
    same command run again), never a model, a table or a text that a mistyped name points at."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_file():
        raise DataError(f"{path}: not a file; give the picture a file name.")
    if not path.is_file():
        return
    kind = (suffix or path.suffix).lower()
    with open(path, "rb") as file:
        start = file.read(8)
    if not any(start.startswith(signature) for signature in PICTURE_SIGNATURES.get(kind, ())):
        what = f"a {kind.lstrip('.').upper()} picture" if kind in PICTURE_SIGNATURES else "a picture"
        raise DataError(f"{path}: the file exists and is not {what}; nothing was written over it (give another name).")
