"""Decoding speed: the compiled loop of `taskzoo.blocks.decoding` against the earlier decoders.

    python scripts/benchmark_decoding.py                     # default translation, captioning and character models
    python scripts/benchmark_decoding.py --multi30k ../multi30k   # German -> English, a real vocabulary
    python scripts/benchmark_decoding.py --run-dir outputs/2026-12-02/10-00-00   # a finished run's share
    python scripts/benchmark_decoding.py --multi30k ../multi30k --breakdown       # where greedy's time goes

The earlier decoders (one compiled call of the decoder per output position, the beam's
bookkeeping in numpy with a loop over the examples) are kept in `tests/reference_decoding.py`,
where the tests compare them with the compiled loop. Both decode the same batches of the same
model in one process, after a warm-up that traces the compiled functions; the figure is
sentences (or images) per second, the best of three passes taken in turns. Each model is the
task's default network trained briefly on the task's default data, so that its outputs end at
realistic lengths (an untrained decoder never picks the end token and always runs to the
maximum length).

The character model's sampling is timed the same way, in characters per second of one text of
`--characters` (300, as in a run's samples): greedy, at the temperatures of a run's samples (0.5
and 1.0), and with top-k. Its earlier sampler made one compiled call of the batch-1 model per
character and chose the character in numpy.

With `--run-dir`, the script also reads a finished run's `metrics.json` and TensorBoard events
and reports the share of the run's time spent decoding: the per-epoch validation decoding
(`epoch_decode_seconds`) and the final evaluation (`evaluation_seconds`, which includes decoding
for BLEU with the configured beam).

With `--breakdown`, each model's greedy search is also timed against its parts: the loop's
iterations and the rows it decoded, the time per iteration, and one call of the decoder's step
alone, and of its output projection alone, on the average number of rows of an iteration; and
the earlier decoder's time per iteration against its step on the whole batch.
"""

import argparse
import json
import pathlib
import sys
import time

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from taskzoo.blocks.recurrent import reset_recurrent_states  # noqa: E402
from taskzoo.config import register_configs  # noqa: E402
from taskzoo.data import parallel  # noqa: E402
from taskzoo.tasks.captioning import Captioner, CaptioningTask  # noqa: E402
from taskzoo.tasks.char_lm import CharLanguageModelTask, TextGenerator  # noqa: E402
from taskzoo.tasks.translation import Translator, TranslationTask  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import reference_decoding  # noqa: E402


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("taskzoo.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def trained_network(task, steps):
    train_data, _, _ = task.datasets()
    network = task.build_model()
    network.compile(optimizer=keras.optimizers.Adam(3e-3), loss=task.loss())
    started = time.perf_counter()
    network.fit(train_data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    print(f"  trained {steps} steps in {time.perf_counter() - started:.0f} s", flush=True)
    return network


def compare(generator, batches, beam_size, length_penalty, repeats=3):
    """Sentences per second of the earlier and the compiled decoder on the same batches, the best
    of `repeats` passes each, taken in turns so that both meet the same load of the machine; and
    whether they agree on every output."""
    decoders = {
        "earlier": lambda inputs, max_lengths: reference_decoding.generate(
            generator, inputs, max_lengths, beam_size, length_penalty),
        "compiled": lambda inputs, max_lengths: generator.generate(inputs, max_lengths, beam_size, length_penalty),
    }
    seconds, outputs = {name: [] for name in decoders}, {}
    for decode in decoders.values():
        decode(*batches[0])  # Warm-up: traces the compiled functions.
    for _ in range(repeats):
        for name, decode in decoders.items():
            started = time.perf_counter()
            outputs[name] = [result["tokens"] for batch in batches for result in decode(*batch)]
            seconds[name].append(time.perf_counter() - started)
    sentences = sum(len(inputs) for inputs, _ in batches)
    figures = {name: sentences / min(times) for name, times in seconds.items()}
    agree = np.mean([a == b for a, b in zip(outputs["earlier"], outputs["compiled"])])
    lengths = np.mean([len(tokens) for tokens in outputs["compiled"]])
    return figures, agree, lengths


def report(label, generator, batches, length_penalty):
    for beam_size in (1, 5):
        figures, agree, lengths = compare(generator, batches, beam_size, length_penalty)
        search = "greedy" if beam_size == 1 else f"beam {beam_size}"
        print(f"| {label} | {search} | {figures['earlier']:.1f} | {figures['compiled']:.1f} | "
              f"{figures['compiled'] / figures['earlier']:.1f}x | {agree:.1%} | {lengths:.1f} |", flush=True)


def best_seconds(function, repeats=5):
    """The best of `repeats` timed calls, after one call that traces."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def in_loop_ms(function, *arguments, calls=100):
    """Milliseconds per call of `function` run `calls` times inside one compiled loop, one call
    after the other, so that no Python call overhead is counted."""

    @tf.function
    def repeated():
        def body(index, total):
            outputs = function(*arguments)
            # Every output is used, so that no part of the call is pruned from the graph.
            used = [tf.reduce_sum(tf.cast(output, tf.float32)) for output in tf.nest.flatten(outputs) if output is not None]
            return index + 1, total + tf.add_n(used)

        return tf.while_loop(lambda index, total: index < calls, body, (0, 0.0), parallel_iterations=1)

    return best_seconds(repeated) / calls * 1e3


def greedy_breakdown(generator, batches):
    """Greedy search's time per loop iteration (its encoding left out), against the decoder's
    step and its output projection alone on as many rows as an iteration decodes on average; and
    the earlier decoder's time per iteration (each of its iterations runs the step on the whole
    batch), a fifth of which is what an iteration may cost for a 5x speed-up."""
    iterations = rows = 0
    for inputs, max_lengths in batches:
        step_counts = generator.search(inputs, tf.constant(max_lengths, tf.int32), 1, tf.constant(0.0, tf.float64)).step_counts
        iterations, rows = iterations + int(tf.reduce_max(step_counts)), rows + int(tf.reduce_sum(step_counts))
    total = best_seconds(lambda: [generator.generate(*batch) for batch in batches])
    earlier = best_seconds(lambda: [reference_decoding.generate(generator, *batch, 1) for batch in batches], repeats=3)
    encoding = best_seconds(lambda: [generator.encode(inputs) for inputs, _ in batches])
    average, batch_size = max(1, round(rows / iterations)), len(batches[0][0])
    states, memory_inputs = generator.encode(batches[0][0])

    def step_ms(count):
        take = lambda tensor: tensor[:count]  # noqa: E731
        return in_loop_ms(generator.step, tf.fill([count], parallel.START_ID), tf.nest.map_structure(take, states),
                          tf.nest.map_structure(take, memory_inputs))

    step, full_step = step_ms(average), step_ms(batch_size)
    iteration, earlier_iteration = ((seconds - encoding) * 1e3 / iterations for seconds in (total, earlier))
    projection = generator.decoder.output_projection
    features = tf.random.normal([average, projection.kernel.shape[0]])
    print(f"  greedy: {iterations} loop iterations, {rows} rows decoded ({average} per iteration), "
          f"{iteration:.2f} ms per iteration (encoding left out: {encoding * 1e3:.0f} of {total * 1e3:.0f} ms); "
          f"the decoder's step alone on {average} rows {step:.2f} ms, of which the output projection "
          f"({projection.kernel.shape[0]} x {projection.kernel.shape[1]}) {in_loop_ms(projection, features):.2f} ms", flush=True)
    print(f"  greedy, earlier decoder: {earlier_iteration:.2f} ms per iteration, of which its step on {batch_size} "
          f"rows {full_step:.2f} ms; a 5x speed-up needs {earlier_iteration / 5:.2f} ms per iteration, against "
          f"{step:.2f} ms for the compiled loop's step alone", flush=True)


def translation_batches(count, batch_size, train_steps, multi30k=None):
    overrides = ["task=translation"]
    if multi30k:
        overrides += [
            "task.data.source=files", f"task.data.train={multi30k}/train", f"task.data.validation={multi30k}/val",
            f"task.data.test={multi30k}/test_2016_flickr", "task.data.source_lang=de", "task.data.target_lang=en",
        ]
    task = TranslationTask(compose(overrides))
    network = trained_network(task, train_steps)
    print(f"  translation: {task.description()}", flush=True)
    translator = Translator(network, task.tokenizer, task.source_vocabulary,
                            task.target_vocabulary)
    sources = [source for source, _ in task.pairs["validation"][:count]]
    ids = [task.source_vocabulary.encode(task.tokenizer.tokenize(source)) for source in sources]
    # Sentences of similar length together, as `Translator.translate` batches them.
    ids = [ids[index] for index in np.argsort([len(each) for each in ids], kind="stable")]
    batches = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        batches.append((tf.constant(parallel.padded(chunk)), np.array([2 * len(each) + 10 for each in chunk])))
    return translator.generator, batches, task.cfg.task.length_penalty


def captioning_batches(count, batch_size, train_steps, multi30k=None):
    task = CaptioningTask(compose(["task=captioning"]))
    captioner = Captioner(trained_network(task, train_steps), task.tokenizer, task.vocabulary, task.cfg.task.max_length)
    images = task.inputs["validation"][:count]
    batches = [
        (tf.constant(images[start : start + batch_size]), np.full(len(images[start : start + batch_size]),
                                                                  task.cfg.task.max_length))
        for start in range(0, len(images), batch_size)
    ]
    return captioner.generator, batches, task.cfg.task.length_penalty


def earlier_text(model, step, vocabulary, prompt, length, temperature, top_k, seed):
    """The character model's sampling before the compiled loop: one compiled call `step` of the
    batch-1 model per character, the choice made in numpy. The earlier sampler traced its step
    again for every text; here it is traced once, which favours the earlier sampler."""
    rng = np.random.default_rng(seed)
    reset_recurrent_states(model)
    logits = step(vocabulary.encode(prompt)[None])[0, -1].numpy()
    generated = []
    for _ in range(length):
        generated.append(reference_decoding.choose_token(logits, temperature, top_k, rng))
        logits = step(np.array([[generated[-1]]], dtype="int32"))[0, -1].numpy()
    return vocabulary.decode(generated)


def report_sampling(length, train_steps, repeats=3):
    """Characters per second of the character model's sampling (the default network, trained
    briefly on the default text), earlier against compiled, for greedy decoding and for the
    temperatures of the samples a run writes every epoch."""
    task = CharLanguageModelTask(compose(["task=char_lm"]))
    network = trained_network(task, train_steps)
    model = task.build_model(batch_size=1)
    model.set_weights(network.get_weights())
    prompt = task.validation_text.split("\n", 1)[0][:40] or "\n"
    generator = TextGenerator(model)
    step = tf.function(lambda ids: model(ids, training=False), input_signature=[tf.TensorSpec((1, None), tf.int32)])
    for temperature, top_k in ((0.0, None), (0.5, None), (1.0, None), (1.0, 10)):
        decoders = {
            "earlier": lambda: earlier_text(model, step, task.vocabulary, prompt, length, temperature, top_k, seed=1),
            "compiled": lambda: generator.generate(task.vocabulary, prompt, length, temperature, top_k, seed=1),
        }
        seconds, texts = {name: [] for name in decoders}, {}
        for decode in decoders.values():
            decode()  # Warm-up: traces the compiled functions.
        for _ in range(repeats):
            for name, decode in decoders.items():
                started = time.perf_counter()
                texts[name] = decode()
                seconds[name].append(time.perf_counter() - started)
        earlier, compiled = (length / min(seconds[name]) for name in decoders)
        search = "greedy" if temperature == 0 else f"temperature {temperature}" + (f", top-k {top_k}" if top_k else "")
        print(f"| char_lm {task.cfg.model.cell}, one text (characters per s) | {search} | {earlier:.0f} | "
              f"{compiled:.0f} | {compiled / earlier:.1f}x | {texts['earlier'] == texts['compiled']:.1%} | {length} |", flush=True)


def run_share(run_dir):
    """The share of a finished run's time spent decoding, from its metrics and events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = json.loads((run_dir / "metrics.json").read_text())
    per_epoch = 0.0
    validation_events = run_dir / "validation"
    if validation_events.is_dir():
        events = EventAccumulator(str(validation_events), size_guidance={"tensors": 0})
        events.Reload()
        if "epoch_decode_seconds" in events.Tags()["tensors"]:
            per_epoch = sum(float(tf.make_ndarray(event.tensor_proto)) for event in events.Tensors("epoch_decode_seconds"))
    train, evaluation = metrics["train_seconds"], metrics.get("evaluation_seconds", float("nan"))
    total = train + evaluation
    print(f"{run_dir}: training {train:.0f} s (of which per-epoch decoding {per_epoch:.1f} s, "
          f"{per_epoch / train:.1%}), final evaluation {evaluation:.0f} s; decoding share of the run "
          f"at most {(per_epoch + evaluation) / total:.1%}.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=256, help="validation examples decoded per model")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per decoding batch (both decoders)")
    parser.add_argument("--train-steps", type=int, default=400, help="training steps of each model before decoding")
    parser.add_argument("--characters", type=int, default=300,
                        help="characters generated by the character model per text (a run's samples have 300)")
    parser.add_argument("--multi30k", help="a Multi30k directory (train.de.gz, train.en.gz, val.*, test_2016_flickr.*): "
                        "the translation model learns German -> English instead of the default generated pairs")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time greedy search's loop iterations against the decoder's step alone")
    parser.add_argument("--run-dir", type=pathlib.Path, action="append", default=[],
                        help="a finished run whose decoding share to report (repeatable)")
    arguments = parser.parse_args()
    for run_dir in arguments.run_dir:
        run_share(run_dir)
    if arguments.run_dir:
        return
    register_configs()
    keras.utils.set_random_seed(0)
    print("| model | search | earlier (per s) | compiled (per s) | speed-up | same outputs | mean length |")
    print("|---|---|---|---|---|---|---|")
    for label, make in (("translation gru", translation_batches), ("captioning lstm", captioning_batches)):
        generator, batches, length_penalty = make(arguments.sentences, arguments.batch_size, arguments.train_steps,
                                                  arguments.multi30k)
        report(label, generator, batches, length_penalty)
        if arguments.breakdown:
            greedy_breakdown(generator, batches)
    report_sampling(arguments.characters, arguments.train_steps)


if __name__ == "__main__":
    main()
