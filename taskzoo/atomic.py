"""Outputs written whole or not at all: a temporary file, then a rename."""

import json
import os
import pathlib


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
