"""TensorFlow Datasets, read offline: a dataset that is not prepared gives one clear line."""

import contextlib
import logging

from taskzoo.errors import DataError


@contextlib.contextmanager
def absl_errors_only():
    """Keeps TFDS's own log lines (the folders it looks in, the datasets it constructs) off the
    console: they said, for instance, that a folder that does not exist has no dataset_info.json
    just before the one line that says the dataset is not prepared."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_tfds_split(name, split, data_dir=None):
    """Loads one split of a prepared TFDS dataset without downloading; returns (dataset, info)."""
    import tensorflow_datasets as tfds

    try:
        with absl_errors_only():
            return tfds.load(name, split=split, data_dir=data_dir, download=False, try_gcs=False, with_info=True)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"TFDS has no dataset named {name!r} (task.data.name).") from None
    except AssertionError as error:
        if "could not find data" not in str(error):
            raise
        location = data_dir or "the default TFDS data directory (~/tensorflow_datasets)"
        raise DataError(
            f"TFDS dataset {name!r} is not prepared in {location} and nothing can be downloaded "
            f"here; run `tfds build {name}` where there is internet access, then pass "
            f"task.data.data_dir=DIR."
        ) from None
    except ValueError as error:
        if "split" in str(error).lower():
            raise DataError(f"TFDS dataset {name!r} has no split {split!r}: {error}") from None
        raise


def text_classification_keys(info, name):
    """Returns (text_key, label_key, class_names) for a TFDS text classification dataset."""
    import tensorflow_datasets as tfds

    features = info.features
    text_keys = [key for key, feature in features.items() if isinstance(feature, tfds.features.Text)]
    label_keys = [
        key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)
    ]
    if info.supervised_keys and len(info.supervised_keys) == 2:
        text_key, label_key = info.supervised_keys
        if text_key in text_keys and label_key in label_keys:
            return text_key, label_key, list(features[label_key].names)
    if len(text_keys) != 1 or len(label_keys) != 1:
        raise DataError(
            f"TFDS dataset {name!r} is not a single-text classification dataset "
            f"(text features {text_keys}, label features {label_keys})."
        )
    return text_keys[0], label_keys[0], list(features[label_keys[0]].names)
