"""Local text files: the formats users bring, and one clear line for each kind of bad input."""

import numpy as np
import pytest

from taskzoo.data import files, text
from taskzoo.data.splits import complete_splits
from taskzoo.errors import DataError
from taskzoo.tasks.sentiment import SentimentTask


def write(path, content, mode="w"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_tsv_with_label_first_is_detected(tmp_path):
    path = write(tmp_path / "train.tsv", 'label\tsentence\n1\ta "quoted" fine film\n0\tdull , slow\n')
    texts, labels = files.read_table(path)
    assert texts == ['a "quoted" fine film', "dull , slow"]
    assert labels == ["1", "0"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_announces_the_encoding_and_is_not_text(tmp_path, encoding):
    # Spreadsheet programs save "UTF-8 with BOM" or UTF-16; the first column is still `text`.
    path = tmp_path / "train.csv"
    path.write_bytes('text,label\r\nun film très réussi,pos\r\nennuyeux,neg\r\n'.encode(encoding))
    texts, labels = files.read_table(path)
    assert texts == ["un film très réussi", "ennuyeux"] and labels == ["pos", "neg"]


def test_csv_with_named_columns_and_quotes(tmp_path):
    path = write(tmp_path / "reviews.csv", 'id,review,stars\n1,"great, really great",pos\n2,"bad",neg\n')
    texts, labels = files.read_table(path, text_column="review", label_column="stars")
    assert texts == ["great, really great", "bad"]
    assert labels == ["pos", "neg"]


def test_two_unnamed_columns_take_the_longer_one_as_text(tmp_path):
    path = write(tmp_path / "data.csv", "a,b\nneg,a long and dreary review\npos,a sparkling little film\n")
    texts, labels = files.read_table(path)
    assert labels == ["neg", "pos"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.tsv", "", "empty.tsv: the file is empty."),
        ("header.tsv", "label\tsentence\n", "header.tsv: the file has a header but no rows."),
        ("nolabel.tsv", "label\tsentence\n1\tgood\n\tbad film\n", "nolabel.tsv, line 3: no value in the label column 'label'."),
        ("short.csv", "text,label\ngood,1\nbad film\n", "short.csv, line 3: no value in the label column 'label'."),
        ("bytes.tsv", b"label\tsentence\n1\tgood\n0\tbad \xff film\n", "bytes.tsv, line 3: invalid UTF-8 byte 0xff at byte offset 28"),
        ("cols.csv", "x,y,z\n1,2,3\n", "cols.csv: cannot tell which column holds the text"),
    ],
)
def test_bad_tables_give_one_line_naming_file_and_line(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as error:
        files.read_table(path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_label_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "train.tsv", "label\tsentence\n1\tgood\n")
    with pytest.raises(DataError, match=r"no column 'stars' for the label \(columns: label, sentence\)"):
        files.read_table(path, label_column="stars")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nothere.tsv: no such file or directory"):
        files.read_labelled_texts(tmp_path / "nothere.tsv")


def test_class_folders_in_the_aclimdb_layout(tmp_path):
    write(tmp_path / "train" / "pos" / "0_9.txt", "a joy\n")
    write(tmp_path / "train" / "pos" / "1_8.txt", "lovely")
    write(tmp_path / "train" / "neg" / "2_1.txt", "a bore")
    write(tmp_path / "train" / "unsup" / "3_0.txt", "no label here")
    write(tmp_path / "train" / "urls_pos.txt", "http://example")
    texts, labels = files.read_labelled_texts(tmp_path / "train")
    assert sorted(zip(labels, texts)) == [("neg", "a bore"), ("pos", "a joy"), ("pos", "lovely")]


def test_class_files_one_example_per_line(tmp_path):
    negative = write(tmp_path / "neg.txt", "dull\n\nslow and long\n")
    positive = write(tmp_path / "pos.txt", "bright\n")
    texts, labels = files.read_class_files({"neg": str(negative), "pos": str(positive)})
    assert list(zip(labels, texts)) == [("neg", "dull"), ("neg", "slow and long"), ("pos", "bright")]
    write(tmp_path / "empty.txt", "\n\n")
    with pytest.raises(DataError, match="empty.txt: the file is empty."):
        files.read_class_files({"neg": str(negative), "pos": str(tmp_path / "empty.txt")})


def test_carved_splits_are_deterministic_disjoint_and_sized_by_the_whole():
    data = text.LabelledTexts([f"text {i}" for i in range(100)], np.arange(100))
    fractions = {"validation": 0.2, "test": 0.1}

    def carve(seed, **given):
        return complete_splits({"train": data, **given}, fractions, seed, take=text.take_texts)

    train, validation, test = carve(7)
    assert (len(train), len(validation), len(test)) == (70, 20, 10)
    assert [split.texts for split in carve(7)] == [train.texts, validation.texts, test.texts]
    assert not set(validation.texts) & set(train.texts) and not set(test.texts) & (set(train.texts) | set(validation.texts))
    assert carve(8)[1].texts != validation.texts
    # A given split is kept; only the missing one is carved.
    kept = text.LabelledTexts(["given"], np.zeros(1))
    train, validation, test = carve(7, test=kept)
    assert test is kept and (len(train), len(validation)) == (80, 20)


def lines_for(label, count):
    return "".join(f"{label}\tthe film number {i} was {'good' if label == 'pos' else 'bad'}\n" for i in range(count))


def test_sentiment_task_reads_files_and_splits_off_validation_and_test(tmp_path, tiny_config):
    path = write(tmp_path / "train.tsv", "label\ttext\n" + lines_for("pos", 30) + lines_for("neg", 30))
    cfg = tiny_config("task.data.source=files", f"task.data.train={path}")
    task = SentimentTask(cfg)
    train, validation, test = task.datasets()
    assert task.class_names == ["neg", "pos"]
    assert task.sizes == {"train": 48, "validation": 6, "test": 6}
    token_ids, labels = next(iter(train))
    assert token_ids.dtype.name == "int32" and labels.shape[0] == token_ids.shape[0]


def test_a_test_label_unseen_in_training_names_the_file(tmp_path, tiny_config):
    train = write(tmp_path / "train.tsv", "label\ttext\n" + lines_for("pos", 10) + lines_for("neg", 10))
    test = write(tmp_path / "test.tsv", "label\ttext\n" + lines_for("meh", 2))
    cfg = tiny_config("task.data.source=files", f"task.data.train={train}", f"task.data.test={test}")
    with pytest.raises(DataError, match=r"test.tsv: label 'meh' does not occur in the training data \(training labels: neg, pos\)"):
        SentimentTask(cfg).datasets()


def test_class_files_through_the_task(tmp_path, tiny_config):
    negative = write(tmp_path / "neg.txt", "".join(f"bad film {i}\n" for i in range(20)))
    positive = write(tmp_path / "pos.txt", "".join(f"good film {i}\n" for i in range(20)))
    cfg = tiny_config("task.data.source=files", f"task.data.class_files={{neg: {negative}, pos: {positive}}}")
    task = SentimentTask(cfg)
    task.datasets()
    assert task.class_names == ["neg", "pos"]
    assert sum(task.sizes.values()) == 40
