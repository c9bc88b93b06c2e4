"""Character language model at equal time: taskzoo models against a plain Keras tutorial model.

    python scripts/benchmark_char_lm.py --data ../shared/data/tinyshakespeare/input.txt \
        --minutes 15 --models lstm gru rnn --baseline

Every model trains for the same wall-clock budget on the same 90/5/5 character split, then is
tested on the test text. taskzoo runs `python -m taskzoo task=char_lm ...` with its default
configuration (truncated backpropagation through time, state carried across batches). The baseline
is the usual tutorial model of the same size: embedding 64, one LSTM of 512 units, batch 64,
shuffled non-overlapping windows of 100 characters, Adam 2e-3, global clipnorm 5, no carried state.
It is tested twice: on 100-character windows from a zero state (the tutorial's own way), and by
streaming the test text with its state carried (the way taskzoo tests). Characters per second
count the training characters divided by the training time, validation included for both.
"""

import argparse
import json
import math
import pathlib
import subprocess
import sys
import time

SEQ_LENGTH, BATCH_SIZE = 100, 64


def run_taskzoo(model, data, minutes, out):
    run_dir = out / f"taskzoo_{model}"
    command = [
        sys.executable, "-m", "taskzoo", "task=char_lm", f"model={model}", "task.data.source=files",
        f"task.data.train={data}", f"trainer.max_minutes={minutes}", "trainer.epochs=1000",
        "trainer.early_stopping_patience=null", "trainer.verbose=2", f"hydra.run.dir={run_dir}",
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(completed.stderr)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # The run's own batch size and window length (the task's defaults, not the baseline's).
    from omegaconf import OmegaConf

    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    characters = metrics["train_steps"] * config.trainer.batch_size * config.task.seq_length
    return {
        "name": f"taskzoo {model} (truncated BPTT)",
        "test_bits_per_char": metrics["test"]["bits_per_char"],
        "validation_bits_per_char": metrics["validation"]["bits_per_char"],
        "characters_per_second": characters / metrics["train_seconds"],
        "epochs": metrics["epochs_completed"],
        "train_seconds": metrics["train_seconds"],
    }


def run_baseline(data, minutes, out):
    from taskzoo.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    from taskzoo.data.characters import CharacterVocabulary, split_by_character, stream_batches
    from taskzoo.stopping import TimeBudget

    keras.utils.set_random_seed(0)
    train_text, validation_text, test_text = split_by_character(pathlib.Path(data).read_text(), 0.05, 0.05)
    vocabulary = CharacterVocabulary.from_text(train_text)

    def windows(text, shuffle):
        ids = tf.data.Dataset.from_tensor_slices(vocabulary.encode(text))
        chunks = ids.batch(SEQ_LENGTH + 1, drop_remainder=True).map(lambda c: (c[:-1], c[1:]))
        if shuffle:
            chunks = chunks.shuffle(10000)
        return chunks.batch(BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def build(stateful):
        inputs = keras.Input(batch_shape=(BATCH_SIZE if stateful else None, None), dtype="int32")
        x = keras.layers.Embedding(len(vocabulary), 64)(inputs)
        x = keras.layers.LSTM(512, return_sequences=True, stateful=stateful)(x)
        return keras.Model(inputs, keras.layers.Dense(len(vocabulary))(x))

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = build(stateful=False)
    model.compile(optimizer=keras.optimizers.Adam(2e-3, global_clipnorm=5.0), loss=loss)
    budget = TimeBudget(minutes)
    start = time.perf_counter()
    history = model.fit(windows(train_text, True), validation_data=windows(validation_text, False),
                        epochs=1000, callbacks=[budget], verbose=2)
    train_seconds = time.perf_counter() - start
    characters = int(model.optimizer.iterations.numpy()) * BATCH_SIZE * SEQ_LENGTH
    window_bits = model.evaluate(windows(test_text, False), verbose=0) / math.log(2)

    streaming = build(stateful=True)
    streaming.set_weights(model.get_weights())
    streaming.compile(loss=loss)
    test_streams = stream_batches(vocabulary.encode(test_text), BATCH_SIZE, SEQ_LENGTH, "test")
    stream_bits = streaming.evaluate(test_streams, verbose=0) / math.log(2)
    return {
        "name": "plain Keras LSTM-512, shuffled windows",
        "test_bits_per_char": window_bits,
        "test_bits_per_char_streamed": stream_bits,
        "validation_bits_per_char": history.history["val_loss"][-1] / math.log(2),
        "characters_per_second": characters / train_seconds,
        "epochs": len(history.epoch),
        "train_seconds": train_seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/tinyshakespeare/input.txt")
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--models", nargs="*", default=["lstm"])
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/char_lm"))
    arguments = parser.parse_args()
    data = pathlib.Path(arguments.data).resolve()
    if not data.is_file():
        raise SystemExit(f"{data}: no such file (the tiny-shakespeare text; see --data).")
    arguments.out.mkdir(parents=True, exist_ok=True)

    results = []
    for model in arguments.models:
        results.append(run_taskzoo(model, data, arguments.minutes, arguments.out))
        print(json.dumps(results[-1]), flush=True)
    if arguments.baseline:
        results.append(run_baseline(data, arguments.minutes, arguments.out))
        print(json.dumps(results[-1]), flush=True)
    (arguments.out / "results.json").write_text(json.dumps(results, indent=2))

    print(f"\n{arguments.minutes:g} minutes of training each, 2 CPU cores")
    print("| model | test bits/char | epochs | characters/s |")
    print("|---|---|---|---|")
    for result in results:
        streamed = result.get("test_bits_per_char_streamed")
        bits = f"{result['test_bits_per_char']:.3f}" + (f" ({streamed:.3f} streamed)" if streamed else "")
        print(f"| {result['name']} | {bits} | {result['epochs']} | {result['characters_per_second']:.0f} |")


if __name__ == "__main__":
    main()
