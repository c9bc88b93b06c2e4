"""Image captioning: attention over the image grid, decoding, data layouts, TFDS, backbones, runs."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from conftest import compose_config, event_tags, run_cli
from taskzoo import train
import reference_decoding
from taskzoo.blocks import decoding
from taskzoo.data import parallel
from taskzoo.data.synthetic.scenes import generate_scenes
from taskzoo.errors import ConfigError, DataError
from taskzoo.metrics import corpus_bleu
from taskzoo.tasks.captioning import Captioner, CaptioningTask, bleu_scores

TINY_CAPTIONING = [
    "task=captioning", "trainer=smoke", "model=gru", "model.units=8", "model.embedding_dim=8",
    "task.cnn_filters=[4,8]", "task.image_features=8", "task.image_size=16", "task.data.num_train=32",
    "task.data.num_validation=8", "task.data.num_test=8", "task.eval_decode_examples=8", "task.beam_size=2",
]


def captioning_config(*overrides):
    return compose_config(*TINY_CAPTIONING, *overrides)


def tiny_task(*overrides):
    task = CaptioningTask(captioning_config(*overrides))
    task.datasets()
    return task


def test_generated_scenes_are_deterministic_with_several_correct_references():
    first = generate_scenes([20, 5], seed=1, canvas_size=32)
    second = generate_scenes([20, 5], seed=1, canvas_size=32)
    np.testing.assert_array_equal(first[0][0], second[0][0])
    assert first[0][1] == second[0][1]
    assert first[0][0].shape == (20, 32, 32, 3) and first[0][0].dtype == np.uint8
    for captions in first[0][1]:
        assert len(captions) == 2
        if captions[0].startswith("two "):
            assert captions[0].startswith(captions[1])  # "two red eights side by side", "two red eights"
            continue
        for relation, inverse in (("left of", "right of"), ("above", "below")):
            if f" {relation} " in captions[0]:
                # The two references state the same relation from each object's side.
                subject, _, obj = captions[0].partition(f" {relation} ")
                assert captions[1] == f"{obj} {inverse} {subject}"


def test_bleu_counts_the_closest_of_several_references():
    references = [["a red square left of a blue two", "a blue two right of a red square"], ["a green circle"]]
    assert corpus_bleu(["a blue two right of a red square", "a green circle"], references) == pytest.approx(100)
    assert corpus_bleu(["a blue two right of a red square", "a green circle"], [r[0] for r in references]) < 100
    scores = bleu_scores([{"text": "a red square"}, {"text": "a green circle"}], references)
    assert scores["bleu1"] > scores["bleu4"]


def test_soft_attention_weights_sum_to_one_over_the_image_locations():
    task = tiny_task()
    network = task.build_model()
    captioner = Captioner(network, task.tokenizer, task.vocabulary, 5)
    states, (memory, _, memory_mask) = captioner.generator.encode(tf.constant(task.images["validation"][:3]))
    assert memory.shape[1] == 16  # a 16 x 16 image, two pooling blocks: a 4 x 4 grid
    caption_input = tf.constant([[parallel.START_ID, 4, 5, 6]] * 3)
    _, weights = network.get_layer("decoder").teacher_forced(caption_input, memory, memory_mask, states)
    weights = np.asarray(weights)
    assert weights.shape == (3, 4, 16)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)
    assert (weights > 0).all()


@pytest.mark.parametrize("attention, feed", [("soft", False), ("none", False), ("none", True)])
def test_a_beam_of_width_one_equals_greedy_search(attention, feed):
    task = tiny_task(f"task.attention={attention}", f"task.feed_features={feed}", "model=lstm", "model.num_layers=2")
    captioner = Captioner(task.build_model(), task.tokenizer, task.vocabulary, 6)
    generator = captioner.generator
    images, max_lengths = tf.constant(task.images["test"]), np.full(8, 6)
    greedy = generator.generate(images, max_lengths, beam_size=1)
    beam = decoding.decoded_results(decoding.beam_search(
        generator.step, *generator.encode(images), max_lengths, parallel.START_ID, parallel.END_ID,
        beam_size=1, banned_ids=generator.banned_ids))
    assert [result["tokens"] for result in beam] == [result["tokens"] for result in greedy]
    assert [result["score"] for result in beam] == pytest.approx([result["score"] for result in greedy])
    if attention == "none" and not feed:
        # The decoder sees the image only through its initial state: no attention at all.
        assert all(result["attention"] is None for result in greedy)
    else:
        # Soft attention over the 4 x 4 grid, or the mean of the one pooled feature vector.
        for result in greedy:
            # One row per decoding step: the end token's step too, unless cut at 6 tokens.
            steps = min(len(result["tokens"]) + 1, 6)
            assert result["attention"].shape == (steps, 16 if attention == "soft" else 1)


def test_the_compiled_decoder_captions_as_the_reference_decoders_do():
    # A small captioner with soft attention over the image grid, trained until its captions
    # end at different lengths.
    keras.utils.set_random_seed(2)
    task = tiny_task("task.attention=soft", "model=lstm", "model.units=16", "task.data.num_train=128")
    train_data, _, _ = task.datasets()
    network = task.build_model()
    network.compile(optimizer=keras.optimizers.Adam(0.01), loss=task.loss())
    network.fit(train_data, epochs=15, steps_per_epoch=task.steps_per_epoch, shuffle=False, verbose=0)
    generator = Captioner(network, task.tokenizer, task.vocabulary, 8).generator
    images = tf.constant(task.images["train"][:16])
    max_lengths = np.full(16, 8)
    states, memory_inputs = generator.encode(images)
    arguments = (generator.step, states, memory_inputs, max_lengths, parallel.START_ID, parallel.END_ID)
    for beam_size in (1, 3):
        results = generator.generate(images, max_lengths, beam_size, 0.6)
        if beam_size == 1:
            expected = reference_decoding.greedy_decode(*arguments, banned_ids=generator.banned_ids)
        else:
            expected = reference_decoding.beam_search(*arguments, beam_size, 0.6, banned_ids=generator.banned_ids)
        assert [result["tokens"] for result in results] == [result["tokens"] for result in expected]
        assert len({len(result["tokens"]) for result in results}) > 1
        for result, reference in zip(results, expected):
            assert result["score"] == pytest.approx(reference["score"], rel=1e-6)
            np.testing.assert_allclose(result["attention"], reference["attention"], atol=1e-6)


def test_the_decoder_without_attention_sees_the_image_only_through_its_initial_state():
    task = tiny_task("task.attention=none")
    network = task.build_model()
    decoder = network.get_layer("decoder")
    assert decoder.attention is None and network.get_layer("pooled_memory").output.shape[1] == 1
    fed = tiny_task("task.attention=none", "task.feed_features=true").build_model().get_layer("decoder")
    assert fed.attention_kind == "mean"


# Local files.


def write_image_set(directory, count=6, size=20, token_format=True):
    """Images of coloured squares, two captions each, in the Flickr8k token layout or as a CSV."""
    directory.mkdir(parents=True, exist_ok=True)
    names, lines = [], []
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    for index in range(count):
        colour = list(colours)[index % 3]
        image = np.zeros((size, size, 3), np.uint8)
        image[4:14, 4:14] = colours[colour]
        name = f"image_{index}.{'png' if index % 2 else 'jpg'}"
        Image.fromarray(image).save(directory / name)
        names.append(name)
        lines += [(name, f"a {colour} square"), (name, f"a square that is {colour}")]
    if token_format:
        text = "\n".join(f"{name}#{k % 2}\t{caption}" for k, (name, caption) in enumerate(lines))
        (directory / "captions.txt").write_text(text + "\n", encoding="utf-8")
    else:
        text = "image,caption\n" + "\n".join(f"{name},\"{caption}\"" for name, caption in lines)
        (directory / "captions.csv").write_text(text + "\n", encoding="utf-8")
    return names


@pytest.mark.parametrize("token_format", [True, False])
def test_reads_a_caption_directory_in_token_or_csv_layout(tmp_path, token_format):
    names = write_image_set(tmp_path / "images", count=10, token_format=token_format)
    captions = tmp_path / "images" / ("captions.txt" if token_format else "captions.csv")
    task = tiny_task("task.data.source=files", f"task.data.images={tmp_path / 'images'}",
                     f"task.data.captions={captions}", "task.min_frequency=1")
    assert {name: len(images) for name, images in task.images.items()} == {"train": 8, "validation": 1, "test": 1}
    assert task.images["train"].shape[1:] == (16, 16, 3)
    assert all(len(references) == 2 for references in task.references["train"])
    assert "square" in task.vocabulary.ids
    assert len(names) == 10


def test_split_lists_choose_the_images_of_each_split(tmp_path):
    names = write_image_set(tmp_path / "images", count=6)
    for split, chosen in (("train", names[:4]), ("validation", names[4:5]), ("test", names[5:])):
        (tmp_path / f"{split}.txt").write_text("\n".join(chosen) + "\n")
    task = tiny_task("task.data.source=files", f"task.data.images={tmp_path / 'images'}",
                     f"task.data.captions={tmp_path / 'images' / 'captions.txt'}", "task.min_frequency=1",
                     *[f"task.data.{split}_list={tmp_path / f'{split}.txt'}" for split in ("train", "validation", "test")])
    assert [len(task.images[split]) for split in ("train", "validation", "test")] == [4, 1, 1]
    assert task.references["test"] == [["a blue square", "a square that is blue"]]


def test_bad_caption_inputs_name_the_problem(tmp_path, caplog):
    names = write_image_set(tmp_path / "images", count=4)
    files = ["task.data.source=files", f"task.data.images={tmp_path / 'images'}", "task.min_frequency=1"]
    captions = tmp_path / "images" / "captions.txt"

    missing = tmp_path / "missing.txt"
    missing.write_text(captions.read_text() + "ghost.jpg#0\ta ghost\n")
    with pytest.raises(DataError) as error:
        tiny_task(*files, f"task.data.captions={missing}")
    assert str(error.value) == f"{missing}: captions name 1 image(s) not in {tmp_path / 'images'}, the first 'ghost.jpg'."

    (tmp_path / "images" / "broken.png").write_bytes(b"not an image at all")
    broken = tmp_path / "broken.txt"
    broken.write_text(captions.read_text() + "broken.png#0\ta broken picture\n")
    with pytest.raises(DataError) as error:
        tiny_task(*files, f"task.data.captions={broken}")
    assert str(error.value) == f"{tmp_path / 'images' / 'broken.png'}: cannot read the image (not a JPEG, PNG, GIF, BMP or WebP file)."
    # A PNG cut short: TensorFlow's reason, without the names of its internal functions.
    png = (tmp_path / "images" / names[1]).read_bytes()
    (tmp_path / "images" / "broken.png").write_bytes(png[: len(png) // 2])
    with pytest.raises(DataError) as error:
        tiny_task(*files, f"task.data.captions={broken}")
    assert re.fullmatch(r".*broken\.png: cannot read the image \([^{}\[\]]+\)\.", str(error.value)), str(error.value)

    bad_line = tmp_path / "bad_line.txt"
    bad_line.write_text(f"{names[0]}#0\ta red square\n{names[1]}#0\t\n")
    with pytest.raises(DataError, match=r"bad_line\.txt, line 2: expected `image_name#k<TAB>caption`"):
        tiny_task(*files, f"task.data.captions={bad_line}")

    uncaptioned_list = tmp_path / "train_list.txt"
    uncaptioned_list.write_text("broken.png\n")
    with pytest.raises(DataError, match=r"train_list\.txt: image 'broken.png' has no caption in"):
        tiny_task(*files, f"task.data.captions={captions}", f"task.data.train_list={uncaptioned_list}",
                  f"task.data.test_list={uncaptioned_list}")

    # An image without captions is left out with one warning line.
    (tmp_path / "images" / "broken.png").unlink()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "extra.png")
    write_image_set(tmp_path / "images", count=10)
    tiny_task(*files, f"task.data.captions={captions}")
    assert "1 image(s) in" in caplog.text and "have no caption and are left out, the first 'extra.png'" in caplog.text

    with pytest.raises(ConfigError, match="needs task.data.images=DIR and task.data.captions=FILE"):
        tiny_task("task.data.source=files")
    with pytest.raises(ConfigError, match="does not apply to captioning"):
        tiny_task("model.bidirectional=true")
    with pytest.raises(ConfigError, match="task=captioning needs model.num_layers of 1 or more: the decoder is recurrent"):
        tiny_task("model.num_layers=0")


def test_coco_captions_through_tfds_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        task = CaptioningTask(captioning_config("task.data.source=tfds", "task.data.name=coco_captions",
                                                "task.min_frequency=1"))
        train_batches = task.datasets()[0]
    assert {name: len(images) for name, images in task.images.items()} == {"train": 6, "validation": 6, "test": 6}
    assert task.images["train"].shape[1:] == (16, 16, 3)
    inputs, targets, weights = next(iter(train_batches))
    assert inputs["image"].shape[1:] == (16, 16, 3) and weights.shape == targets.shape


def test_a_pretrained_backbone_loads_local_weights_and_caches_its_features(tmp_path):
    backbone = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False, weights=None,
                                                   include_preprocessing=True)
    weights = tmp_path / "mobilenet.weights.h5"
    backbone.save_weights(weights)
    cache = tmp_path / "cache"
    overrides = ["task.encoder=mobilenet_v3_small", f"task.encoder_weights={weights}", "task.image_size=32",
                 f"task.feature_cache={cache}"]
    task = tiny_task(*overrides)
    for saved, loaded in zip(backbone.weights, task.backbone.weights):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
    assert len(list(cache.glob("mobilenet_v3_small-train-*.npy"))) == 1
    features = task.inputs["train"]
    assert features.ndim == 3 and features.shape[0] == 32  # (images, locations, channels)
    again = tiny_task(*overrides)
    np.testing.assert_array_equal(again.inputs["train"], features)

    # The saved model takes images: the frozen backbone is put back in front of the head.
    network = task.build_model()
    exported = task.export_model(network)
    assert exported.input["image"].shape[1:] == (32, 32, 3)
    with pytest.raises(DataError, match="no such weights file"):
        tiny_task("task.encoder=mobilenet_v3_small", f"task.encoder_weights={tmp_path / 'none.h5'}")
    with pytest.raises(ConfigError, match="need a pretrained task.encoder"):
        tiny_task(f"task.feature_cache={cache}")


# Whole runs.


@pytest.mark.slow
def test_a_small_captioner_memorises_a_few_images(tmp_path):
    write_image_set(tmp_path / "images", count=3)
    # One caption per image ("a square that is red": long enough to hold 4-grams), so a perfect
    # captioner is possible.
    lines = [line for line in (tmp_path / "images" / "captions.txt").read_text().splitlines() if "#1" in line]
    (tmp_path / "one.txt").write_text("\n".join(lines) + "\n")
    listed = tmp_path / "all.txt"
    listed.write_text("\n".join(line.split("#")[0] for line in lines) + "\n")
    cfg = captioning_config(
        "task.data.source=files", f"task.data.images={tmp_path / 'images'}", f"task.data.captions={tmp_path / 'one.txt'}",
        *[f"task.data.{split}_list={listed}" for split in ("train", "validation", "test")],
        "task.min_frequency=1", "model.units=32", "task.cnn_filters=[8,16]", "task.image_features=16",
        "trainer.batch_size=3", "trainer.epochs=200",
        "trainer.steps_per_epoch=1", "trainer.learning_rate=0.01", "trainer.early_stopping_patience=null",
        "trainer.schedule=constant", "task.sample_images=0",
    )
    results = train.run(cfg, run_dir=tmp_path / "run")
    assert results["test"]["bleu4"] == pytest.approx(100.0)


@pytest.mark.slow
def test_a_run_logs_captions_and_attention_and_its_reload_captions_the_same(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_cli([*TINY_CAPTIONING, "trainer.evaluation_steps=null", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    results = json.loads((run_dir / "metrics.json").read_text())
    assert set(results["test"]) == {"accuracy", "loss", "perplexity", "bleu1", "bleu2", "bleu3", "bleu4", "bleu4_greedy"}
    assert "epoch_bleu4" in event_tags(run_dir / "validation")
    samples = event_tags(run_dir / "samples")
    assert samples["validation/captions"] == 2 and samples["validation/attention_0"] == 2

    task = tiny_task()
    reloaded = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    captioner = Captioner(reloaded, task.tokenizer, task.vocabulary, task.cfg.task.max_length)
    scores = bleu_scores(captioner.caption(task.images["test"], beam_size=2), task.references["test"])
    assert scores["bleu1"] == pytest.approx(results["test"]["bleu1"])

    image_path = tmp_path / "scene.png"
    Image.fromarray(task.images["test"][0]).resize((40, 40)).save(image_path)
    overlay = tmp_path / "attention.png"
    completed = run_cli([f"run_dir={run_dir}", f"image={image_path}", "beam_size=1", f"attention={overlay}"],
                        cwd=tmp_path, module="taskzoo.predict")
    assert completed.returncode == 0, completed.stderr
    image = np.asarray(Image.open(image_path).convert("RGB").resize((16, 16)))
    from taskzoo.data.captions import read_image

    expected = captioner.caption(read_image(image_path, 16)[None], beam_size=1)[0]
    assert completed.stdout.splitlines()[0] == expected["text"] and image.shape == (16, 16, 3)
    assert Image.open(overlay).size[0] == 96 * len(expected["attention"])  # a panel per decoding step
