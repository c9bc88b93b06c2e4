"""Frame-level video classification, a synchronised many-to-many task: a label for every frame.

Data: videos of real handwritten digits moving over a canvas by default (each frame labelled with
the motion that brought the digit there, see `taskzoo/data/synthetic/moving_digits.py`), local
videos with frame labels (see `taskzoo/data/video.py`), or a TFDS video builder such as `ucf101`
whose per-video label is given to every frame.

Model: a small CNN encodes every real frame (`blocks/vision.py`), the shared recurrent stack carries
context across frames, and a dense layer gives one logit per class at every frame. Padded frames
are masked everywhere: they skip the CNN, the recurrent stack skips them (its state is not
touched), and their weight in the loss and the metrics is zero. `model.num_layers=0` removes the
recurrence: the per-frame baseline.
"""

import json
import logging
import pathlib

import keras
import numpy as np
import tensorflow as tf

from taskzoo.blocks.recurrent import recurrent_stack_from_config
from taskzoo.blocks.vision import VideoEncoder
from taskzoo.data import video
from taskzoo.data.splits import complete_splits, fractions
from taskzoo.data.synthetic.moving_digits import CLASS_NAMES, generate_videos
from taskzoo.data.tfds_source import load_tfds_split
from taskzoo.errors import ConfigError, DataError
from taskzoo.segments import segment_scores, segments
from taskzoo.metrics import masked_cross_entropy
from taskzoo.tasks.base import EpochSamples, PredictOption, Task, load_run_model

logger = logging.getLogger(__name__)


class VideoTask(Task):
    monitor = "val_frame_accuracy"
    monitor_mode = "max"
    data_needs = {"files": {"train": "DIR (one video or frame folder per entry)"}}
    tfds_example = "ucf101"

    # Data: three lists of videos with integer frame labels, batched with padding and weights.

    def datasets(self):
        splits = self.read_splits()
        self.splits = {}
        for name, videos in zip(("train", "validation", "test"), splits):
            if not videos:
                raise DataError(f"The {name} split has no videos.")
            self.splits[name] = videos
        self.frame_shape = self.splits["train"][0].frames.shape[1:]
        self.label_ids = {name: [self.encode(v) for v in videos] for name, videos in self.splits.items()}
        batch_size, seed = self.cfg.trainer.batch_size, self.cfg.trainer.seed
        return tuple(
            video.batches(self.splits[name], self.label_ids[name], batch_size, name == "train", seed)
            for name in ("train", "validation", "test")
        )

    def encode(self, clip):
        index = {name: i for i, name in enumerate(self.class_names)}
        unknown = sorted(set(clip.labels) - set(index))
        if unknown:
            raise DataError(
                f"Video {clip.name!r} has the label {unknown[0]!r}, which no training video has "
                f"(known labels: {', '.join(self.class_names)})."
            )
        return np.asarray([index[label] for label in clip.labels], dtype=np.int32)

    def synthetic_splits(self, data_config):
        self.class_names = list(CLASS_NAMES)
        task = self.cfg.task
        splits = []
        for offset, count in enumerate((data_config.num_train, data_config.num_validation, data_config.num_test)):
            generated = generate_videos(count, task.frame_size, task.max_frames, seed=self.cfg.trainer.seed * 3 + offset)
            splits.append([
                video.prepare(video.Video(f"video_{index}", frames, [CLASS_NAMES[i] for i in labels]),
                              task.frame_size, task.frame_stride, task.max_frames)
                for index, (frames, labels) in enumerate(generated)
            ])
        return splits

    def files_splits(self, data_config):
        task = self.cfg.task

        def read(directory):
            return video.read_video_directory(
                directory, data_config.labels, task.frame_size, task.frame_stride, task.max_frames
            )

        splits = {name: read(data_config[name]) for name in ("train", "validation", "test") if data_config[name]}
        train, validation, test = complete_splits(splits, fractions(data_config), self.cfg.trainer.seed, what="videos")
        self.class_names = sorted({label for clip in train for label in clip.labels})
        return train, validation, test

    def tfds_splits(self, data_config):
        task = self.cfg.task

        def load(split):
            dataset, info = load_tfds_split(data_config.name, split, data_config.data_dir)
            video_key, label_key = tfds_video_keys(info, data_config.name)
            names = info.features[label_key].names
            clips = []
            for index, example in enumerate(dataset.as_numpy_iterator()):
                frames = video.to_rgb(np.asarray(example[video_key]))
                labels = [names[int(example[label_key])]] * len(frames)
                clips.append(video.prepare(video.Video(f"{split}_{index}", frames, labels),
                                           task.frame_size, task.frame_stride, task.max_frames))
            return clips, names

        train, self.class_names = load(data_config.train_split)
        test, _ = load(data_config.test_split)
        validation = load(data_config.validation_split)[0] if data_config.validation_split else None
        splits = {"train": train, "validation": validation, "test": test}
        return complete_splits(splits, fractions(data_config), self.cfg.trainer.seed, what="videos")

    # Model: frame encoder -> recurrent stack over real frames -> a classifier at every frame.

    def build_model(self):
        cfg = self.cfg
        frames = keras.Input((None, *self.frame_shape), dtype="uint8" if len(self.frame_shape) == 3 else "float32",
                             name="frames")
        real_frames = keras.Input((None,), dtype="bool", name="mask")
        if len(self.frame_shape) == 3:
            features = VideoEncoder(cfg.task.cnn_filters, cfg.task.frame_features, name="video_encoder")(
                frames, real_frames
            )
        else:  # Precomputed per-frame features.
            features = keras.layers.Dense(cfg.task.frame_features, activation="relu", name="project")(frames)
        features = keras.layers.Dropout(cfg.model.dropout)(features)
        sequence = recurrent_stack_from_config(cfg.model, return_sequences=True, name="recurrent_stack")(
            features, mask=real_frames
        )
        sequence = keras.layers.Dropout(cfg.model.dropout)(sequence)
        logits = keras.layers.Dense(len(self.class_names), name="classifier")(sequence)
        return keras.Model({"frames": frames, "mask": real_frames}, logits, name="video_labeller")

    def loss(self):
        return masked_cross_entropy()

    def weighted_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="frame_accuracy")]

    def callbacks(self, run_dir):
        return [ValidationVideos(self, run_dir / "samples")]

    def extra_metrics(self, network, split):
        dataset = self.batches_of(split)
        labeller = self.for_network("labeller", network, lambda network: label_function(network, dataset))
        predictions = predict_labels(network, dataset, labeller)
        return segment_scores(predictions, self.label_ids[split])

    def batches_of(self, split):
        return video.batches(self.splits[split], self.label_ids[split], self.cfg.trainer.batch_size, False, 0)

    def save_artifacts(self, run_dir):
        (run_dir / "classes.json").write_text(json.dumps(self.class_names) + "\n")

    def description(self):
        frames = {name: sum(len(v.frames) for v in videos) for name, videos in self.splits.items()}
        return {
            "videos": {name: len(videos) for name, videos in self.splits.items()},
            "frames": frames,
            "frame_shape": list(self.frame_shape),
            "classes": self.class_names,
        }

    # Inference: `taskzoo-predict run_dir=RUN video=path.mp4`.

    predict_options = {
        "video": PredictOption(str, "a video file (mp4, avi, gif, ...), a folder of frame images or a .npy array"),
    }

    @classmethod
    def predict(cls, run_dir, cfg, options):
        if "video" not in options:
            raise ConfigError("Missing video=PATH (a video file, a folder of frames or a .npy feature file).")
        model = load_run_model(run_dir)
        class_names = json.loads((run_dir / "classes.json").read_text())
        path = pathlib.Path(options["video"])
        if not path.exists():
            raise DataError(f"{path}: no such video.")
        stride = cfg.task.frame_stride
        clip = video.Video(path.name, video.read_frames(path))
        # Every frame is labelled: the stride applies, max_frames does not.
        clip = video.prepare(clip, cfg.task.frame_size, stride, len(clip.frames))
        frames = match_input(clip.frames, model.input["frames"].shape)
        logits = model({"frames": frames[None], "mask": np.ones((1, len(frames)), bool)}, training=False)
        labels = [class_names[i] for i in np.argmax(np.asarray(logits)[0], axis=-1)]
        for index, label in enumerate(labels):
            print(f"frame {index * stride}: {label}")
        print("segments (label, first frame, last frame):")
        for label, first, last in segments(labels):
            print(f"{label}\t{first * stride}\t{last * stride}")


def tfds_video_keys(info, name):
    """Returns (video_key, label_key) of a TFDS builder with one video and one class label."""
    import tensorflow_datasets as tfds

    features = info.features
    video_keys = [key for key, feature in features.items() if len(feature.shape) == 4]
    label_keys = [key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)]
    if len(video_keys) != 1 or len(label_keys) != 1:
        raise DataError(
            f"TFDS dataset {name!r} is not a labelled video dataset (video features {video_keys}, "
            f"class label features {label_keys}); it needs one of each."
        )
    return video_keys[0], label_keys[0]


def match_input(frames, input_shape):
    """Checks a decoded video against the model's input and converts RGB and grey-scale frames."""
    expected = tuple(input_shape[2:])
    if frames.ndim == 4 and len(expected) == 3 and frames.shape[-1] != expected[-1]:
        if expected[-1] == 1:
            frames = np.round(frames.mean(axis=-1, keepdims=True)).astype(np.uint8)
        elif frames.shape[-1] == 1:
            frames = np.repeat(frames, expected[-1], axis=-1)
    if frames.shape[1:] != expected:
        raise DataError(f"The video gives frames of shape {frames.shape[1:]}; the model takes {expected}.")
    return frames


def label_function(network, dataset):
    """The network's compiled frame labelling; the time axis and the batch size are left open."""
    return tf.function(
        lambda inputs: tf.argmax(network(inputs, training=False), axis=-1),
        input_signature=[dataset.element_spec[0]],
    )


def predict_labels(network, dataset, predict=None):
    """The predicted label ids of every video, real frames only, in dataset order.

    `predict`, from `label_function`, is the compiled prediction to reuse across calls.
    """
    predict = predict or label_function(network, dataset)
    predictions = []
    for inputs, _, _ in dataset:
        labels = predict(inputs).numpy()
        lengths = inputs["mask"].numpy().sum(axis=1)
        predictions += [row[:length] for row, length in zip(labels, lengths)]
    return predictions


class ValidationVideos(EpochSamples):
    """At every epoch end: the segment scores of the validation videos (`val_edit_score`,
    `val_f1_50`, added to the epoch's logs), and a strip of one validation video's frames with the
    true and the predicted label under each frame, in TensorBoard's image tab."""

    def write_epoch(self, network, epoch, scores):
        scores.update(self.task.extra_metrics(network, "validation"))
        clip = self.task.splits["validation"][0]
        if clip.frames.ndim != 4:
            return
        count = min(len(clip.frames), self.task.cfg.task.strip_frames)
        inputs = {"frames": clip.frames[None, :count], "mask": np.ones((1, count), bool)}
        predicted = np.argmax(np.asarray(network(inputs, training=False))[0], axis=-1)
        names = self.task.class_names
        strip = frame_strip(clip.frames[:count], clip.labels[:count], [names[i] for i in predicted])
        tf.summary.image("validation/frames", strip[None], step=epoch)


def frame_strip(frames, true_labels, predicted_labels, tile=64):
    """One image: the frames side by side, the true label (black) and the predicted label (green
    when right, red when wrong) under each."""
    from PIL import Image, ImageDraw

    caption = 26
    strip = Image.new("RGB", (tile * len(frames), tile + caption), "white")
    draw = ImageDraw.Draw(strip)
    for index, (frame, truth, guess) in enumerate(zip(frames, true_labels, predicted_labels)):
        image = Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).convert("RGB")
        strip.paste(image.resize((tile, tile), Image.NEAREST), (index * tile, 0))
        draw.text((index * tile + 2, tile + 1), str(truth)[:10], fill="black")
        draw.text((index * tile + 2, tile + 13), str(guess)[:10], fill="green" if guess == truth else "red")
    return np.asarray(strip)
