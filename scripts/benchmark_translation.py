"""Training throughput of the translation model against a plain Keras encoder-decoder.

    python scripts/benchmark_translation.py                      # the default generated pairs
    python scripts/benchmark_translation.py --multi30k ../shared/data/multi30k --units 256

The plain model is the encoder-decoder of the usual Keras tutorial, at the same sizes: an
embedding and a GRU encoder whose final state starts a GRU decoder layer run over the whole
teacher-forced target, then a dense layer over the vocabulary. It is compared with taskzoo's
translator without attention (the same computation through the shared blocks) and with additive
attention. Every model trains on the same batches for the same number of steps after a warm-up;
the figure is target tokens (padding excluded) per second of training.
"""

import argparse
import sys
import time

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from taskzoo.config import register_configs  # noqa: E402
from taskzoo.tasks.translation import TranslationTask  # noqa: E402


def plain_keras_model(source_vocabulary, target_vocabulary, units, embedding_dim):
    """The tutorial encoder-decoder: the encoder's final state is the decoder's initial state."""
    source = keras.Input((None,), dtype="int32", name="source")
    target_input = keras.Input((None,), dtype="int32", name="target_input")
    embedded_source = keras.layers.Embedding(source_vocabulary, embedding_dim, mask_zero=True)(source)
    _, state = keras.layers.GRU(units, return_state=True)(embedded_source)
    embedded_target = keras.layers.Embedding(target_vocabulary, embedding_dim)(target_input)
    decoded = keras.layers.GRU(units, return_sequences=True)(embedded_target, initial_state=state)
    logits = keras.layers.Dense(target_vocabulary)(decoded)
    return keras.Model({"source": source, "target_input": target_input}, logits)


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def tokens_per_second(model, batches, steps, warmup):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
    )
    iterator = iter(batches)
    warm = [next(iterator) for _ in range(warmup)]
    timed = [next(iterator) for _ in range(steps)]
    for inputs, targets, weights in warm:
        model.train_on_batch(inputs, targets, sample_weight=weights)
    tokens = sum(float(np.sum(weights)) for _, _, weights in timed)
    start = time.perf_counter()
    for inputs, targets, weights in timed:
        model.train_on_batch(inputs, targets, sample_weight=weights)
    return tokens / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--multi30k", help="the Multi30k directory (train.de.gz, train.en.gz, ...)")
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    arguments = parser.parse_args()

    register_configs()
    overrides = [
        "task=translation", "model=gru", f"model.units={arguments.units}",
        f"model.embedding_dim={arguments.embedding_dim}", f"trainer.batch_size={arguments.batch_size}",
    ]
    if arguments.multi30k:
        overrides += [
            "task.data.source=files", f"task.data.train={arguments.multi30k}/train",
            f"task.data.validation={arguments.multi30k}/val", f"task.data.test={arguments.multi30k}/test_2016_flickr",
            "task.data.source_lang=de", "task.data.target_lang=en",
        ]
    task = TranslationTask(compose(overrides))
    train_batches = task.datasets()[0]
    print(f"data: {task.description()['pairs']['train']} training pairs; units {arguments.units}, "
          f"embedding {arguments.embedding_dim}, batch {arguments.batch_size}, {arguments.steps} timed steps",
          file=sys.stderr)

    rows = []
    keras.utils.set_random_seed(0)
    plain = plain_keras_model(len(task.source_vocabulary), len(task.target_vocabulary), arguments.units,
                              arguments.embedding_dim)
    rows.append(("plain Keras encoder-decoder (tutorial)", plain))
    for attention in ("none", "additive"):
        keras.utils.set_random_seed(0)
        task.cfg.task.attention = attention
        rows.append((f"taskzoo, attention={attention}", task.build_model()))

    print("| model | parameters | target tokens per second |")
    print("|---|---|---|")
    for name, model in rows:
        speed = tokens_per_second(model, train_batches, arguments.steps, arguments.warmup)
        print(f"| {name} | {model.count_params():,} | {speed:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
