"""Every bad input gives one clear line: the matrix of bad data files, run folders and model files.

Each case writes its files, runs the task (in this process: the data is read before any
training) or predict, and asserts a `TaskzooError` (the command line turns it into one line and
a non-zero exit code; `test_cli.py` checks that step) whose message is one line of at most 300
characters naming the file and the cause. Inputs that look odd but are valid (Windows line
endings, a byte-order mark, extra columns) must train.
"""

import gzip

import numpy as np
import pytest

from conftest import TINY, compose_config
from taskzoo import predict, train
from taskzoo.errors import TaskzooError

BINARY = bytes(range(256)) * 8
LATIN_1 = "text,label\ncafé crème,pos\nun thé glacé,neg\n".encode("latin-1")


def sentiment_rows(rows, header="text,label"):
    lines = [header] if header else []
    lines += [f"{text},{label}" for text, label in rows]
    return ("\n".join(lines) + "\n").encode()


GOOD_ROWS = [(f"a good film number {index}" if index % 2 else f"a dull film number {index}",
              "pos" if index % 2 else "neg") for index in range(40)]
INVALID_UTF8 = sentiment_rows(GOOD_ROWS[:2]) + b"a broken \xff\xfe byte,pos\n" + sentiment_rows(GOOD_ROWS[2:], header=None)


def sentiment(path):
    return ["task=sentiment", *TINY, "task.data.source=files", f"task.data.train={path}"]


def char_lm(path):
    return ["task=char_lm", "trainer=smoke", "model.units=8", "model.embedding_dim=8", "task.seq_length=8",
            "task.sample_length=8", "task.data.source=files", f"task.data.train={path}"]


def translation(path, *extra):
    return ["task=translation", *TINY, "task.data.source=files", f"task.data.train={path}", *extra]


def video(path, *extra):
    return ["task=video", *TINY, "task.frame_size=16", "task.cnn_filters=[4]", "task.frame_features=4",
            "task.data.source=files", f"task.data.train={path}", *extra]


def captioning(images, captions):
    return ["task=captioning", *TINY, "task.image_size=16", "task.cnn_filters=[4]", "task.image_features=4",
            "task.data.source=files", f"task.data.images={images}", f"task.data.captions={captions}"]


def tagging(path):
    return ["task=tagging", *TINY, "task.char_units=4", "task.char_embedding_dim=4", "task.data.source=files",
            f"task.data.train={path}"]


CONLLU_SENTENCE = "# text = They book a flight.\n1\tThey\tthey\tPRON\tPRP\t_\t2\tnsubj\t_\t_\n" \
    "2\tbook\tbook\tVERB\tVBP\t_\t0\troot\t_\t_\n3\ta\ta\tDET\tDT\t_\t4\tdet\t_\t_\n" \
    "4\tflight\tflight\tNOUN\tNN\t_\t2\tobj\t_\tSpaceAfter=No\n5\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_\n\n"


def write(directory, name, content):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def gif(frames=4, size=8):
    from PIL import Image

    images = [Image.fromarray(np.full((size, size, 3), 40 * index, np.uint8)) for index in range(frames)]
    import io

    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def png(size=8):
    from PIL import Image
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# Each case: (files to write {name: bytes}, overrides built from the folder, words the message must
# hold). The words name the file and the cause.
CASES = {
    "sentiment: missing file": ({}, lambda d: sentiment(d / "absent.csv"), ["absent.csv"]),
    "sentiment: empty file": ({"empty.csv": b""}, lambda d: sentiment(d / "empty.csv"), ["empty.csv", "empty"]),
    "sentiment: directory without class folders": (
        {"folder/readme.md": b"nothing"}, lambda d: sentiment(d / "folder"), ["folder"]),
    "sentiment: binary file": ({"data.csv": BINARY}, lambda d: sentiment(d / "data.csv"), ["data.csv", "UTF-8"]),
    "sentiment: invalid UTF-8": ({"data.csv": INVALID_UTF8}, lambda d: sentiment(d / "data.csv"),
                                 ["data.csv", "line 4", "UTF-8"]),
    "sentiment: Latin-1": ({"data.csv": LATIN_1}, lambda d: sentiment(d / "data.csv"), ["data.csv", "UTF-8"]),
    "sentiment: header only": ({"data.csv": b"text,label\n"}, lambda d: sentiment(d / "data.csv"), ["data.csv"]),
    "sentiment: one column": ({"data.csv": sentiment_rows([(t, "") for t, _ in GOOD_ROWS], header="text")},
                              lambda d: sentiment(d / "data.csv"), ["data.csv", "column"]),
    "sentiment: one class": ({"data.csv": sentiment_rows([(t, "pos") for t, _ in GOOD_ROWS])},
                             lambda d: sentiment(d / "data.csv"), ["data.csv", "class"]),
    "char_lm: missing file": ({}, lambda d: char_lm(d / "absent.txt"), ["absent.txt"]),
    "char_lm: empty file": ({"text.txt": b""}, lambda d: char_lm(d / "text.txt"), ["text.txt"]),
    "char_lm: binary file": ({"text.txt": BINARY}, lambda d: char_lm(d / "text.txt"), ["text.txt", "UTF-8"]),
    "char_lm: invalid UTF-8": ({"text.txt": b"hello world\n" * 50 + b"caf\xe9\n"},
                               lambda d: char_lm(d / "text.txt"), ["text.txt", "UTF-8"]),
    "translation: one column": ({"pairs.tsv": b"only one side\n" * 20}, lambda d: translation(d / "pairs.tsv"),
                                ["pairs.tsv", "line 1"]),
    "translation: mismatched files": (
        {"train.en": b"a cat\n" * 20, "train.fr": b"un chat\n" * 19},
        lambda d: translation(d / "train", "task.data.source_lang=en", "task.data.target_lang=fr"),
        ["train.en", "train.fr", "20", "19"]),
    "translation: empty sides only": ({"pairs.tsv": b"a cat\t\n\tun chat\n" * 10},
                                      lambda d: translation(d / "pairs.tsv"), ["pairs.tsv"]),
    "translation: invalid UTF-8 in gzip": (
        {"train.en.gz": gzip.compress(b"a cat\n" * 20), "train.fr.gz": gzip.compress(b"un chat\n" * 19 + b"\xff\n")},
        lambda d: translation(d / "train", "task.data.source_lang=en", "task.data.target_lang=fr"),
        ["train.fr.gz", "UTF-8"]),
    "video: missing folder": ({}, lambda d: video(d / "videos"), ["videos"]),
    "video: labels not UTF-8": (
        {"videos/a.gif": gif(), "videos/labels.csv": "video,frame,label\n".encode() + b"".join(
            f"a,{index},d\xe9but\n".encode("latin-1") for index in range(4))},
        lambda d: video(d / "videos"), ["labels.csv", "UTF-8"]),
    "video: corrupt video": (
        {"videos/a.mp4": BINARY, "videos/labels.csv": b"video,frame,label\na,0,x\na,1,y\n"},
        lambda d: video(d / "videos"), ["a.mp4"]),
    "captioning: corrupt image": (
        {"images/a.png": BINARY, "images/b.png": png(), "captions.txt": b"a.png#0\ta red thing\nb.png#0\ta blue thing\n"},
        lambda d: captioning(d / "images", d / "captions.txt"), ["a.png"]),
    "captioning: captions without a tab": (
        {"images/a.png": png(), "captions.txt": b"a.png a red thing\n"},
        lambda d: captioning(d / "images", d / "captions.txt"), ["captions.txt", "line 1"]),
    "tagging: missing file": ({}, lambda d: tagging(d / "absent.conllu"), ["absent.conllu"]),
    "tagging: empty file": ({"train.conllu": b""}, lambda d: tagging(d / "train.conllu"), ["train.conllu", "empty"]),
    "tagging: CoNLL-U line cut short": (
        {"train.conllu": (CONLLU_SENTENCE * 20 + "1\tThey\tthey\tPRON\n").encode()},
        lambda d: tagging(d / "train.conllu"), ["train.conllu", "line 141", "10 tab-separated"]),
    "tagging: invalid UTF-8 in gzip": (
        {"train.conllu.gz": gzip.compress(CONLLU_SENTENCE.encode() * 20 + b"1\tcaf\xe9\n")},
        lambda d: tagging(d / "train.conllu.gz"), ["train.conllu.gz", "UTF-8"]),
    "tagging: column file without tags": ({"train.txt": b"They\nbook\n"}, lambda d: tagging(d / "train.txt"),
                                          ["train.txt", "line 1", "columns"]),
    "captioning: missing images folder": (
        {"captions.txt": b"a.png#0\ta red thing\n"}, lambda d: captioning(d / "images", d / "captions.txt"), ["images"]),
}

# Valid inputs that look odd: they must train.
VALID = {
    "sentiment: Windows line endings": ({"data.csv": sentiment_rows(GOOD_ROWS).replace(b"\n", b"\r\n")},
                                        lambda d: sentiment(d / "data.csv")),
    "sentiment: byte-order mark": ({"data.csv": b"\xef\xbb\xbf" + sentiment_rows(GOOD_ROWS)},
                                   lambda d: sentiment(d / "data.csv")),
    "sentiment: extra columns": ({"data.csv": sentiment_rows([(f"{t},7", l) for t, l in GOOD_ROWS],
                                                             header="text,stars,label")},
                                 lambda d: sentiment(d / "data.csv")),
    "char_lm: Windows line endings and a byte-order mark": (
        {"text.txt": b"\xef\xbb\xbf" + b"hello world, again and again\r\n" * 60}, lambda d: char_lm(d / "text.txt")),
    "tagging: CoNLL-U with Windows line endings and a byte-order mark": (
        {"train.conllu": b"\xef\xbb\xbf" + (CONLLU_SENTENCE * 40).replace("\n", "\r\n").encode()},
        lambda d: tagging(d / "train.conllu")),
}


def assert_one_clear_line(error, words):
    message = str(error)
    assert "\n" not in message, message
    assert len(message) <= 300, (len(message), message)
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_data_file_gives_one_clear_line(case, tmp_path):
    files, overrides, words = CASES[case]
    for name, content in files.items():
        write(tmp_path, name, content)
    with pytest.raises(TaskzooError) as raised:
        train.run(compose_config(*overrides(tmp_path)), tmp_path / "run")
    assert_one_clear_line(raised.value, words)
    # Nothing of a run was written.
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.parametrize("case", sorted(VALID))
def test_odd_but_valid_data_files_train(case, tmp_path):
    files, overrides = VALID[case]
    for name, content in files.items():
        write(tmp_path, name, content)
    results = train.run(compose_config(*overrides(tmp_path), "trainer.epochs=1"), tmp_path / "run")
    assert results["epochs_completed"] == 1


# Predict: damaged runs and bad options.


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from omegaconf import OmegaConf

    run_dir = tmp_path_factory.mktemp("predict") / "run"
    cfg = compose_config("task=sentiment", *TINY, "trainer.epochs=1")
    train.run(cfg, run_dir)
    # What Hydra writes beside every run.
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return run_dir


def damaged_copy(run_dir, tmp_path, damage):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    damage(copy)
    return copy


PREDICT_CASES = {
    "truncated model file": (
        lambda run: (run / "model.keras").write_bytes((run / "model.keras").read_bytes()[:2000]),
        ["text=a fine film"], ["model.keras"]),
    "corrupt model file": (lambda run: (run / "model.keras").write_bytes(BINARY), ["text=a fine film"], ["model.keras"]),
    "model file is a directory": (
        lambda run: ((run / "model.keras").unlink(), (run / "model.keras").mkdir()), ["text=a fine film"], ["model.keras"]),
    "damaged run configuration": (
        lambda run: (run / ".hydra" / "config.yaml").write_text("task: [unclosed\n"), ["text=a fine film"],
        ["config.yaml"]),
    "missing input file": (lambda run: None, ["file=absent.txt"], ["absent.txt"]),
    "input file not UTF-8": (lambda run: (run / "in.txt").write_bytes(b"caf\xe9\n"), ["file={run}/in.txt"], ["in.txt", "UTF-8"]),
    "input file is a directory": (lambda run: (run / "inputs").mkdir(), ["file={run}/inputs"], ["inputs"]),
    "unknown option": (lambda run: None, ["colour=red"], ["colour", "text"]),
}


@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predict_on_a_damaged_run_or_with_bad_options_gives_one_clear_line(case, finished_run, tmp_path, monkeypatch):
    damage, options, words = PREDICT_CASES[case]
    run_dir = damaged_copy(finished_run, tmp_path, damage)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a fine film\n"))
    with pytest.raises(TaskzooError) as raised:
        predict.predict([f"run_dir={run_dir}", *(option.format(run=run_dir) for option in options)])
    assert_one_clear_line(raised.value, words)


def test_a_missing_run_folder_gives_one_clear_line(tmp_path):
    with pytest.raises(TaskzooError) as raised:
        predict.predict([f"run_dir={tmp_path / 'nowhere'}", "text=hello"])
    assert_one_clear_line(raised.value, ["nowhere"])


def test_an_input_file_without_lines_is_warned_about(tmp_path, monkeypatch, capsys):
    from taskzoo.tasks.base import texts_to_predict

    (tmp_path / "empty.txt").write_bytes(b"\xef\xbb\xbf")  # A byte-order mark and nothing else.
    assert texts_to_predict({"file": str(tmp_path / "empty.txt")}) == ([], True)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(""))
    assert texts_to_predict({"file": "-"}) == ([], True)
    (tmp_path / "two.txt").write_text("a fine film\n\n")
    assert texts_to_predict({"file": str(tmp_path / "two.txt")}) == (["a fine film", ""], True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"Warning: {tmp_path / 'empty.txt'} holds no lines: there is nothing to answer.",
        "Warning: standard input holds no lines: there is nothing to answer.",
    ]


def test_a_picture_never_overwrites_a_file_that_is_not_a_picture(tmp_path):
    from taskzoo.tasks.base import write_output_file

    picture = b"\x89PNG\r\n\x1a\n" + b"new picture"
    write_output_file(tmp_path / "attention.png", b"\x89PNG\r\n\x1a\n" + b"old picture")
    write_output_file(tmp_path / "attention.png", picture)  # The same command again replaces its picture.
    assert (tmp_path / "attention.png").read_bytes() == picture
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 a saved model")
    with pytest.raises(TaskzooError) as raised:
        write_output_file(tmp_path / "model.keras", picture)
    assert str(raised.value) == (f"{tmp_path / 'model.keras'}: the file exists and is not a PNG picture; nothing was "
                                 "written over it (give another name).")
    assert (tmp_path / "model.keras").read_bytes() == b"PK\x03\x04 a saved model"


def test_the_gradient_plot_never_overwrites_a_file_that_is_not_its_kind_of_picture(tmp_path):
    from taskzoo.atomic import check_picture_target
    from taskzoo.observe import plot_time_gradients

    (tmp_path / "figure.pdf").write_bytes(b"%PDF-1.4 an earlier figure")
    check_picture_target(tmp_path / "figure.pdf")  # The same command again may replace it.
    check_picture_target(tmp_path / "absent.png")
    (tmp_path / "table.csv").write_text("run,accuracy\n")
    with pytest.raises(SystemExit) as exited:
        plot_time_gradients.main([str(tmp_path), "--out", str(tmp_path / "table.csv")])
    assert str(exited.value) == (f"Error: {tmp_path / 'table.csv'}: the file exists and is not a picture; nothing was "
                                 "written over it (give another name).")
    assert (tmp_path / "table.csv").read_text() == "run,accuracy\n"
