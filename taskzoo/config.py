"""Structured configuration: the schema of every knob, with its default, in one place.

The YAML files under `conf/` only choose and override values. Hydra checks every value against
these dataclasses when it composes a configuration, so `model.units=abc` or `model.cell=lstmm`
fails at once with a readable message. Ranges that a type cannot express (`model.dropout=1.5`)
are checked by `validate_config`, which raises a `ConfigError` naming the key, the value and what
was expected.
"""

import dataclasses
import enum
import functools
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

from taskzoo import choices
from taskzoo.errors import ConfigError


class Choice(enum.Enum):
    """A closed set of names; prints as its name, so `${model.cell}` interpolates as `gru`."""

    def __str__(self):
        return self.value


def _choice(class_name, names):
    """The enum of one set of names from `taskzoo.choices`, where the registries read them too."""
    return Choice(class_name, [(name, name) for name in names], module=__name__, qualname=class_name)


Cell = _choice("Cell", choices.CELLS)
Initializer = _choice("Initializer", choices.INITIALIZERS)
OptimizerName = _choice("OptimizerName", choices.OPTIMIZERS)
StrategyName = _choice("StrategyName", choices.STRATEGIES)
AttentionKind = _choice("AttentionKind", choices.ATTENTION_KINDS)


class ClusterSource(Choice):
    env = "env"
    slurm = "slurm"


class Schedule(Choice):
    constant = "constant"
    cosine = "cosine"


class Pooling(Choice):
    last = "last"
    mean = "mean"
    max = "max"


class CharacterSource(Choice):
    stdlib = "stdlib"
    tfds = "tfds"
    files = "files"


class Bptt(Choice):
    truncated = "truncated"
    windows = "windows"


class Tokenization(Choice):
    word = "word"
    char = "char"


class CaptionAttention(Choice):
    none = "none"
    soft = "soft"


class SamplingSchedule(Choice):
    constant = "constant"
    linear = "linear"


class TagFileFormat(Choice):
    auto = "auto"
    conllu = "conllu"
    columns = "columns"


class DataSource(Choice):
    synthetic = "synthetic"
    tfds = "tfds"
    files = "files"


@dataclasses.dataclass
class ModelConfig:
    """The recurrent backbone shared by every task."""

    cell: Cell = Cell.gru
    units: int = 128
    # 0 removes the recurrent stack: the baseline without recurrence (a bag of embeddings).
    num_layers: int = 1
    bidirectional: bool = False
    # Dropout on the inputs of every recurrent layer and before the output head.
    dropout: float = 0.0
    # Dropout on the recurrent connections; it disables the fused LSTM/GRU kernel on a GPU.
    recurrent_dropout: float = 0.0
    embedding_dim: int = 64
    # Initialiser of the input kernels.
    initializer: Initializer = Initializer.glorot_uniform
    # Initialiser of the recurrent kernels.
    recurrent_initializer: Initializer = Initializer.orthogonal


@dataclasses.dataclass
class TrainerConfig:
    epochs: int = 10
    # The global batch size.
    batch_size: int = 64
    optimizer: OptimizerName = OptimizerName.adam
    learning_rate: float = 1e-3
    # constant, or cosine: decays from learning_rate to learning_rate * min_learning_rate_fraction
    # over the run, whose length is the time budget when max_minutes is set (or the step count
    # when that ends first), else epochs x steps per epoch.
    schedule: Schedule = Schedule.constant
    min_learning_rate_fraction: float = 0.05
    # Clip gradients by their global norm; null turns clipping off.
    clipnorm: Optional[float] = 1.0
    # Stop after this many epochs without improvement of the monitored validation metric.
    early_stopping_patience: Optional[int] = None
    seed: int = 0
    # A wall-clock budget for training; the run then stops cleanly, evaluates and saves.
    max_minutes: Optional[float] = None
    jit_compile: bool = False
    # Same seed and configuration give the same numbers on a CPU (TensorFlow op determinism).
    deterministic: bool = False
    # Back up the training state every this many steps as well as at every epoch end (null: at
    # epoch ends only); a killed run resumes from its last backup.
    backup_every_n_steps: Optional[int] = None
    # Per-step TensorBoard scalars (loss, gradient norms, learning rate) every this many steps.
    log_every_n_steps: int = 10
    # Cap on training steps per epoch (null: the whole training set); used by quick smoke runs.
    steps_per_epoch: Optional[int] = None
    # Cap on evaluation steps (null: the whole split); used by quick smoke runs.
    evaluation_steps: Optional[int] = None
    # Keras progress output: auto (a live progress bar on a terminal, one line per epoch when the
    # output goes to a file or a pipe), 0 silent, 1 progress bar, 2 one line per epoch.
    verbose: Any = "auto"
    # tf.distribute strategy: auto (one device, or mirrored over several GPUs), one_device,
    # mirrored (the GPUs of this machine), multi_worker (several machines), tpu.
    strategy: StrategyName = StrategyName.auto
    # Where a multi_worker run reads its cluster: env (TF_CONFIG) or slurm (Slurm's variables).
    cluster: ClusterSource = ClusterSource.env


@dataclasses.dataclass
class ObserveConfig:
    """What the run shows about its own training, beyond losses, metrics and gradient norms."""

    # Every every_n_steps steps, the gradient norm ‖∂L/∂h_t‖ at every time step of every recurrent
    # layer, on one fixed validation batch (TensorBoard: time_gradients/).
    time_gradients: bool = False
    every_n_steps: int = 50
    # Warn when the global gradient norm stays above explode_factor times its earlier level for
    # explode_steps consecutive steps. The earlier level is the larger of its mean over the
    # previous explode_window steps and its mean over the whole run so far. null turns it off.
    explode_factor: Optional[float] = 20.0
    explode_window: int = 50
    explode_steps: int = 3
    # Warn when a layer's ratio ‖∂L/∂h_first‖ / ‖∂L/∂h_last‖ falls below this (measured only with
    # time_gradients=true); null turns the alarm off.
    vanish_ratio: Optional[float] = 1e-6


@dataclasses.dataclass
class DataConfig:
    """What the `task.data` node of every task holds: where the data comes from and how missing
    splits are made. Each task's data configuration adds its own keys and may change a default."""

    # synthetic: the task's generated data (offline, deterministic by trainer.seed); files: local
    # files; tfds: a TFDS builder (the task's page names the builders it reads).
    source: DataSource = DataSource.synthetic
    # TFDS builder name (source=tfds), its data directory (null: the TFDS default) and split
    # names; a null validation split is carved from the training split.
    name: Optional[str] = None
    data_dir: Optional[str] = None
    train_split: str = "train"
    validation_split: Optional[str] = "validation"
    test_split: str = "test"
    # Fractions split off the training data, deterministically by seed, when a split is missing.
    validation_fraction: float = 0.1
    test_fraction: float = 0.1


@dataclasses.dataclass
class SplitFilesDataConfig(DataConfig):
    """A data configuration whose local files (source=files) are given one path per split;
    validation and test are split off the training data when not given."""

    train: Optional[str] = None
    validation: Optional[str] = None
    test: Optional[str] = None


@dataclasses.dataclass
class TextDataConfig(SplitFilesDataConfig):
    """Where a text classification task reads its examples from: a TFDS builder such as
    imdb_reviews or glue/sst2, or per split a CSV/TSV file with a header or a directory of class
    folders."""

    # One plain text file per class, one example per line (source=files): {neg: a.txt, pos: b.txt}.
    class_files: Any = None
    # Column names in a CSV/TSV file; null detects them from the header.
    text_column: Optional[str] = None
    label_column: Optional[str] = None
    # Size of the generated corpus (source=synthetic).
    num_train: int = 12000
    num_validation: int = 1500
    num_test: int = 3000


@dataclasses.dataclass
class SentimentTaskConfig:
    name: str = "sentiment"
    data: TextDataConfig = dataclasses.field(default_factory=TextDataConfig)
    # Word vocabulary size, including the padding and unknown tokens.
    vocabulary_size: int = 20000
    # Reviews are truncated to this many words.
    max_length: int = 400
    # How the recurrent outputs are summarised: the final state, or a masked mean or max over time.
    pooling: Pooling = Pooling.last


@dataclasses.dataclass
class CharacterDataConfig(SplitFilesDataConfig):
    """Where the character language model reads its text from: a TFDS builder such as
    tiny_shakespeare, or per split local UTF-8 text (a file, a directory, every file below it, or a
    glob). Missing validation or test text is a contiguous part cut off the end of the text."""

    # stdlib: the running interpreter's standard-library source code (offline, on every machine).
    source: CharacterSource = CharacterSource.stdlib
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    # Characters taken from the standard library (source=stdlib).
    max_characters: int = 1_100_000


@dataclasses.dataclass
class CharLanguageModelTaskConfig:
    name: str = "char_lm"
    data: CharacterDataConfig = dataclasses.field(default_factory=CharacterDataConfig)
    # truncated: contiguous streams with the state carried between batches; windows: independent
    # random windows with a fresh state each.
    bptt: Bptt = Bptt.truncated
    # Characters per training step; gradients flow back this many steps.
    seq_length: int = 100
    # The prompt of the text samples written to TensorBoard each epoch (null: the first line of
    # the validation text), and their length.
    sample_prompt: Optional[str] = None
    sample_length: int = 300


@dataclasses.dataclass
class VideoDataConfig(SplitFilesDataConfig):
    """Where the frame-labelling task reads its videos from: generated moving handwritten digits,
    a TFDS builder such as ucf101 (the video's label is given to every frame), or per split a
    local directory with one video file (mp4, avi, gif, ...) or one folder of frame images per
    video."""

    validation_split: Optional[str] = None
    # Frame labels (source=files): a CSV file with columns video,frame,label, or a directory of
    # <video>.txt files with one label per line, one line per frame; null looks for labels.csv in
    # each data directory.
    labels: Optional[str] = None
    # Videos generated (source=synthetic).
    num_train: int = 1500
    num_validation: int = 200
    num_test: int = 400


@dataclasses.dataclass
class VideoTaskConfig:
    name: str = "video"
    data: VideoDataConfig = dataclasses.field(default_factory=VideoDataConfig)
    # Frames are resized to frame_size x frame_size pixels.
    frame_size: int = 32
    # Keep every frame_stride-th frame (and its label).
    frame_stride: int = 1
    # Videos are cut after this many frames (after the stride).
    max_frames: int = 64
    # Convolution filters of the per-frame CNN, one block (conv, conv, pool) per entry.
    cnn_filters: List[int] = dataclasses.field(default_factory=lambda: [16, 32, 64])
    # Size of the feature vector the frame encoder gives the recurrent stack per frame.
    frame_features: int = 64
    # Validation frames drawn in the TensorBoard image strip each epoch.
    strip_frames: int = 24


@dataclasses.dataclass
class ParallelDataConfig(SplitFilesDataConfig):
    """Where the translation task reads its sentence pairs from: generated numbers and dates in
    English and French words, a TFDS translation builder such as ted_hrlr_translate/pt_to_en, or
    per split a TSV file of source<TAB>target lines or, with source_lang and target_lang set, a
    prefix of line-aligned files PREFIX.SOURCE_LANG and PREFIX.TARGET_LANG (plain or .gz)."""

    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    source_lang: Optional[str] = None
    target_lang: Optional[str] = None
    # Swap the two columns of a TSV file (translate the second language into the first).
    reverse: bool = False
    # Training pairs with more tokens than this on either side are left out (the count is
    # logged); validation and test pairs are never left out.
    max_length: int = 80
    # Pairs generated (source=synthetic).
    num_train: int = 20000
    num_validation: int = 1000
    num_test: int = 1000


@dataclasses.dataclass
class TranslationTaskConfig:
    name: str = "translation"
    data: ParallelDataConfig = dataclasses.field(default_factory=ParallelDataConfig)
    # Tokens are words (punctuation split off when split_punctuation) or characters.
    tokenizer: Tokenization = Tokenization.word
    lowercase: bool = True
    split_punctuation: bool = True
    # Each language's vocabulary: at most this many tokens (4 special ones included), each seen
    # at least min_frequency times in training; rarer tokens become <unk>.
    vocabulary_size: int = 16000
    min_frequency: int = 2
    # How the decoder reads the encoder's outputs at each step: none (the encoder's final
    # states only), additive (Bahdanau) or multiplicative (Luong) attention.
    attention: AttentionKind = AttentionKind.additive
    # Hidden size of additive attention's scoring network (null: model.units).
    attention_units: Optional[int] = None
    # Scheduled sampling: the probability that a training step feeds the decoder its own sampled
    # token instead of the reference one (0 is pure teacher forcing); constant, or rising
    # linearly from 0 at the first epoch to this value at the last.
    scheduled_sampling: float = 0.0
    scheduled_sampling_schedule: SamplingSchedule = SamplingSchedule.linear
    # Decoding for the final BLEU and predict: beam_size 1 is greedy search; the length penalty
    # alpha of Wu et al. (2016) favours longer hypotheses (0: none).
    beam_size: int = 5
    length_penalty: float = 0.6
    # Generated tokens at most: null gives 2 x source length + 10.
    max_output_length: Optional[int] = None
    # Validation sentences whose translations and attention matrices go to TensorBoard each epoch.
    sample_sentences: int = 4
    # Validation pairs translated (greedily) for the per-epoch val_bleu (null: all of them); the
    # final scores translate every pair.
    eval_decode_examples: Optional[int] = 1000


@dataclasses.dataclass
class CaptionDataConfig(DataConfig):
    """Where the captioning task reads its images and captions from: generated scenes of digits
    and shapes, a TFDS builder (coco_captions), or local files."""

    validation_split: Optional[str] = "val"
    # Local files (source=files): a directory of images, and a captions file holding either
    # `image_name#k<TAB>caption` lines or a CSV file with the columns image,caption.
    images: Optional[str] = None
    captions: Optional[str] = None
    # Optional files listing the images of each split, one name per line; without them the
    # images are split by seed.
    train_list: Optional[str] = None
    validation_list: Optional[str] = None
    test_list: Optional[str] = None
    # Images generated (source=synthetic).
    num_train: int = 6000
    num_validation: int = 500
    num_test: int = 1000


@dataclasses.dataclass
class CaptioningTaskConfig:
    name: str = "captioning"
    data: CaptionDataConfig = dataclasses.field(default_factory=CaptionDataConfig)
    # none: the pooled image features start the decoder (and, with feed_features, are fed at
    # every step); soft: the decoder also attends over the CNN's grid of locations at every step.
    attention: CaptionAttention = CaptionAttention.soft
    feed_features: bool = False
    # Images are resized to image_size x image_size.
    image_size: int = 48
    # small_cnn (trained from scratch), or a Keras application (mobilenet_v3_small,
    # mobilenet_v3_large, efficientnet_b0) with its weights from a local file.
    encoder: str = "small_cnn"
    encoder_weights: Optional[str] = None
    # With a pretrained encoder (kept frozen): compute its features once and keep them in this
    # directory, reused by later runs on the same images (null: computed once per run).
    feature_cache: Optional[str] = None
    # The small CNN: one block (conv, conv, pool) per entry, then a dense layer per location.
    cnn_filters: List[int] = dataclasses.field(default_factory=lambda: [32, 64, 128])
    image_features: int = 128
    # The caption vocabulary: at most vocabulary_size tokens seen min_frequency times in training.
    vocabulary_size: int = 10000
    min_frequency: int = 2
    lowercase: bool = True
    # Training captions longer than this many words are left out; generated captions stop here.
    max_length: int = 30
    # Decoding of the final scores and of predict: beam_size 1 is greedy search.
    beam_size: int = 3
    length_penalty: float = 0.0
    # Validation images captioned (and drawn with their attention) in TensorBoard each epoch.
    sample_images: int = 4
    # Validation images captioned greedily for the per-epoch val_bleu4 (null: all of them); the
    # final scores caption every image.
    eval_decode_examples: Optional[int] = 1000


@dataclasses.dataclass
class TaggingDataConfig(SplitFilesDataConfig):
    """Where the tagging task reads its tagged sentences from: generated sentences whose tags need
    context on both sides, a TFDS builder with tokens and per-token tags such as conll2003 or
    universal_dependencies/en_ewt, or per split a local file, plain or .gz."""

    # The files' format: CoNLL-U, or columns (word and tag columns, a blank line between
    # sentences); auto decides by the file name (.conllu) and its first line.
    format: TagFileFormat = TagFileFormat.auto
    # Sentences generated (source=synthetic).
    num_train: int = 8000
    num_validation: int = 1000
    num_test: int = 2000


@dataclasses.dataclass
class TaggingTaskConfig:
    name: str = "tagging"
    data: TaggingDataConfig = dataclasses.field(default_factory=TaggingDataConfig)
    # Which tag to learn. CoNLL-U: upos (universal part of speech) or xpos (the treebank's own
    # tags); column files: a column number counted from 1 (null: the last column); TFDS: a
    # feature name such as pos or ner (null: upos, or the only per-token tag feature).
    tag_column: Optional[str] = None
    # The column of the words in a column file, counted from 1.
    word_column: int = 1
    # The word vocabulary: at most vocabulary_size words (padding and <unk> included), each seen
    # min_frequency times in training, lower-cased when lowercase (characters keep their case).
    vocabulary_size: int = 50000
    min_frequency: int = 2
    lowercase: bool = True
    # In training, a word is replaced by <unk> with this probability, so <unk> learns to stand
    # for words the vocabulary does not hold.
    word_dropout: float = 0.05
    # Also read every word by its characters with a bidirectional recurrent encoder (the cell of
    # model.cell, char_units per direction), so unseen words get a representation from their
    # spelling. Words longer than max_word_length are read by their beginning and end.
    char_features: bool = True
    char_embedding_dim: int = 32
    char_units: int = 64
    max_word_length: int = 20
    # Tags shown in the confusion-matrix image each epoch: the most confused ones.
    confusion_tags: int = 10


@dataclasses.dataclass
class TaskzooConfig:
    task: Any = MISSING
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    observe: ObserveConfig = dataclasses.field(default_factory=ObserveConfig)


# The schema of each task's `task:` node, by task name.
TASK_SCHEMAS = {
    "sentiment": SentimentTaskConfig,
    "char_lm": CharLanguageModelTaskConfig,
    "video": VideoTaskConfig,
    "translation": TranslationTaskConfig,
    "captioning": CaptioningTaskConfig,
    "tagging": TaggingTaskConfig,
}


# The values of trainer.verbose; `console_verbosity` turns auto into 1 or 2.
VERBOSITY = ("auto", 0, 1, 2)


def console_verbosity(verbose, stream=None):
    """Keras' `verbose` for `trainer.verbose`: auto gives the live progress bar (1) on a terminal
    and one line per epoch (2) when the output is a file or a pipe, where the bar's redrawing
    would write backspaces and colour codes."""
    import sys

    if verbose != "auto":
        return int(verbose)
    stream = sys.stdout if stream is None else stream
    return 1 if hasattr(stream, "isatty") and stream.isatty() else 2


# Longest job directory name kept whole; file systems refuse names over 255 bytes.
MAX_JOB_DIRECTORY_NAME = 200


def job_directory_name(override_dirname, job_number):
    """The directory name of a sweep's job: its overrides (`model=lstm,model.units=64`), or, when
    they are too long for a file name, the job number, their beginning and a hash of them all.
    A slash in a value (a path, a TFDS name such as `universal_dependencies/en_ewt`) becomes an
    underscore, so every job directory sits directly in the sweep's."""
    import hashlib

    override_dirname = override_dirname.replace("/", "_")
    if len(override_dirname.encode()) <= MAX_JOB_DIRECTORY_NAME:
        return override_dirname
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:8]
    start = override_dirname.encode()[:MAX_JOB_DIRECTORY_NAME - 24].decode(errors="ignore")
    return f"{job_number}_{start}_{digest}"


def name_swept_paths(arguments):
    """The arguments of a command, with one more when a sweep varies a path setting
    (`task.data.train=en.conllu,fr.conllu`): the job directory names leave paths out
    (`exclude_keys` in conf/config.yaml) to stay short, so that sweep's jobs would share one
    directory. The added override keeps the swept path settings in the names."""
    import importlib.resources

    from hydra.errors import HydraException

    from taskzoo.observe.hparams import swept_keys

    setting = "hydra.job.config.override_dirname.exclude_keys"
    if not {"-m", "--multirun"} & set(arguments) or any(argument.startswith(setting) for argument in arguments):
        return arguments
    config = OmegaConf.load(importlib.resources.files("taskzoo.conf") / "config.yaml")
    excluded = list(OmegaConf.select(config, setting))
    overrides = [argument for argument in arguments if "=" in argument and not argument.startswith("-")]
    try:
        swept = set(swept_keys(overrides)) & set(excluded)
    except HydraException:  # Hydra reports its own grammar's errors.
        return arguments
    if not swept:
        return arguments
    return [*arguments, f"{setting}=[{','.join(key for key in excluded if key not in swept)}]"]


def register_configs():
    """Registers the schemas with Hydra's ConfigStore, and the resolver that names sweep job
    directories; called by the entry point before composing."""
    from hydra.core.config_store import ConfigStore

    OmegaConf.register_new_resolver("job_directory_name", job_directory_name, replace=True)

    config_store = ConfigStore.instance()
    config_store.store(name="taskzoo_schema", node=TaskzooConfig)
    for task_name, schema in TASK_SCHEMAS.items():
        config_store.store(group="schema/task", name=task_name, node=schema, package="task")


# The groups of settings an override such as `trainer.lr=0.1` is checked in before Hydra runs.
SETTING_GROUPS = ("task", "model", "trainer", "observe")


@functools.cache
def setting_keys():
    """Every setting's dotted key, and whether it holds a value (not a group of settings): the
    model's, the trainer's and the observers', and each task's under `task.` (a key that some
    task's schema defines)."""
    schema = OmegaConf.structured(TaskzooConfig)
    nodes = {group: OmegaConf.to_container(schema[group]) for group in ("model", "trainer", "observe")}
    nodes["task"] = {}
    for task_schema in TASK_SCHEMAS.values():
        _merge_keys(nodes["task"], OmegaConf.to_container(OmegaConf.structured(task_schema)))

    def flatten(prefix, node):
        for name, value in node.items():
            yield f"{prefix}.{name}", not isinstance(value, dict)
            if isinstance(value, dict):
                yield from flatten(f"{prefix}.{name}", value)

    return dict(entry for group, node in nodes.items() for entry in flatten(group, node))


def _merge_keys(into, node):
    for name, value in node.items():
        if isinstance(value, dict):
            _merge_keys(into.setdefault(name, {}), value)
        else:
            into.setdefault(name, value)


def check_setting_names(arguments):
    """Refuses an override of a setting that no schema defines (`trainer.lr=0.1`) with one line
    that suggests the setting meant; Hydra's own message would offer to add the key with `+`,
    which the schema then refuses too. Only plain KEY=VALUE overrides of the settings' groups
    are checked, and task settings against every task's schema, since an experiment may choose
    the task."""
    import difflib

    known = setting_keys()
    # The task's schema checks task values when the command names one task, else every task's.
    chosen = [argument.partition("=")[2] for argument in arguments if argument.startswith("task=")]
    tasks = chosen if len(chosen) == 1 and chosen[0] in TASK_SCHEMAS else list(TASK_SCHEMAS)
    for argument in arguments:
        key, separator, _ = argument.partition("=")
        if not separator or argument.startswith(("-", "+", "~")) or "." not in key:
            continue
        group = key.split(".")[0]
        if group not in SETTING_GROUPS:
            meant = difflib.get_close_matches(group, SETTING_GROUPS, n=1, cutoff=0.7)
            if meant:
                raise ConfigError(f"{key} is not a setting; did you mean {meant[0]}{key[len(group):]}?")
            continue
        parts = key.split(".")
        # A setting, or an element of a setting that holds a list (task.cnn_filters.0).
        if key in known or any(known.get(".".join(parts[:end])) for end in range(2, len(parts))):
            if known.get(key):
                check_override(argument, tasks)
            continue
        parent, _, leaf = key.rpartition(".")
        siblings = sorted(name for name in known if name.rpartition(".")[0] == parent)
        # An abbreviation ("lr" for learning_rate) or the start of a name, else a near spelling.
        meant = [name for name in siblings if leaf == "".join(word[:1] for word in name.rpartition(".")[2].split("_"))
                 or name.rpartition(".")[2].startswith(leaf)]
        meant = meant or difflib.get_close_matches(key, siblings or sorted(known), n=1, cutoff=0.6)
        suggestion = f"; did you mean {meant[0]}?" if meant else ""
        raise ConfigError(f"{key} is not a setting{suggestion} (`taskzoo --cfg job` prints every setting of a run).")


def override_values(override):
    """(key, values) of a KEY=VALUE override as Hydra's own parser reads it: one value, or each
    value of a simple sweep (`8,16`); values None for what Hydra reads specially (other sweeps
    such as `range(...)`, interpolations) or cannot parse (Hydra reports its own grammar's errors)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_override(override)
    except HydraException:
        return override.partition("=")[0], None
    value = parsed.value()
    if parsed.is_sweep_override() and not isinstance(value, ChoiceSweep):
        return parsed.key_or_group, None
    values = value.list if isinstance(value, ChoiceSweep) else [value]
    if any(isinstance(each, str) and "${" in each for each in values):
        return parsed.key_or_group, None
    return parsed.key_or_group, values


def check_override(override, tasks):
    """Refuses, in one line, a setting or value that the schema cannot take (`model.units=abc`,
    `model.cell=lstmm`, each value of a sweep `model.units=8,abc`); a task setting only when none
    of the `tasks`' schemas takes it. What `override_values` leaves to Hydra passes."""
    from omegaconf.errors import OmegaConfBaseException

    key, values = override_values(override)
    if values is None:
        return
    group, _, inner = key.partition(".")
    if group == "task":
        roots = [OmegaConf.structured(TASK_SCHEMAS[name]) for name in tasks]
        # The schemas that define the setting; when none does, the first says so.
        roots = [root for root in roots if OmegaConf.select(root, inner, default=_ABSENT) is not _ABSENT] or roots[:1]
    else:
        roots, inner = [OmegaConf.structured(TaskzooConfig)], key
    for each in values:
        reasons = []
        for root in roots:
            try:
                OmegaConf.update(root.copy(), inner, each, merge=True)
                break
            except OmegaConfBaseException as error:
                reasons.append(str(error).strip().splitlines()[0])
        else:
            raise ConfigError(f"{override}: {reasons[0]}.")


_ABSENT = object()


@functools.cache
def _defined_by_a_schema(key):
    """Whether some task's schema defines `key` ("task.<...>")."""
    return any(
        OmegaConf.select(OmegaConf.structured(schema), key.removeprefix("task."), default=_ABSENT) is not _ABSENT
        for schema in TASK_SCHEMAS.values()
    )


def _check(cfg, key, predicate, expected):
    value = OmegaConf.select(cfg, key, default=_ABSENT)
    if value is _ABSENT:
        # Task keys belong to some tasks only; a key no schema defines is a check that rotted
        # (a renamed knob), and must not pass silently.
        if not key.startswith("task.") or not _defined_by_a_schema(key):
            raise KeyError(f"validate_config checks {key}, which the schema does not define.")
        return
    if value is not None and not predicate(value):
        raise ConfigError(f"Invalid value for {key}: {value!r} (expected {expected}).")


def validate_config(cfg: DictConfig):
    """Checks the ranges that the schema's types cannot express. Raises ConfigError."""
    positive = (lambda v: v > 0, "a number greater than 0")
    _check(cfg, "model.units", *positive)
    _check(cfg, "model.embedding_dim", *positive)
    _check(cfg, "model.num_layers", lambda v: v >= 0, "an integer of 0 or more")
    for key in ("model.dropout", "model.recurrent_dropout"):
        _check(cfg, key, lambda v: 0 <= v < 1, "a number in [0, 1)")
    for key in (
        "trainer.epochs",
        "trainer.batch_size",
        "trainer.learning_rate",
        "trainer.clipnorm",
        "trainer.max_minutes",
        "trainer.log_every_n_steps",
        "trainer.steps_per_epoch",
        "trainer.evaluation_steps",
        "trainer.backup_every_n_steps",
        "observe.every_n_steps",
        "observe.explode_factor",
        "observe.explode_window",
        "observe.explode_steps",
        "observe.vanish_ratio",
    ):
        _check(cfg, key, *positive)
    _check(cfg, "trainer.min_learning_rate_fraction", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    _check(cfg, "trainer.early_stopping_patience", lambda v: v >= 0, "an integer of 0 or more")
    _check(cfg, "trainer.verbose", lambda v: v in VERBOSITY, "auto, 0, 1 or 2")
    _check(cfg, "task.vocabulary_size", lambda v: v >= 3, "an integer of 3 or more")
    _check(cfg, "task.max_length", *positive)
    _check(cfg, "task.scheduled_sampling", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    _check(cfg, "task.word_dropout", lambda v: 0 <= v < 1, "a number in [0, 1)")
    _check(cfg, "task.length_penalty", lambda v: v >= 0, "a number of 0 or more")
    _check(cfg, "task.sample_sentences", lambda v: v >= 0, "an integer of 0 or more")
    _check(cfg, "task.sample_images", lambda v: v >= 0, "an integer of 0 or more")
    for key in ("task.data.validation_fraction", "task.data.test_fraction"):
        _check(cfg, key, lambda v: 0 < v < 1, "a number in (0, 1)")
    for key in ("task.data.num_train", "task.data.num_validation", "task.data.num_test",
                "task.data.max_characters", "task.seq_length", "task.sample_length",
                "task.frame_size", "task.frame_stride", "task.max_frames", "task.frame_features",
                "task.strip_frames", "task.data.max_length", "task.min_frequency", "task.beam_size",
                "task.max_output_length", "task.eval_decode_examples", "task.image_size",
                "task.image_features", "task.word_column", "task.char_embedding_dim", "task.char_units",
                "task.max_word_length", "task.confusion_tags"):
        _check(cfg, key, *positive)
    fractions = [OmegaConf.select(cfg, f"task.data.{name}_fraction") for name in ("validation", "test")]
    if None not in fractions and sum(fractions) >= 1:
        raise ConfigError(
            f"task.data.validation_fraction + task.data.test_fraction must be below 1 (got {sum(fractions)})."
        )
    filters = OmegaConf.select(cfg, "task.cnn_filters")
    if filters is not None and (len(filters) == 0 or min(filters) <= 0):
        raise ConfigError(
            f"Invalid value for task.cnn_filters: {list(filters)} (expected a non-empty list of positive integers)."
        )
    if cfg.model.num_layers == 0 and cfg.model.bidirectional:
        raise ConfigError(
            "model.bidirectional=true needs model.num_layers of 1 or more (got 0, no recurrent layer)."
        )
