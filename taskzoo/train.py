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
from taskzoo.resilience import Backup, GracefulStop, StopOnNonFiniteLoss, continue_data, keep_run_settings
from taskzoo.tasks import build_task, main_metric
from taskzoo.atomic import save_model_atomic, write_json_atomic
from taskzoo.optimization import build_optimizer, learning_rate_callbacks
from taskzoo.stopping import ProgressBar, TimeBudget, best_weights_callback

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
        return Run(cfg, run_dir, output_dir, strategy, chief).execute()
    finally:
        if not chief:
            shutil.rmtree(output_dir, ignore_errors=True)


def ordered_callbacks(backup, non_finite, stopper, task_callbacks, best_weights, observers, budget, schedule,
                      progress_bar):
    """The callbacks of a run, in the order Keras calls them. The order is a contract:

    1. `backup` first: it restores the weights, the optimizer's step and the random states before
       any other callback starts, and saves an epoch only after all the others have seen its end.
    2. `non_finite` and `stopper` next: they decide whether a step or an epoch was cut short,
       which `backup` and `best_weights` read at the epoch's end.
    3. The task's callbacks before `best_weights`: translation and captioning put `val_bleu` and
       `val_bleu4` into the epoch's logs, where early stopping may read them.
    4. `observers` (gradient norms, then TensorBoard) after `best_weights`, so TensorBoard writes
       every value the others added to the logs; the gradient-norm logger comes before
       TensorBoard within them.
    5. `budget` and `schedule`: they only read the step count and the clock.
    6. The console's `progress_bar` (a list, empty when the console is quiet) last, where Keras
       puts its own: an epoch's line shows every value the others added to the logs.

    `tests/test_training.py` checks this order on a real run's list.
    """
    return [backup, non_finite, stopper, *task_callbacks, best_weights, *observers, *budget, *schedule, *progress_bar]


class Run:
    """One run in three phases: `prepare` (seed, task, data, model), `train` (fit with the
    callbacks), `finish` (evaluate, save and summarise; or save what an interrupted run has)."""

    def __init__(self, cfg, run_dir, output_dir, strategy, chief):
        self.cfg, self.trainer = cfg, cfg.trainer
        self.run_dir, self.output_dir = run_dir, output_dir
        self.strategy, self.chief = strategy, chief

    def execute(self):
        self.prepare()
        self.train()
        return self.finish()

    # Prepare.

    def prepare(self):
        trainer = self.trainer
        keep_run_settings(self.run_dir, self.cfg, record=self.chief)
        keras.backend.clear_session()
        keras.utils.set_random_seed(trainer.seed)
        if trainer.deterministic:
            tf.config.experimental.enable_op_determinism()
        warning = fused_kernel_warning(str(self.cfg.model.cell), self.cfg.model.recurrent_dropout)
        if warning:
            logger.warning(warning)

        self.task = build_task(self.cfg)
        self.train_data, self.validation_data, self.test_data = self.task.datasets()
        logger.info("Data: %s", self.task.description())
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            self.network = self.task.build_model()
            self.model = GradientNormModel(self.network)
            self.model.compile(
                optimizer=build_optimizer(trainer),
                loss=self.task.loss(),
                metrics=self.task.metrics(),
                weighted_metrics=self.task.weighted_metrics(),
                jit_compile=trainer.jit_compile,
            )
        # Keras' fit drives training, except under MultiWorkerMirroredStrategy (see distribute.py).
        self.loop = DistributedLoop(self.model, self.strategy) if is_multi_worker(self.strategy) else None
        self.steps_per_epoch = at_most_one_pass(self.train_data, trainer.steps_per_epoch or self.task.steps_per_epoch)
        self.build_callbacks()

    def build_callbacks(self):
        trainer, task = self.trainer, self.task
        self.budget = [TimeBudget(trainer.max_minutes)] if trainer.max_minutes else []
        schedule = learning_rate_callbacks(trainer, self.steps_per_epoch)
        self.stopper, self.non_finite = GracefulStop(), StopOnNonFiniteLoss()
        self.best_weights = best_weights_callback(task, trainer, self.cut_short)
        self.backup = Backup(
            self.run_dir / "backup",
            trainer.backup_every_n_steps,
            write_directory=self.output_dir / "backup",
            resumables=[*self.budget, *schedule],
            best_weights=self.best_weights,
            should_skip=self.cut_short,
            failed=lambda: self.non_finite.failure is not None,
            exact=trainer.deterministic,
        )
        self.task_callbacks = task.callbacks(self.output_dir)
        self.verbose = console_verbosity(trainer.verbose) if self.chief else 0
        observers = tensorboard_callbacks(
            self.output_dir, trainer.log_every_n_steps, self.cfg.observe,
            probe_batch=longest_batch(self.validation_data) if self.cfg.observe.time_gradients else None,
            loss_function=task.loss(), live_progress_bar=self.verbose == 1,
        )
        self.callbacks = ordered_callbacks(
            self.backup, self.non_finite, self.stopper, self.task_callbacks, self.best_weights, observers,
            self.budget, schedule, [ProgressBar()] if self.verbose else [],
        )

    def cut_short(self):
        """Whether the epoch in progress was cut short by a stop signal before its last training
        step, or by a non-finite loss."""
        return self.stopper.cut_an_epoch or self.non_finite.failure is not None

    # Train.

    def train(self):
        trainer = self.trainer
        train_data = self.train_data
        if self.loop is None:
            # A resumed run reads the batches the uninterrupted run would read next.
            completed = (self.backup.read_state() or {}).get("epoch", 0)
            train_data = continue_data(train_data, completed, self.steps_per_epoch)
        hparams.write_run_entry(self.output_dir, self.cfg, self.run_dir)
        fit_arguments = dict(
            validation_data=self.validation_data,
            epochs=trainer.epochs,
            steps_per_epoch=self.steps_per_epoch,
            validation_steps=at_most_one_pass(self.validation_data, trainer.evaluation_steps),
            callbacks=self.callbacks,
            verbose=self.verbose,
        )
        self.stopper.install()
        try:
            if self.loop is not None:
                self.loop.fit(train_data, **fit_arguments)
            else:
                self.model.fit(train_data, shuffle=False, **fit_arguments)
        finally:
            self.stopper.uninstall()
        stopper = self.stopper
        if self.loop is not None and self.loop.any_worker(stopper.received is not None) and stopper.received is None:
            # Another worker received the stop signal (Slurm sends it to every task); every worker
            # must take the same path from here, or the collective operations would wait forever.
            stopper.received = "SIGTERM"
        if self.backup.resumed_from_epoch is not None:
            logger.info("Resumed from the backup after epoch %d.", self.backup.resumed_from_epoch)

    # Finish: the three exit paths share `summary`, `save_for_inference` and `write_metrics`.

    def summary(self):
        best_weights = self.best_weights
        return {
            "task": self.cfg.task.name,
            "model": str(self.cfg.model.cell),
            "epochs_completed": self.backup.completed_epochs,
            "train_seconds": round(self.backup.seconds(), 2),
            "train_steps": int(self.model.optimizer.iterations.numpy()),
            "best_epoch": best_weights.best_epoch + 1 if best_weights.best_weights is not None else None,
            "parameters": self.network.count_params(),
        }

    def save_for_inference(self):
        if self.chief:
            save_model_atomic(self.task.export_model(self.network), self.run_dir / "model.keras")
            self.task.save_artifacts(self.run_dir)

    def write_metrics(self, content):
        if self.chief:
            write_json_atomic(self.run_dir / "metrics.json", content)

    def finish(self):
        summary = self.summary()
        if self.non_finite.failure:
            # The weights are not finite any more; the last backup is the last good state.
            failure = self.non_finite.failure
            self.write_metrics({**summary, "stop_reason": "non_finite_loss", "error": failure})
            kept = (
                f"the last good state is in {self.backup.directory}" if self.backup.read_state() is not None
                else "no backup had been taken before it"
            )
            raise TrainingError(f"{failure}; {kept}.")
        if self.stopper.received:
            # Saved without testing, to be quick: a cluster gives little time after SIGTERM.
            signal_name = self.stopper.received
            self.save_for_inference()
            self.write_metrics({**summary, "stop_reason": "interrupted", "interrupted": True, "signal": signal_name})
            raise TrainingError(
                f"Stopped by {signal_name} after {summary['train_steps']} steps; the same command "
                f"with hydra.run.dir={self.run_dir} resumes the run.",
                exit_code=self.stopper.exit_code,
            )
        return self.evaluate_and_save(summary)

    def evaluate(self, dataset):
        steps = at_most_one_pass(dataset, self.trainer.evaluation_steps)
        if self.loop is not None:
            return self.loop.evaluate(dataset, steps=steps, callbacks=self.task_callbacks)
        return self.model.evaluate(dataset, steps=steps, callbacks=self.task_callbacks, return_dict=True, verbose=0)

    def evaluate_and_save(self, summary):
        task, network, run_dir = self.task, self.network, self.run_dir
        started = time.perf_counter()
        test_results = {**self.evaluate(self.test_data), **task.extra_metrics(network, "test")}
        validation_results = {**self.evaluate(self.validation_data), **task.extra_metrics(network, "validation")}
        identity = {key: summary.pop(key) for key in ("task", "model")}
        results = {
            **identity,
            "test": test_results,
            "validation": validation_results,
            **summary,
            # The final evaluation of both splits, decoding for BLEU included.
            "evaluation_seconds": round(time.perf_counter() - started, 2),
            "stop_reason": (
                "max_minutes" if self.budget and self.budget[0].triggered
                else "early_stopping" if self.best_weights.stopped_epoch > 0
                else "epochs"
            ),
        }
        self.save_for_inference()
        if not self.chief:
            print(f"Worker done ({worker_description(self.strategy)}); the chief writes the outputs.")
            return results
        hparams.write_final_metrics(run_dir, results, results["train_steps"], main_metric(self.cfg.task.name)[0])
        # metrics.json is written last: its presence marks a finished run; the backup has done its job.
        self.write_metrics(results)
        shutil.rmtree(run_dir / "backup", ignore_errors=True)

        test = ", ".join(f"{name} {value:.4f}" for name, value in results["test"].items())
        epochs = results["epochs_completed"]
        print(f"Test: {test} | {epochs} epoch{'s' if epochs != 1 else ''} in {results['train_seconds']:.0f} s")
        print(f"Run directory: {run_dir}")
        return results
