"""Videos with a label per frame, read from local files, and their batching.

A data directory holds one entry per video: a video file (mp4, avi, mov, mkv, webm, gif), a folder
of frame images (png, jpg, bmp; in natural name order, so frame_2 comes before frame_10), or a
NumPy `.npy` file of precomputed per-frame features (time, features). Frame labels come from a
CSV file with the columns video,frame,label (video is the file or folder name, with or without
its extension; frame counts from 0), or from a directory of `<video>.txt` files with one label per
line, one line per frame, the layout of the common action-segmentation datasets.
"""

import csv
import dataclasses
import io
import pathlib
import re

import numpy as np

from taskzoo.data import files
from taskzoo.errors import DataError, short_cause

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
FEATURE_SUFFIX = ".npy"


@dataclasses.dataclass
class Video:
    """One video: its name, its frames (time, height, width, channels) uint8 or per-frame
    features (time, features) float32, and its frame labels (names), or None when unlabelled."""

    name: str
    frames: np.ndarray
    labels: list = None


def natural_key(name):
    """Sorts "frame_2" before "frame_10"."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def video_entries(directory):
    """The video files, frame folders and feature files in `directory`, in natural name order."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory of videos.")
    entries = []
    for path in sorted(directory.iterdir(), key=lambda path: natural_key(path.name)):
        if path.name.startswith("."):
            continue
        if path.is_dir() and any(child.suffix.lower() in IMAGE_SUFFIXES for child in path.iterdir()):
            entries.append(path)
        elif path.suffix.lower() in VIDEO_SUFFIXES | {FEATURE_SUFFIX}:
            entries.append(path)
    if not entries:
        raise DataError(
            f"{directory}: no videos found (expected video files {sorted(VIDEO_SUFFIXES)}, folders "
            f"of frame images or {FEATURE_SUFFIX} feature files)."
        )
    return entries


def video_name(path):
    path = pathlib.Path(path)
    return path.name if path.is_dir() else path.stem


def read_frames(path):
    """Decodes one video file, frame folder or feature file; returns a uint8 (time, height, width,
    3) array of RGB frames, or a float32 (time, features) array of features."""
    path = pathlib.Path(path)
    if path.suffix.lower() == FEATURE_SUFFIX:
        return _read_features(path)
    if path.is_dir():
        return _read_frame_folder(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file.")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise DataError(f"{path}: one image, not a video (give a folder of frame images, a video file or a "
                        f"{FEATURE_SUFFIX} feature file).")
    import imageio.v3 as iio

    try:
        frames = np.asarray(iio.imread(path, index=None))
    except Exception as error:  # Decoders raise many kinds of errors for a damaged file.
        raise DataError(f"{path}: cannot decode the video ({short_cause(error)}).") from None
    if frames.ndim == 3:  # A grey-scale video: (time, height, width).
        frames = frames[..., None]
    if frames.ndim != 4 or len(frames) == 0:
        raise DataError(f"{path}: decoded to shape {frames.shape}, not a sequence of frames.")
    return to_rgb(frames)


def _read_features(path):
    """A float32 (time, features) array from a NumPy `.npy` file."""
    with open(path, "rb") as file:
        if file.read(6) != b"\x93NUMPY":
            raise DataError(f"{path}: not a NumPy {FEATURE_SUFFIX} file (it lacks the format's header).")
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the feature file ({short_cause(error)}).") from None
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
        raise DataError(f"{path}: expected numbers of shape (frames, features), got {features.dtype} of shape "
                        f"{features.shape}.")
    return features.astype(np.float32)


def _read_frame_folder(path):
    """The frames of a folder of images, in natural name order; all must have one size."""
    images = sorted((child for child in path.iterdir() if child.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda child: natural_key(child.name))
    if not images:
        raise DataError(f"{path}: no frame images in this folder (expected {', '.join(sorted(IMAGE_SUFFIXES))} files).")
    frames = [_read_image(image) for image in images]
    for image, frame in zip(images, frames):
        if frame.shape != frames[0].shape:
            raise DataError(f"{image}: a frame of {frame.shape[1]} x {frame.shape[0]} pixels among frames of "
                            f"{frames[0].shape[1]} x {frames[0].shape[0]} ({images[0].name}).")
    return np.stack(frames)


def _read_image(path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: cannot decode the image ({short_cause(error)}).") from None


def to_rgb(frames):
    """uint8 RGB frames from grey-scale (one channel) or RGBA (four channels) frames."""
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    elif frames.shape[-1] == 4:
        frames = frames[..., :3]
    return frames.astype(np.uint8)


def read_label_csv(path):
    """Reads video,frame,label rows; returns {video name: list of labels in frame order}."""
    path = pathlib.Path(path)
    rows = {}
    # read_text names the file and line of a byte that is not UTF-8, and reads byte-order marks.
    with io.StringIO(files.read_text(path), newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"video", "frame", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)} (expected video,frame,label).")
        for line_number, row in enumerate(reader, start=2):
            try:
                frame = int(row["frame"])
            except (TypeError, ValueError):
                raise DataError(f"{path}, line {line_number}: frame {row['frame']!r} is not an integer.") from None
            if frame < 0 or not row["label"]:
                raise DataError(f"{path}, line {line_number}: needs a frame of 0 or more and a label.")
            name = pathlib.PurePath(row["video"]).name
            frames = rows.setdefault(name, {})
            if frame in frames:
                raise DataError(f"{path}, line {line_number}: frame {frame} of {name!r} is labelled twice.")
            frames[frame] = row["label"].strip()
    labels = {}
    for name, frames in rows.items():
        gaps = sorted(set(range(len(frames))) - set(frames))
        if gaps:
            raise DataError(f"{path}: video {name!r} has no label for frame {gaps[0]}.")
        labels[name] = [frames[index] for index in range(len(frames))]
    return labels


def labels_for(entry, labels_source):
    """The frame labels of one video entry from a CSV mapping or a directory of .txt files."""
    entry = pathlib.Path(entry)
    if isinstance(labels_source, dict):
        for key in (entry.name, video_name(entry)):
            if key in labels_source:
                return labels_source[key]
        raise DataError(f"{entry}: no labels for this video in the labels file.")
    label_file = pathlib.Path(labels_source) / f"{video_name(entry)}.txt"
    if not label_file.is_file():
        raise DataError(f"{entry}: no label file {label_file}.")
    lines = files.read_text(label_file).splitlines()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(f"{label_file}, line {line_number}: empty label.")
    return [line.strip() for line in lines]


def resolve_labels(directory, labels):
    """The labels of a data directory: the given CSV file or .txt directory, else labels.csv in it."""
    if labels is None:
        default = pathlib.Path(directory) / "labels.csv"
        if not default.is_file():
            raise DataError(f"{directory}: no labels.csv; pass task.data.labels=FILE_OR_DIR.")
        labels = default
    labels = pathlib.Path(labels)
    if labels.is_dir():
        return labels
    if not labels.is_file():
        raise DataError(f"{labels}: no such labels file or directory (task.data.labels).")
    return read_label_csv(labels)


def read_video_directory(directory, labels, frame_size, frame_stride, max_frames):
    """Reads every video of a directory with its frame labels, resized, strided and clipped."""
    labels_source = resolve_labels(directory, labels)
    videos = []
    for entry in video_entries(directory):
        frames = read_frames(entry)
        frame_labels = labels_for(entry, labels_source)
        if len(frame_labels) != len(frames):
            raise DataError(
                f"{entry}: {len(frames)} frames but {len(frame_labels)} labels; every frame needs one label."
            )
        videos.append(prepare(Video(video_name(entry), frames, frame_labels), frame_size, frame_stride, max_frames))
    return videos


def prepare(video, frame_size, frame_stride, max_frames):
    """Keeps every `frame_stride`-th frame up to `max_frames`, resized to frame_size x frame_size."""
    frames = video.frames[::frame_stride][:max_frames]
    labels = None if video.labels is None else list(video.labels[::frame_stride][:max_frames])
    return Video(video.name, resize_frames(frames, frame_size), labels)


def resize_frames(frames, frame_size):
    """Resizes uint8 frames (time, height, width, channels) with TensorFlow's area-averaging resize;
    per-frame features pass through unchanged."""
    if frames.ndim != 4 or frames.shape[1:3] == (frame_size, frame_size):
        return frames
    import tensorflow as tf

    resized = tf.image.resize(frames, (frame_size, frame_size), method="area", antialias=True)
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


def batches(videos, label_ids, batch_size, shuffle, seed):
    """Padded batches of ({"frames", "mask"}, labels, weights); weights are 1 on real frames and
    0 on padding, so losses and metrics count real frames only.

    Every pass reads the videos from their arrays in memory, one at a time: no second copy of
    the frames is kept, and a run that reads part of a split reads no more than it needs."""
    import tensorflow as tf

    frames_shape = videos[0].frames.shape[1:]
    dtype = tf.uint8 if videos[0].frames.dtype == np.uint8 else tf.float32

    def generate():
        for video, ids in zip(videos, label_ids):
            length = len(video.frames)
            yield ({"frames": video.frames, "mask": np.ones(length, bool)}, ids, np.ones(length, np.float32))

    dataset = tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            {
                "frames": tf.TensorSpec((None, *frames_shape), dtype),
                "mask": tf.TensorSpec((None,), tf.bool),
            },
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.float32),
        ),
    )
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(videos)))
    if shuffle:
        dataset = dataset.shuffle(len(videos), seed=seed, reshuffle_each_iteration=True)
    return dataset.padded_batch(batch_size).prefetch(2)
