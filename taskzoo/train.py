"""`run(cfg)`: seed -> task -> data -> model -> compile -> fit -> evaluate -> save."""

import contextlib
import logging
import math
import pathlib
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from taskzoo.blocks.recurrent import fused_kernel_warning
from taskzoo.config import console_verbosity, validate_config
from taskzoo.distribute import DistributedLoop, build_strategy, is_chief, is_multi_worker, worker_description
from taskzoo.errors import TrainingError
from taskzoo.observe import hparams
from taskzoo.observe.gradients import GradientNormModel
from taskzoo.observe.tensorboard import tensorboard_callbacks
from taskzoo.observe.time_gradients import longest_batch
from taskzoo.quiet import run_first_operations_quietly
from taskzoo.resilience import Backup, GracefulStop, StopOnNonFiniteLoss, continue_data
from taskzoo.tasks import build_task, main_metric
from taskzoo.training import (
    TimeBudget,
    best_weights_callback,
    build_optimizer,
    learning_rate_callbacks,
    save_model_atomic,
    write_json_atomic,
)

logger = logging.getLogger(__name__)


def hydra_run_dir():
    from hydra.core.hydra_config import HydraConfig

    return pathlib.Path(HydraConfig.get().runtime.output_dir)


def at_most_one_pass(dataset, steps):
    """Caps `steps` at one pass over a finite dataset; a repeating dataset keeps `steps`."""
    batches = int(dataset.cardinality())
    if batches > 0:
        return min(steps or batches, batches)
    return steps


def objective(results):
    """What a hyperparameter search optimises: the run's final value of the validation metric
    that selects its best epoch (the task's `monitor`); NaN for a run that did not finish."""
    if not results:
        return math.nan
    name, _ = main_metric(results["task"])
    return float(results["validation"].get(name, math.nan))


def run(cfg, run_dir=None):
    """Trains, evaluates and saves one run; returns the `metrics.json` content.

    A run directory that holds a backup (a run killed or stopped before it finished) resumes from
    it. A stop signal or a non-finite loss ends the run with `metrics.json` saying why, and
    raises a TaskzooError that the command line turns into one line and a non-zero exit code.
    """
    validate_config(cfg)
    run_dir = pathlib.Path(run_dir) if run_dir is not None else hydra_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = cfg.trainer
    # First: a multi-worker strategy must exist before TensorFlow runs anything else.
    strategy = build_strategy(trainer)
    run_first_operations_quietly()
    chief = is_chief(strategy)
    # Only the chief writes into the run directory; other workers write what the callbacks
    # produce to a temporary directory, deleted at the end.
    output_dir = run_dir if chief else pathlib.Path(tempfile.mkdtemp(prefix="taskzoo-worker-"))
    if strategy is not None:
        logger.info("Strategy: %s, %d replica(s); this process is %s.", type(strategy).__name__,
                    strategy.num_replicas_in_sync, worker_description(strategy))
    try:
        return _run(cfg, run_dir, output_dir, strategy, chief)
    finally:
        if not chief:
            shutil.rmtree(output_dir, ignore_errors=True)


def _run(cfg, run_dir, output_dir, strategy, chief):
    trainer = cfg.trainer
    keras.backend.clear_session()
    keras.utils.set_random_seed(trainer.seed)
    if trainer.deterministic:
        tf.config.experimental.enable_op_determinism()
    warning = fused_kernel_warning(str(cfg.model.cell), cfg.model.recurrent_dropout)
    if warning:
        logger.warning(warning)

    task = build_task(cfg)
    train_data, validation_data, test_data = task.datasets()
    logger.info("Data: %s", task.description())
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        network = task.build_model()
        model = GradientNormModel(network)
        model.compile(
            optimizer=build_optimizer(trainer),
            loss=task.loss(),
            metrics=task.metrics(),
            weighted_metrics=task.weighted_metrics(),
            jit_compile=trainer.jit_compile,
        )
    # Keras' fit drives training, except under MultiWorkerMirroredStrategy (see distribute.py).
    loop = DistributedLoop(model, strategy) if is_multi_worker(strategy) else None

    steps_per_epoch = at_most_one_pass(train_data, trainer.steps_per_epoch or task.steps_per_epoch)
    budget = [TimeBudget(trainer.max_minutes)] if trainer.max_minutes else []
    schedule = learning_rate_callbacks(trainer, steps_per_epoch)
    stopper, non_finite = GracefulStop(), StopOnNonFiniteLoss()

    def cut_short():
        return stopper.received is not None or non_finite.failure is not None

    best_weights = best_weights_callback(task, trainer, cut_short)
    backup = Backup(
        run_dir / "backup",
        trainer.backup_every_n_steps,
        write_directory=output_dir / "backup",
        resumables=[*budget, *schedule],
        best_weights=best_weights,
        should_skip=cut_short,
        failed=lambda: non_finite.failure is not None,
        exact=trainer.deterministic,
    )
    if loop is None:
        # A resumed run reads the batches the uninterrupted run would read next.
        completed = (backup.read_state() or {}).get("epoch", 0)
        train_data = continue_data(train_data, completed, steps_per_epoch)
    task_callbacks = task.callbacks(output_dir)
    verbose = console_verbosity(trainer.verbose) if chief else 0
    callbacks = [
        backup, non_finite, stopper, *task_callbacks, best_weights,
        *tensorboard_callbacks(
            output_dir, trainer.log_every_n_steps, cfg.observe,
            probe_batch=longest_batch(validation_data) if cfg.observe.time_gradients else None,
            loss_function=task.loss(), live_progress_bar=verbose == 1,
        ),
        *budget, *schedule,
    ]
    hparams.write_run_entry(output_dir, cfg, run_dir)

    stopper.install()
    try:
        fit_arguments = dict(
            validation_data=validation_data,
            epochs=trainer.epochs,
            steps_per_epoch=steps_per_epoch,
            validation_steps=at_most_one_pass(validation_data, trainer.evaluation_steps),
            callbacks=callbacks,
        )
        if loop is not None:
            loop.fit(train_data, verbose=verbose, **fit_arguments)
        else:
            model.fit(train_data, shuffle=False, verbose=verbose, **fit_arguments)
    finally:
        stopper.uninstall()
    if loop is not None and loop.any_worker(stopper.received is not None) and stopper.received is None:
        # Another worker received the stop signal (Slurm sends it to every task); every worker
        # must take the same path from here, or the collective operations would wait forever.
        stopper.received = "SIGTERM"
    if backup.resumed_from_epoch is not None:
        logger.info("Resumed from the backup after epoch %d.", backup.resumed_from_epoch)

    identity = {"task": cfg.task.name, "model": str(cfg.model.cell)}
    summary = {
        "epochs_completed": backup.completed_epochs,
        "train_seconds": round(backup.seconds(), 2),
        "train_steps": int(model.optimizer.iterations.numpy()),
        "best_epoch": best_weights.best_epoch + 1 if best_weights.best_weights is not None else None,
        "parameters": network.count_params(),
    }

    def save_for_inference():
        if chief:
            save_model_atomic(task.export_model(network), run_dir / "model.keras")
            task.save_artifacts(run_dir)

    def write_metrics(content):
        if chief:
            write_json_atomic(run_dir / "metrics.json", content)

    if non_finite.failure:
        # The weights are not finite any more; the last backup is the last good state.
        write_metrics({**identity, **summary, "stop_reason": "non_finite_loss", "error": non_finite.failure})
        kept = (
            f"the last good state is in {backup.directory}" if backup.read_state() is not None
            else "no backup had been taken before it"
        )
        raise TrainingError(f"{non_finite.failure}; {kept}.")
    if stopper.received:
        # Saved without testing, to be quick: a cluster gives little time after SIGTERM.
        save_for_inference()
        write_metrics(
            {**identity, **summary, "stop_reason": "interrupted", "interrupted": True, "signal": stopper.received}
        )
        raise TrainingError(
            f"Stopped by {stopper.received} after {summary['train_steps']} steps; the same command "
            f"with hydra.run.dir={run_dir} resumes the run.",
            exit_code=stopper.exit_code,
        )

    def evaluate(dataset):
        steps = at_most_one_pass(dataset, trainer.evaluation_steps)
        if loop is not None:
            return loop.evaluate(dataset, steps=steps, callbacks=task_callbacks)
        return model.evaluate(dataset, steps=steps, callbacks=task_callbacks, return_dict=True, verbose=0)

    started = time.perf_counter()
    test_results = {**evaluate(test_data), **task.extra_metrics(network, "test")}
    validation_results = {**evaluate(validation_data), **task.extra_metrics(network, "validation")}
    results = {
        **identity,
        "test": test_results,
        "validation": validation_results,
        **summary,
        # The final evaluation of both splits, decoding for BLEU included.
        "evaluation_seconds": round(time.perf_counter() - started, 2),
        "stop_reason": (
            "max_minutes" if budget and budget[0].triggered
            else "early_stopping" if best_weights.stopped_epoch > 0
            else "epochs"
        ),
    }
    save_for_inference()
    if not chief:
        print(f"Worker done ({worker_description(strategy)}); the chief writes the outputs.")
        return results
    hparams.write_final_metrics(run_dir, results, results["train_steps"], main_metric(cfg.task.name)[0])
    # metrics.json is written last: its presence marks a finished run; the backup has done its job.
    write_metrics(results)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)

    test = ", ".join(f"{name} {value:.4f}" for name, value in results["test"].items())
    print(f"Test: {test} | {results['epochs_completed']} epochs in {results['train_seconds']:.0f} s")
    print(f"Run directory: {run_dir}")
    return results
