"""Frame-level video classification: masking, the recurrence gap, file formats, TFDS, reload."""

import json

import imageio.v3 as iio
import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from conftest import compose_config, event_tags, run_cli
from taskzoo import train
from taskzoo.data import video
from taskzoo.data.synthetic.moving_digits import CLASS_NAMES, generate_videos
from taskzoo.errors import ConfigError, DataError
from taskzoo.segments import edit_score, overlap_counts, segment_scores, segments
from taskzoo.tasks.video import VideoTask, predict_labels

TINY_VIDEO = [
    "task=video", "trainer=smoke", "model.units=8", "task.cnn_filters=[4,8]", "task.frame_features=8",
    "task.frame_size=16", "task.data.num_train=16", "task.data.num_validation=8", "task.data.num_test=8",
]


def video_config(*overrides):
    return compose_config(*TINY_VIDEO, *overrides)


# Segment measures.


def test_segments_edit_score_and_overlap_f1():
    assert segments("aabbba") == [("a", 0, 1), ("b", 2, 4), ("a", 5, 5)]
    assert edit_score("aabbb", "aabbb") == 100.0
    # Predicted segments a b a b against a b: two insertions over four segments.
    assert edit_score("abab", "aabb") == pytest.approx(50.0)
    # The first predicted "a" covers frames 0-1 of the true 0-3 (IoU 0.5, a hit); the flicker "b"
    # at frame 2 misses, the second "a" is a duplicate, the final "b" 4-5 hits exactly.
    assert overlap_counts("aaba" + "bb", "aaaabb", 0.5) == (2, 2, 0)
    scores = segment_scores([np.array([0, 0, 1, 1])], [np.array([0, 0, 1, 1])])
    assert scores == {"edit_score": 100.0, "f1_50": 100.0}


# The generated videos.


def test_generated_videos_are_deterministic_and_labelled_by_motion():
    first, again = generate_videos(5, seed=3), generate_videos(5, seed=3)
    for (frames, labels), (frames_again, labels_again) in zip(first, again):
        np.testing.assert_array_equal(frames, frames_again)
        np.testing.assert_array_equal(labels, labels_again)
    for frames, labels in generate_videos(40, seed=4):
        assert frames.dtype == np.uint8 and frames.shape[1:] == (32, 32, 1)
        assert len(frames) == len(labels) and labels[0] == CLASS_NAMES.index("enter")
        # The digit moves between frames labelled with a move and stands still on a pause.
        for index in range(1, len(labels)):
            moved = np.abs(frames[index].astype(int) - frames[index - 1].astype(int)).mean()
            if CLASS_NAMES[labels[index]] == "pause":
                assert moved < 10
            elif CLASS_NAMES[labels[index]] in ("left", "right", "up", "down"):
                assert moved > 3


# Masking: padding changes nothing on real frames.


@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_frames_change_neither_loss_nor_predictions(bidirectional):
    cfg = video_config("model=lstm", f"model.bidirectional={str(bidirectional).lower()}")
    task = VideoTask(cfg)
    task.datasets()
    network = task.build_model()
    frames = task.splits["train"][0].frames
    labels = task.label_ids["train"][0]
    length = len(frames)
    padded_frames = np.concatenate([frames, np.full((7, *frames.shape[1:]), 200, np.uint8)])
    plain = {"frames": frames[None], "mask": np.ones((1, length), bool)}
    padded = {"frames": padded_frames[None], "mask": np.arange(length + 7)[None] < length}
    loss = task.loss()
    for training in (False, True):
        logits = np.asarray(network(plain, training=training))
        padded_logits = np.asarray(network(padded, training=training))
        np.testing.assert_allclose(padded_logits[:, :length], logits, rtol=1e-5, atol=1e-5)
        plain_loss = loss(labels[None], logits, np.ones((1, length)))
        padded_loss = loss(
            np.concatenate([labels, np.zeros(7, np.int32)])[None], padded_logits, padded["mask"].astype("float32")
        )
        assert float(padded_loss) == pytest.approx(float(plain_loss), rel=1e-5)


# The recurrent model beats the per-frame baseline on the default data.


@pytest.mark.slow
def test_recurrence_is_needed_on_the_default_videos(tmp_path):
    accuracies = {}
    for name, layers in (("baseline", 0), ("lstm", 1)):
        # The default data at half the resolution and a quarter of the length, with a smaller
        # CNN: about half a minute a model. Over seeds 0 to 2 the LSTM led by 0.14 to 0.21.
        cfg = compose_config(
            "task=video", "model=lstm", f"model.num_layers={layers}", "model.units=32",
            "task.frame_size=16", "task.max_frames=16", "task.cnn_filters=[4,8]", "task.frame_features=32",
            "task.data.num_train=640", "task.data.num_validation=50", "task.data.num_test=100",
            "trainer.batch_size=16", "trainer.epochs=15", "trainer.max_minutes=null", "trainer.verbose=0",
        )
        accuracies[name] = train.run(cfg, run_dir=tmp_path / name)["test"]["frame_accuracy"]
    assert accuracies["lstm"] >= accuracies["baseline"] + 0.1, accuracies


# Files: videos, frame folders, labels, and their errors.


def moving_square_frames(count, size=20):
    frames = np.zeros((count, size, size, 3), np.uint8)
    for index in range(count):
        frames[index, 4:12, index:index + 8] = (255, 128, 0)
    return frames


def write_video_set(directory, counts=(6, 7, 8, 9)):
    """Writes an mp4, a gif, an avi and a folder of PNG frames, with labels.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    kinds = ["clip_a.mp4", "clip_b.gif", "clip_c.avi", "clip_d"]
    rows = ["video,frame,label"]
    for name, count in zip(kinds, counts):
        frames = moving_square_frames(count)
        if name.endswith(".mp4") or name.endswith(".avi"):
            iio.imwrite(directory / name, frames, fps=5)
        elif name.endswith(".gif"):
            iio.imwrite(directory / name, frames, loop=0)
        else:
            (directory / name).mkdir()
            for index, frame in enumerate(frames):
                Image.fromarray(frame).save(directory / name / f"frame_{index}.png")
        rows += [f"{name},{index},{'still' if index < 3 else 'right'}" for index in range(count)]
        names.append(name)
    (directory / "labels.csv").write_text("\n".join(rows) + "\n")
    return names


def test_reads_mp4_gif_avi_and_frame_folders_with_their_labels(tmp_path):
    write_video_set(tmp_path / "videos")
    videos = video.read_video_directory(tmp_path / "videos", None, frame_size=12, frame_stride=2, max_frames=4)
    assert [clip.name for clip in videos] == ["clip_a", "clip_b", "clip_c", "clip_d"]
    for clip, count in zip(videos, (6, 7, 8, 9)):
        kept = min((count + 1) // 2, 4)
        assert clip.frames.shape == (kept, 12, 12, 3) and clip.frames.dtype == np.uint8
        assert clip.labels == (["still", "still", "right", "right"])[:kept]
        # Decoded colours survive (lossy codecs change them a little).
        assert clip.frames[0, 4, 4, 0] > 150 and clip.frames[0, 4, 4, 2] < 100


def test_labels_as_one_text_file_per_video(tmp_path):
    (tmp_path / "videos").mkdir()
    iio.imwrite(tmp_path / "videos" / "walk.gif", moving_square_frames(5), loop=0)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "walk.txt").write_text("stand\nstand\nwalk\nwalk\nwalk\n")
    [clip] = video.read_video_directory(tmp_path / "videos", tmp_path / "labels", 20, 1, 64)
    assert clip.labels == ["stand", "stand", "walk", "walk", "walk"]


def test_bad_video_inputs_name_the_problem(tmp_path):
    directory = tmp_path / "videos"
    write_video_set(directory)
    rows = (directory / "labels.csv").read_text().splitlines()

    (directory / "labels.csv").write_text("\n".join(row for row in rows if not row.startswith("clip_b")) + "\n")
    with pytest.raises(DataError, match=r"clip_b.gif: no labels for this video"):
        video.read_video_directory(directory, None, 12, 1, 64)

    (directory / "labels.csv").write_text("\n".join(row for row in rows if row != "clip_c.avi,7,right") + "\n")
    with pytest.raises(DataError, match=r"clip_c.avi: 8 frames but 7 labels"):
        video.read_video_directory(directory, None, 12, 1, 64)

    (directory / "labels.csv").write_text("\n".join([*rows, "clip_a.mp4,x,still"]) + "\n")
    with pytest.raises(DataError, match=r"labels.csv, line 32: frame 'x' is not an integer"):
        video.read_video_directory(directory, None, 12, 1, 64)

    (directory / "labels.csv").write_text("name,label\n")
    with pytest.raises(DataError, match=r"missing columns \['frame', 'video'\]"):
        video.read_video_directory(directory, None, 12, 1, 64)

    (directory / "labels.csv").write_text("\n".join(rows) + "\n")
    (directory / "clip_e.mp4").write_bytes(b"this is not a video")
    with pytest.raises(DataError, match=r"clip_e.mp4: cannot decode the video"):
        video.read_video_directory(directory, None, 12, 1, 64)

    (directory / "clip_e.mp4").unlink()
    (directory / "labels.csv").unlink()
    with pytest.raises(DataError, match=r"no labels.csv; pass task.data.labels"):
        video.read_video_directory(directory, None, 12, 1, 64)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no videos found"):
        video.video_entries(empty)


def test_a_video_to_label_that_cannot_be_read_is_named_in_one_line(tmp_path):
    # What `taskzoo-predict video=PATH` is given: a folder, an image, a feature file.
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(DataError) as error:
        video.read_frames(folder)
    assert str(error.value) == f"{folder}: no frame images in this folder (expected .bmp, .jpeg, .jpg, .png files)."

    for index, size in enumerate([(20, 20), (20, 20), (24, 20)]):
        Image.new("RGB", size).save(folder / f"frame_{index}.png")
    with pytest.raises(DataError) as error:
        video.read_frames(folder)
    assert str(error.value) == f"{folder / 'frame_2.png'}: a frame of 24 x 20 pixels among frames of 20 x 20 (frame_0.png)."
    (folder / "frame_2.png").unlink()
    assert video.read_frames(folder).shape == (2, 20, 20, 3)

    # One image is not a video, though an image reader could decode it as (height, width, 3).
    with pytest.raises(DataError, match=r"frame_0.png: one image, not a video \(give a folder of frame images"):
        video.read_frames(folder / "frame_0.png")

    features = tmp_path / "features.npy"
    features.write_text("0.1 0.2\n0.3 0.4\n")
    with pytest.raises(DataError) as error:
        video.read_frames(features)
    assert str(error.value) == f"{features}: not a NumPy .npy file (it lacks the format's header)."
    np.save(features, np.array([["a", "b"]]))
    with pytest.raises(DataError, match=r"features.npy: expected numbers of shape \(frames, features\), got <U1 of shape \(1, 2\)"):
        video.read_frames(features)
    np.save(features, np.ones((3, 4), np.float64))
    assert video.read_frames(features).dtype == np.float32


def test_precomputed_frame_features_train_through_a_dense_projection(tmp_path):
    directory = tmp_path / "features"
    directory.mkdir()
    rng = np.random.default_rng(0)
    rows = ["video,frame,label"]
    for index in range(12):
        length = 4 + index % 5
        np.save(directory / f"video_{index}.npy", rng.normal(size=(length, 10)).astype(np.float32))
        rows += [f"video_{index},{frame},{'a' if frame % 2 else 'b'}" for frame in range(length)]
    (directory / "labels.csv").write_text("\n".join(rows) + "\n")
    results = train.run(video_config("task.data.source=files", f"task.data.train={directory}"), run_dir=tmp_path / "run")
    assert 0 <= results["test"]["frame_accuracy"] <= 1
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert model.input["frames"].shape == (None, None, 10)


def test_a_label_unseen_in_training_is_named(tmp_path):
    write_video_set(tmp_path / "train")
    (tmp_path / "test").mkdir()
    iio.imwrite(tmp_path / "test" / "odd.gif", moving_square_frames(3), loop=0)
    (tmp_path / "test" / "labels.csv").write_text("video,frame,label\nodd.gif,0,still\nodd.gif,1,jump\nodd.gif,2,jump\n")
    cfg = video_config("task.data.source=files", f"task.data.train={tmp_path / 'train'}",
                       f"task.data.test={tmp_path / 'test'}")
    with pytest.raises(DataError, match=r"Video 'odd' has the label 'jump', which no training video has"):
        VideoTask(cfg).datasets()


def test_files_source_needs_a_train_directory():
    with pytest.raises(ConfigError, match="task.data.train=DIR"):
        VideoTask(video_config("task.data.source=files")).datasets()


# TFDS.


def test_a_tfds_video_dataset_gives_its_label_to_every_frame():
    cfg = video_config("task.data.source=tfds", "task.data.name=ucf101", "task.max_frames=6")
    with tfds.testing.mock_data(num_examples=6):
        task = VideoTask(cfg)
        task.datasets()
    assert len(task.class_names) == 101
    clip = task.splits["train"][0]
    assert clip.frames.shape[1:] == (16, 16, 3) and 0 < len(clip.frames) <= 6
    assert len(set(clip.labels)) == 1 and len(clip.labels) == len(clip.frames)
    assert len(task.splits["validation"]) >= 1


def test_a_tfds_dataset_without_labels_is_refused():
    cfg = video_config("task.data.source=tfds", "task.data.name=moving_mnist", "task.data.train_split=test")
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(DataError, match="not a labelled video dataset"):
            VideoTask(cfg).datasets()


# A finished run: reload, and the predict command.


@pytest.mark.slow
def test_a_reloaded_run_predicts_identically_and_labels_a_video_file(tmp_path):
    run_dir = tmp_path / "run"
    # One batch of a larger validation split per evaluation: the run reads part of it, and
    # TensorFlow's runtime prints no warning about that (`run_cli` checks the console).
    trained = run_cli([*TINY_VIDEO, "model=gru", "task.data.num_validation=40", "trainer.evaluation_steps=1",
                       f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    results = json.loads((run_dir / "metrics.json").read_text())
    assert set(results["test"]) >= {"frame_accuracy", "loss", "edit_score", "f1_50"}
    assert json.loads((run_dir / "classes.json").read_text()) == CLASS_NAMES

    # TensorBoard: the segment scores per epoch, and the strip of labelled validation frames.
    assert {"epoch_frame_accuracy", "epoch_edit_score", "epoch_f1_50"} <= set(event_tags(run_dir / "validation"))
    assert event_tags(run_dir / "samples")["validation/frames"] == 2

    # The reloaded model reproduces the test accuracy and segment scores that the run recorded.
    task = VideoTask(video_config("model=gru"))
    task.datasets()
    reloaded = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    predictions = predict_labels(reloaded, task.batches_of("test"))
    truths = task.label_ids["test"]
    accuracy = np.mean(np.concatenate(predictions) == np.concatenate(truths))
    assert accuracy == pytest.approx(results["test"]["frame_accuracy"], abs=1e-6)
    assert segment_scores(predictions, truths) == pytest.approx(
        {key: results["test"][key] for key in ("edit_score", "f1_50")}
    )

    # The predict command on a colour gif: the model was trained on grey frames of 16 x 16.
    iio.imwrite(tmp_path / "clip.gif", moving_square_frames(5, size=40), loop=0)
    completed = run_cli([f"run_dir={run_dir}", f"video={tmp_path / 'clip.gif'}"], cwd=tmp_path, module="taskzoo.predict")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:5]] == [f"frame {index}" for index in range(5)]
    assert all(line.split(": ")[1] in CLASS_NAMES for line in lines[:5])
    assert lines[5] == "segments (label, first frame, last frame):"
    first_segment = lines[6].split("\t")
    assert first_segment[0] in CLASS_NAMES and first_segment[1] == "0"

    missing = run_cli([f"run_dir={run_dir}", f"video={tmp_path / 'none.mp4'}"], cwd=tmp_path, module="taskzoo.predict")
    assert missing.returncode != 0 and missing.stderr.strip().endswith("none.mp4: no such video.")


def test_label_files_that_are_not_utf8_name_the_file_and_line(tmp_path):
    from taskzoo.data import video as video_data

    (tmp_path / "labels.csv").write_bytes(b"video,frame,label\nclip.mp4,0,caf\xe9\n")
    with pytest.raises(DataError, match=r"labels.csv, line 2: invalid UTF-8 byte 0xe9"):
        video_data.read_label_csv(tmp_path / "labels.csv")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "clip.txt").write_bytes(b"walk\n\xff\n")
    with pytest.raises(DataError, match=r"clip.txt, line 2: invalid UTF-8 byte 0xff"):
        video_data.labels_for(tmp_path / "clip.mp4", tmp_path / "texts")
