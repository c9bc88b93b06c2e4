"""Images and their captions: readers for the layouts of the common public caption datasets.

- Captions: a file of `image_name#k<TAB>caption` lines (Flickr8k's `Flickr8k.token.txt`), or a CSV
  file with the columns `image,caption` (header required; one row per caption).
- Images: a directory; each image is decoded and resized with TensorFlow's image ops.
- Splits: optional files listing the image names of each split, one per line.

Bad input gets one line naming the file (and line or image): a caption for an image that is not
in the directory, an unreadable image, a split list naming an image without captions.
"""

import collections
import csv
import io
import logging
import pathlib
import re

import numpy as np

from taskzoo.data.files import read_text
from taskzoo.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}


def read_captions(path):
    """Returns {image name: [captions]} in file order, from a token file or a CSV file."""
    text = read_text(path)
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{path}: the captions file is empty.")
    captions = collections.defaultdict(list)
    if "\t" in lines[0]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            key, tab, caption = line.partition("\t")
            if not tab or not caption.strip():
                raise DataError(f"{path}, line {number}: expected `image_name#k<TAB>caption`, got {line[:60]!r}.")
            # "1000268201_693b08cb0e.jpg#0": the image name, then the caption's number.
            captions[key.rsplit("#", 1)[0].strip()].append(caption.strip())
        return dict(captions)
    reader = csv.reader(io.StringIO(text))
    header = [name.strip().lower() for name in next(reader)]
    if "image" not in header or "caption" not in header:
        raise DataError(
            f"{path}, line 1: expected `image_name#k<TAB>caption` lines or a CSV header with the "
            f"columns image,caption (got {','.join(header)})."
        )
    image_column, caption_column = header.index("image"), header.index("caption")
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) <= max(image_column, caption_column) or not row[caption_column].strip():
            raise DataError(f"{path}, line {number}: expected an image name and a caption.")
        captions[row[image_column].strip()].append(row[caption_column].strip())
    return dict(captions)


# The first bytes of the image formats TensorFlow decodes; WebP is "RIFF", a size, then "WEBP".
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def read_image(path, size):
    """Decodes an image file (JPEG, PNG, GIF, BMP or WebP) and resizes it to (size, size, 3) uint8.

    A file of another kind is refused by its first bytes, before TensorFlow sees it; a damaged
    file of a known kind gives TensorFlow's reason without the name of its internal function."""
    import tensorflow as tf

    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the image ({error.strerror}).") from None
    if not (data.startswith(IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        raise DataError(f"{path}: cannot read the image (not a JPEG, PNG, GIF, BMP or WebP file).")
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        # TensorFlow's message names the operation it failed in: {{function_node ...}} or [Op:...].
        reason = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", str(error.message)).strip().splitlines()[0][:120].rstrip(". ")
        raise DataError(f"{path}: cannot read the image ({reason}).") from None
    image = tf.image.resize(image, (size, size), method="area", antialias=True)
    return np.asarray(tf.clip_by_value(tf.round(image), 0, 255), dtype=np.uint8)


def read_name_list(path):
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


def read_image_directory(directory, captions_path, size, split_lists):
    """Reads the captioned images of a directory.

    Args:
        directory: the images.
        captions_path: the captions file.
        size: images are resized to size x size.
        split_lists: {"train": path or None, "validation": ..., "test": ...}.

    Returns ({split: (images uint8 (count, size, size, 3), [captions per image], [names])} for
    the splits that have a list, or {"all": ...} when no list is given).
    """
    directory = pathlib.Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError(f"{directory}: no such image directory (task.data.images).")
    captions = read_captions(captions_path)
    present = {path.name for path in directory.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES}
    missing = sorted(set(captions) - present)
    if missing:
        raise DataError(
            f"{captions_path}: captions name {len(missing)} image(s) not in {directory}, the first "
            f"{missing[0]!r}."
        )
    uncaptioned = sorted(present - set(captions))
    if uncaptioned:
        logger.warning(
            "%d image(s) in %s have no caption and are left out, the first %r.",
            len(uncaptioned), directory, uncaptioned[0],
        )
    lists = {name: read_name_list(path) for name, path in split_lists.items() if path}
    if not lists:
        lists = {"all": sorted(captions)}
    splits = {}
    for split, names in lists.items():
        unknown = [name for name in names if name not in captions]
        if unknown:
            raise DataError(f"{split_lists.get(split)}: image {unknown[0]!r} has no caption in {captions_path}.")
        images = np.stack([read_image(directory / name, size) for name in names]) if names else None
        if images is None:
            raise DataError(f"{split_lists.get(split)}: the list names no image.")
        splits[split] = (images, [captions[name] for name in names], names)
    return splits


def take_images(split, indices):
    """The (images, captions) of a split at `indices` (for `splits.complete_splits`)."""
    images, captions = split
    return images[indices], [captions[index] for index in indices]
