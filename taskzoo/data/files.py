"""Readers for local text files that report bad input as one line naming the file and line."""

import codecs
import csv
import gzip
import pathlib

from taskzoo.errors import DataError

TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content", "document", "comment", "body")
LABEL_COLUMN_NAMES = ("label", "labels", "sentiment", "class", "polarity", "target", "category")


def existing_path(path, what="file"):
    """Returns `path` as a Path, or raises DataError when it does not exist."""
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such {what}.")
    return path


def read_text(path):
    """Reads a UTF-8 text file, plain or gzip-compressed (UTF-16 too when a byte-order mark says
    so); an undecodable byte raises DataError with its line and offset."""
    path = existing_path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file.")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: not a readable gzip file ({error}).") from None
    # A byte-order mark says which encoding follows; it is never part of the text.
    for mark, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(mark):
            try:
                return data[len(mark):].decode(encoding)
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{path}: invalid {encoding.upper()} at byte offset {error.start + len(mark)} (the file "
                    f"starts with the {encoding.upper()} byte-order mark)."
                ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: invalid UTF-8 byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start} (expected a UTF-8 text file)."
        ) from None


def read_lines(path):
    """Returns the non-empty lines of a text file, with their 1-based line numbers."""
    text = read_text(path)
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line]
    if not lines:
        raise DataError(f"{path}: the file is empty.")
    return lines


def _find_column(header, requested, candidates, path, role):
    lowered = [name.strip().lower() for name in header]
    if requested is not None:
        if requested.lower() not in lowered:
            raise DataError(
                f"{path}: no column {requested!r} for the {role} (columns: {', '.join(header)})."
            )
        return lowered.index(requested.lower())
    for candidate in candidates:
        if candidate in lowered:
            return lowered.index(candidate)
    return None


def read_table(path, text_column=None, label_column=None):
    """Reads (texts, labels) from a CSV or TSV file with a header row.

    The delimiter follows the extension (.tsv tab, .csv comma), or the header line for other
    extensions. Columns named by `text_column` and `label_column` are used; otherwise they are
    found by their usual names (text, sentence, review; label, sentiment, class), or, in a file of
    exactly two columns, the column with the longer values is the text.
    """
    text = read_text(path)
    path = pathlib.Path(path)
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: the file is empty.")
    suffix = path.suffix.lower()
    header_line = lines[0]
    if suffix == ".tsv" or (suffix != ".csv" and "\t" in header_line):
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(lines)
    rows = list(reader)
    header, body = rows[0], rows[1:]
    numbered = [(number, row) for number, row in enumerate(body, start=2) if any(row)]
    if not numbered:
        raise DataError(f"{path}: the file has a header but no rows.")

    text_index = _find_column(header, text_column, TEXT_COLUMN_NAMES, path, "text")
    label_index = _find_column(header, label_column, LABEL_COLUMN_NAMES, path, "label")
    if (text_index is None or label_index is None) and len(header) == 2:
        sample = numbered[:200]
        lengths = [sum(len(row[i]) for _, row in sample if len(row) > i) for i in range(2)]
        longer = 0 if lengths[0] >= lengths[1] else 1
        text_index = longer if text_index is None else text_index
        label_index = 1 - text_index if label_index is None else label_index
    if text_index is None or label_index is None:
        missing = "text" if text_index is None else "label"
        raise DataError(
            f"{path}: cannot tell which column holds the {missing} (columns: {', '.join(header)}); "
            f"set task.data.text_column and task.data.label_column."
        )

    texts, labels = [], []
    for number, row in numbered:
        if label_index >= len(row) or not row[label_index].strip():
            raise DataError(
                f"{path}, line {number}: no value in the label column {header[label_index]!r}."
            )
        if text_index >= len(row):
            raise DataError(
                f"{path}, line {number}: no value in the text column {header[text_index]!r}."
            )
        texts.append(row[text_index])
        labels.append(row[label_index].strip())
    return texts, labels


def read_class_folders(directory, ignored=("unsup",)):
    """Reads (texts, labels) from a directory with one subfolder per class, one file per example.

    This is the layout of the aclImdb reviews (train/pos/*.txt, train/neg/*.txt). Files directly in
    the directory are ignored, and so are subfolders named in `ignored` (aclImdb keeps its
    unlabelled reviews in `unsup`).
    """
    directory = existing_path(directory, "directory")
    class_folders = sorted(
        folder for folder in directory.iterdir() if folder.is_dir() and folder.name not in ignored
    )
    if not class_folders:
        raise DataError(f"{directory}: no class subfolders (expected one folder of text files per class).")
    texts, labels = [], []
    for folder in class_folders:
        files = sorted(path for path in folder.iterdir() if path.is_file())
        if not files:
            raise DataError(f"{folder}: the class folder holds no files.")
        for path in files:
            texts.append(read_text(path).strip())
            labels.append(folder.name)
    return texts, labels


def read_class_files(class_files):
    """Reads (texts, labels) from one plain text file per class, one example per non-empty line."""
    if not class_files or not hasattr(class_files, "items"):
        raise DataError(
            f"task.data.class_files must map class names to files, e.g. {{neg: a.txt, pos: b.txt}}; "
            f"got {class_files!r}."
        )
    texts, labels = [], []
    for class_name, path in class_files.items():
        for _, line in read_lines(path):
            texts.append(line)
            labels.append(str(class_name))
    return texts, labels


def read_labelled_texts(path, text_column=None, label_column=None):
    """Reads (texts, labels) from a CSV/TSV file or a directory of class folders."""
    path = existing_path(path, "file or directory")
    if path.is_dir():
        return read_class_folders(path)
    return read_table(path, text_column, label_column)
