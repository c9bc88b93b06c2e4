"""Image captioning, a one-to-many task: an image in, a sentence out.

Data: generated scenes of handwritten digits and coloured shapes with captions built from the
scene by default (see `taskzoo/data/synthetic/scenes.py`), a directory of images with a
captions file in the layout of the public caption datasets, or TFDS `coco_captions`.

Model: a CNN turns the image into a grid of features (`blocks/vision.py`: a small CNN trained from
scratch, or a Keras application with local weights, kept frozen). The grid's mean starts the
decoder (`VectorBridge`). With `task.attention=soft` the recurrent decoder (the one translation
uses) attends over the grid's locations at every step (Show, Attend and Tell); with `none` it sees
only the pooled features, through its initial state (and, with `task.feed_features`, as an input
at every step).

Evaluation: masked token accuracy and perplexity under teacher forcing, and corpus BLEU-1 to
BLEU-4 of generated captions against all references of each image (sacreBLEU), greedy each epoch
(`val_bleu4`) and with the configured decoder (`task.beam_size`) at the end.
"""

import hashlib
import json
import logging
import math
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from taskzoo.blocks.decoder import RecurrentDecoder, VectorBridge
from taskzoo.blocks.decoding import SequenceGenerator
from taskzoo.blocks.vision import ImageEncoder, pretrained_backbone
from taskzoo.data import captions as caption_files
from taskzoo.data import parallel
from taskzoo.data.captions import take_images
from taskzoo.data.splits import complete_splits, fractions
from taskzoo.data.synthetic.scenes import generate_scenes
from taskzoo.data.text import in_memory_options
from taskzoo.data.tfds_source import load_tfds_split
from taskzoo.errors import ConfigError, DataError
from taskzoo.metrics import Perplexity, corpus_bleu, masked_cross_entropy
from taskzoo.tasks.base import EpochSamples, PredictOption, Task, load_run_model, warn_of_empty_outputs, write_output_file

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@keras.saving.register_keras_serializable(package="taskzoo")
class AllPositions(keras.layers.Layer):
    """(batch, locations, features) -> (batch, locations) all true: every image location is real."""

    def call(self, memory):
        return ops.ones(ops.shape(memory)[:2], dtype="bool")


class CaptioningTask(Task):
    monitor = "val_bleu4"
    monitor_mode = "max"
    data_needs = {"files": {"images": "DIR", "captions": "FILE"}}
    tfds_example = "coco_captions"
    needs_recurrence = "the decoder is recurrent"

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        if cfg.model.bidirectional:
            raise ConfigError("model.bidirectional does not apply to captioning: the decoder writes left to right.")
        if cfg.task.encoder == "small_cnn" and (cfg.task.encoder_weights or cfg.task.feature_cache):
            raise ConfigError("task.encoder_weights and task.feature_cache need a pretrained task.encoder "
                              "(e.g. mobilenet_v3_small); the small CNN is trained from scratch.")

    # Data: images and reference captions -> a word vocabulary -> (image, caption) batches.

    def datasets(self):
        task_config = self.cfg.task
        splits = self.read_splits()

        self.tokenizer = parallel.Tokenizer("word", task_config.lowercase, split_punctuation=True)
        self.images = {name: images for name, (images, _) in splits.items()}
        # References as BLEU sees them: lower-cased when the model is, whitespace normalised.
        self.references = {
            name: [[self.tokenizer.normalize(caption) for caption in image_captions] for image_captions in captions]
            for name, (_, captions) in splits.items()
        }
        train_tokens = [self.tokenizer.tokenize(c) for captions in self.references["train"] for c in captions]
        self.vocabulary = parallel.Vocabulary.build(train_tokens, task_config.vocabulary_size, task_config.min_frequency)
        self.inputs = self._encoder_inputs()

        batch_size, seed = self.cfg.trainer.batch_size, self.cfg.trainer.seed
        self.examples, self.left_out = {}, 0
        for name in SPLITS:
            examples = []
            for index, captions in enumerate(self.references[name]):
                for caption in captions:
                    ids = self.vocabulary.encode(self.tokenizer.tokenize(caption))
                    if name == "train" and len(ids) > task_config.max_length:
                        self.left_out += 1
                        continue
                    examples.append((index, ids + [parallel.END_ID]))
            self.examples[name] = examples
        if self.left_out:
            logger.warning("Left out %d training captions longer than task.max_length=%d words.",
                           self.left_out, task_config.max_length)
        self.steps_per_epoch = -(-len(self.examples["train"]) // batch_size)
        return tuple(
            caption_batches(self.inputs[name], self.examples[name], batch_size, name == "train", seed)
            for name in SPLITS
        )

    def synthetic_splits(self, data):
        generated = generate_scenes([data.num_train, data.num_validation, data.num_test],
                                    self.cfg.trainer.seed, self.cfg.task.image_size)
        return dict(zip(SPLITS, generated))

    def files_splits(self, data):
        task_config = self.cfg.task
        lists = {"train": data.train_list, "validation": data.validation_list, "test": data.test_list}
        read = caption_files.read_image_directory(data.images, data.captions, task_config.image_size, lists)
        splits = {name: (images, captions) for name, (images, captions, _) in read.items()}
        return self._split_missing(splits, data)

    def tfds_splits(self, data):
        task_config = self.cfg.task

        def load(split):
            dataset, info = load_tfds_split(data.name, split, data.data_dir)
            if "image" not in info.features or "captions" not in info.features:
                raise DataError(f"TFDS dataset {data.name!r} has no 'image' and 'captions' features.")
            images, captions = [], []
            for example in dataset.as_numpy_iterator():
                image = tf.image.resize(example["image"], (task_config.image_size,) * 2, method="area", antialias=True)
                images.append(np.asarray(tf.clip_by_value(tf.round(image), 0, 255), np.uint8))
                captions.append([text.decode("utf-8") for text in example["captions"]["text"]])
            if not images:
                raise DataError(f"The {split!r} split of {data.name} is empty.")
            return np.stack(images), captions

        splits = {"train": load(data.train_split), "test": load(data.test_split)}
        if data.validation_split:
            splits["validation"] = load(data.validation_split)
        return self._split_missing(splits, data)

    def _split_missing(self, splits, data):
        """Carves the splits that are not given out of the training images, by seed."""
        seed = self.cfg.trainer.seed
        if "all" in splits:
            splits = {"train": splits.pop("all"), **splits}
        splits["train"], splits["validation"], splits["test"] = complete_splits(
            splits, fractions(data), seed, take=take_images, size=lambda images: len(images[0]), what="images"
        )
        return splits

    def _encoder_inputs(self):
        """What the trained network reads per image: the image itself, or, with a frozen
        pretrained encoder and feature caching, its features computed once."""
        task_config = self.cfg.task
        self.backbone = None
        if task_config.encoder != "small_cnn":
            self.backbone = pretrained_backbone(task_config.encoder, task_config.image_size, task_config.encoder_weights)
            self.backbone.trainable = False
        if self.backbone is None or task_config.feature_cache is None:
            return dict(self.images)
        return {name: self._cached_features(name, images) for name, images in self.images.items()}

    def _cached_features(self, split, images):
        task_config = self.cfg.task
        weights = pathlib.Path(task_config.encoder_weights) if task_config.encoder_weights else None
        key = hashlib.sha1(
            json.dumps([task_config.encoder, str(weights), weights.stat().st_size if weights else 0,
                        weights.stat().st_mtime if weights else 0]).encode()
            + images.tobytes()
        ).hexdigest()[:16]
        directory = pathlib.Path(task_config.feature_cache).expanduser()
        path = directory / f"{task_config.encoder}-{split}-{key}.npy"
        if path.is_file():
            logger.info("Encoder features of the %s images read from %s.", split, path)
            return np.load(path)
        feature_maps = self.backbone.predict(images, batch_size=64, verbose=0)
        features = feature_maps.reshape(len(images), -1, feature_maps.shape[-1]).astype(np.float32)
        directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, features)
        temporary.replace(path)
        logger.info("Encoder features of the %s images written to %s.", split, path)
        return features

    # Model: image encoder -> grid of features -> initial state and attention memory -> decoder.

    def build_model(self):
        task_config = self.cfg.task
        sample = self.inputs["train"]
        if self.backbone is not None and task_config.feature_cache is not None:
            image = keras.Input(sample.shape[1:], dtype="float32", name="image")
            grid = image
        else:
            image = keras.Input(sample.shape[1:], dtype="uint8", name="image")
            grid = self.encode_image(image)
        caption_input = keras.Input((None,), dtype="int32", name="caption_input")
        logits = self.decode(grid, caption_input)
        return keras.Model({"image": image, "caption_input": caption_input}, logits, name="captioner")

    def encode_image(self, image):
        """(batch, size, size, 3) images -> (batch, locations, features)."""
        task_config = self.cfg.task
        if self.backbone is None:
            return ImageEncoder(task_config.cnn_filters, task_config.image_features, name="image_encoder")(image)
        feature_map = self.backbone(keras.ops.cast(image, "float32"))
        _, height, width, channels = feature_map.shape
        return keras.layers.Reshape((height * width, channels), name="grid")(feature_map)

    def decode(self, grid, caption_input):
        model_config, task_config = self.cfg.model, self.cfg.task
        cell = str(model_config.cell)
        pooled = keras.layers.GlobalAveragePooling1D(name="pool")(grid)
        initial_states = VectorBridge(cell, model_config.units, model_config.num_layers, name="bridge")(pooled)
        if str(task_config.attention) == "soft":
            memory, attention = grid, "additive"
        else:
            memory = keras.layers.Reshape((1, pooled.shape[-1]), name="pooled_memory")(pooled)
            attention = "mean" if task_config.feed_features else "none"
        memory_mask = AllPositions(name="memory_mask")(memory)
        return RecurrentDecoder(
            len(self.vocabulary),
            cell=cell,
            units=model_config.units,
            num_layers=model_config.num_layers,
            embedding_dim=model_config.embedding_dim,
            attention=attention,
            dropout=model_config.dropout,
            kernel_initializer=str(model_config.initializer),
            recurrent_initializer=str(model_config.recurrent_initializer),
            name="decoder",
        )(caption_input, memory, memory_mask, initial_states)

    def loss(self):
        return masked_cross_entropy()

    def weighted_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), Perplexity()]

    def callbacks(self, run_dir):
        return [CaptionSamples(self, run_dir / "samples")]

    def captioner(self, network):
        """One captioner per network, made on first use and kept on the task (its compiled
        functions read the network's current weights, so it serves every epoch)."""
        return self.for_network("captioner", network, lambda network: Captioner(
            network, self.tokenizer, self.vocabulary, self.cfg.task.max_length
        ))

    def extra_metrics(self, network, split):
        task_config = self.cfg.task
        captioner = self.captioner(network)
        count = self.decode_limit(len(self.references[split]))
        images, references = self.inputs[split][:count], self.references[split][:count]
        scores = bleu_scores(captioner.caption(images, task_config.beam_size, task_config.length_penalty), references)
        if task_config.beam_size > 1:
            scores["bleu4_greedy"] = bleu_scores(captioner.caption(images), references)["bleu4"]
        return scores

    def export_model(self, model):
        """With cached features the network reads features: the saved model puts the frozen
        encoder in front of it, so it takes images like every other captioner."""
        if self.backbone is None or self.cfg.task.feature_cache is None:
            return model
        image = keras.Input((self.cfg.task.image_size,) * 2 + (3,), dtype="uint8", name="image")
        caption_input = keras.Input((None,), dtype="int32", name="caption_input")
        grid = self.encode_image(image)
        return keras.Model({"image": image, "caption_input": caption_input},
                           model({"image": grid, "caption_input": caption_input}), name="captioner")

    def save_artifacts(self, run_dir):
        (run_dir / "vocabulary.json").write_text(json.dumps(self.vocabulary.tokens, ensure_ascii=False))

    def description(self):
        return {
            "images": {name: len(images) for name, images in self.images.items()},
            "captions": {name: len(examples) for name, examples in self.examples.items()},
            "left_out_training_captions": self.left_out,
            "vocabulary_size": len(self.vocabulary),
            "image_shape": list(self.images["train"].shape[1:]),
        }

    # Inference: `taskzoo-predict run_dir=RUN image=path.png [beam_size=3] [attention=out.png]`.

    predict_options = {
        "image": PredictOption(str, "the image to caption (png, jpeg, bmp or gif)"),
        "beam_size": PredictOption(int, "beam width (1: greedy search); default: the run's task.beam_size"),
        "length_penalty": PredictOption(float, "length penalty alpha; default: the run's task.length_penalty"),
        "attention": PredictOption(str, "write the attention over the image, word by word, to this PNG file"),
    }

    @classmethod
    def predict(cls, run_dir, cfg, options):
        if "image" not in options:
            raise ConfigError("A captioning run captions image=PATH (a png, jpeg, bmp or gif file).")
        path = pathlib.Path(options["image"])
        if not path.is_file():
            raise DataError(f"{path}: no such image.")
        beam_size = options.get("beam_size", cfg.task.beam_size)
        if beam_size < 1:
            raise ConfigError(f"beam_size must be 1 or more; received {beam_size}.")
        network = load_run_model(run_dir)
        vocabulary = parallel.Vocabulary(json.loads((run_dir / "vocabulary.json").read_text()))
        tokenizer = parallel.Tokenizer("word", cfg.task.lowercase, split_punctuation=True)
        image = caption_files.read_image(path, cfg.task.image_size)
        captioner = Captioner(network, tokenizer, vocabulary, cfg.task.max_length)
        result = captioner.caption(image[None], beam_size, options.get("length_penalty", cfg.task.length_penalty))[0]
        warn_of_empty_outputs([result["text"]], "caption", [str(path)])
        print(result["text"])
        if "attention" in options:
            if str(cfg.task.attention) != "soft":
                raise ConfigError("attention= needs a model trained with task.attention=soft.")
            strip = attention_strip(image, result["tokens"], result["attention"])
            import io

            from PIL import Image

            png = io.BytesIO()
            Image.fromarray(strip).save(png, format="png")
            write_output_file(options["attention"], png.getvalue())
            print(f"Attention over the image, word by word: {options['attention']}")


def caption_batches(inputs, examples, batch_size, training, seed):
    """Batches of ({"image", "caption_input"}, caption_output, weights) over (image index, caption
    ids) examples; each image is stored once and gathered per batch."""
    inputs = tf.constant(inputs)
    indices = np.array([index for index, _ in examples], dtype="int64")
    captions = parallel.ragged_ids([ids for _, ids in examples])

    def example(position):
        caption_output = captions[position]
        caption_input = tf.concat([[parallel.START_ID], caption_output[:-1]], axis=0)
        return inputs[indices_tensor[position]], caption_input, caption_output

    def arrange(image, caption_input, caption_output):
        weights = tf.cast(caption_output != parallel.PADDING_ID, tf.float32)
        return {"image": image, "caption_input": caption_input}, caption_output, weights

    indices_tensor = tf.constant(indices)
    dataset = tf.data.Dataset.range(len(examples))
    if training:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.map(example).padded_batch(batch_size).map(arrange)
    if not training:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-len(examples) // batch_size)))
    return dataset.prefetch(2).with_options(in_memory_options())


def bleu_scores(results, references):
    """Corpus BLEU-1 to BLEU-4 (0-100) of generated captions against every reference."""
    hypotheses = [result["text"] for result in results]
    return {f"bleu{order}": corpus_bleu(hypotheses, references, max_order=order) for order in range(1, 5)}


class Captioner:
    """Captions images with a trained network, greedily or with beam search."""

    def __init__(self, network, tokenizer, vocabulary, max_length):
        self.network = network
        self.tokenizer, self.vocabulary, self.max_length = tokenizer, vocabulary, max_length
        memory_mask = network.get_layer("memory_mask")
        encoder = keras.Model(
            network.get_layer("image").output,
            [memory_mask.input, memory_mask.output, network.get_layer("bridge").output],
        )
        self.generator = SequenceGenerator(
            encoder, network.get_layer("decoder"), parallel.START_ID, parallel.END_ID,
            banned_ids=(parallel.PADDING_ID, parallel.START_ID),
        )

    def caption(self, images, beam_size=1, length_penalty=0.0, batch_size=64):
        """One dict per image: `text`, `tokens`, `attention` ((steps, locations) or None). A batch
        holds `batch_size` images, as in `Translator.translate`."""
        results = []
        for start in range(0, len(images), batch_size):
            batch = tf.constant(images[start : start + batch_size])
            max_lengths = np.full(len(batch), self.max_length)
            for result in self.generator.generate(batch, max_lengths, beam_size, length_penalty):
                tokens = self.vocabulary.decode(result["tokens"])
                results.append({"text": self.tokenizer.detokenize(tokens), "tokens": tokens,
                                "attention": result["attention"]})
        return results


class CaptionSamples(EpochSamples):
    """At every epoch end: `val_bleu4` of greedy captions of the validation images (added to the
    epoch's logs, so it can select the best epoch); a few validation images with their generated
    and reference captions (text tab) and, with soft attention, where the model looked for each
    word (image tab)."""

    def write_epoch(self, network, epoch, scores):
        task = self.task
        limit = task.decode_limit(len(task.references["validation"]), task.cfg.task.eval_decode_examples)
        started = time.perf_counter()
        results = task.captioner(network).caption(task.inputs["validation"][:limit])
        scores["bleu4"] = bleu_scores(results, task.references["validation"][:limit])["bleu4"]
        # TensorBoard shows it as the validation run's epoch_decode_seconds.
        scores["decode_seconds"] = time.perf_counter() - started
        count = task.cfg.task.sample_images
        rows = ["| image | generated | references |", "|---|---|---|"]
        for index, result in enumerate(results[:count]):
            references = " / ".join(task.references["validation"][index])
            rows.append(f"| {index} | {result['text']} | {references} |")
        if count:
            tf.summary.text("validation/captions", "\n".join(rows))
        if str(task.cfg.task.attention) == "soft":
            for index, result in enumerate(results[:count]):
                strip = attention_strip(task.images["validation"][index], result["tokens"], result["attention"])
                tf.summary.image(f"validation/attention_{index}", strip[None])


def attention_strip(image, words, attention, tile=96):
    """One image: a panel per generated word (the end token last) showing the image with the
    attention weights over its grid upsampled and laid over it, the word under each panel."""
    from PIL import Image, ImageDraw

    words = list(words) + [parallel.END]
    attention = np.asarray(attention)[: len(words)]
    side = int(round(math.sqrt(attention.shape[-1])))
    caption = 14
    strip = Image.new("RGB", (tile * len(attention), tile + caption), "white")
    draw = ImageDraw.Draw(strip)
    base = np.asarray(Image.fromarray(image).resize((tile, tile), Image.BILINEAR), np.float32) / 255.0
    for index, (word, weights) in enumerate(zip(words, attention)):
        grid = weights[: side * side].reshape(side, side)
        grid = grid / max(grid.max(), 1e-8)
        heat = np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize((tile, tile), Image.BILINEAR),
                          np.float32)[..., None] / 255.0
        # Bright where the model looked, dimmed elsewhere.
        panel = base * (0.25 + 0.75 * heat)
        strip.paste(Image.fromarray((panel * 255).astype(np.uint8)), (index * tile, 0))
        draw.text((index * tile + 2, tile + 1), str(word)[:14], fill="black")
    return np.asarray(strip)
