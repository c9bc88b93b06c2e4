"""`run(cfg)`: seed -> task -> data -> model -> compile -> fit -> evaluate -> save."""

import logging
import pathlib
import time

import keras

from taskzoo.blocks.recurrent import fused_kernel_warning
from taskzoo.config import validate_config
from taskzoo.observe.gradients import GradientNormModel
from taskzoo.observe.tensorboard import (
    tensorboard_callbacks,
    write_final_metrics,
    write_hyperparameters,
)
from taskzoo.tasks import build_task
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


def run(cfg, run_dir=None):
    """Trains, evaluates and saves one run; returns the `metrics.json` content."""
    validate_config(cfg)
    run_dir = pathlib.Path(run_dir) if run_dir is not None else hydra_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.trainer.seed)
    warning = fused_kernel_warning(str(cfg.model.cell), cfg.model.recurrent_dropout)
    if warning:
        logger.warning(warning)

    task = build_task(cfg)
    train_data, validation_data, test_data = task.datasets()
    logger.info("Data: %s", task.description())
    network = task.build_model()
    model = GradientNormModel(network)
    model.compile(
        optimizer=build_optimizer(cfg.trainer),
        loss=task.loss(),
        metrics=task.metrics(),
        weighted_metrics=task.weighted_metrics(),
        jit_compile=cfg.trainer.jit_compile,
    )

    trainer = cfg.trainer
    budget = TimeBudget(trainer.max_minutes) if trainer.max_minutes else None
    best_weights = best_weights_callback(task, trainer)
    task_callbacks = task.callbacks(run_dir)
    callbacks = [*task_callbacks, best_weights, *tensorboard_callbacks(run_dir, trainer.log_every_n_steps)]
    callbacks += [budget] if budget else []
    steps_per_epoch = trainer.steps_per_epoch or task.steps_per_epoch
    steps_per_epoch = at_most_one_pass(train_data, steps_per_epoch)
    callbacks += learning_rate_callbacks(trainer, steps_per_epoch)
    write_hyperparameters(run_dir, cfg, trial_id=str(run_dir))

    start = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=trainer.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=at_most_one_pass(validation_data, trainer.evaluation_steps),
        callbacks=callbacks,
        shuffle=False,
        verbose=trainer.verbose,
    )
    train_seconds = time.perf_counter() - start

    def evaluate(dataset):
        return model.evaluate(
            dataset,
            steps=at_most_one_pass(dataset, trainer.evaluation_steps),
            callbacks=task_callbacks,
            return_dict=True,
            verbose=0,
        )

    results = {
        "task": cfg.task.name,
        "model": str(cfg.model.cell),
        "test": {**evaluate(test_data), **task.extra_metrics(network, "test")},
        "validation": {**evaluate(validation_data), **task.extra_metrics(network, "validation")},
        "epochs_completed": len(history.epoch),
        "train_seconds": round(train_seconds, 2),
        "train_steps": int(model.optimizer.iterations.numpy()),
        "stop_reason": (
            "max_minutes" if budget and budget.triggered
            else "early_stopping" if best_weights.stopped_epoch > 0
            else "epochs"
        ),
        "best_epoch": best_weights.best_epoch + 1,
        "parameters": network.count_params(),
    }
    save_model_atomic(task.export_model(network), run_dir / "model.keras")
    task.save_artifacts(run_dir)
    write_final_metrics(run_dir, results, step=int(model.optimizer.iterations.numpy()))
    # metrics.json is written last: its presence marks a finished run.
    write_json_atomic(run_dir / "metrics.json", results)

    test = ", ".join(f"{name} {value:.4f}" for name, value in results["test"].items())
    print(f"Test: {test} | {results['epochs_completed']} epochs in {train_seconds:.0f} s")
    print(f"Run directory: {run_dir}")
    return results
