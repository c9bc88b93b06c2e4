"""Training on several devices or machines with TensorFlow's `tf.distribute`.

`trainer.strategy` chooses the strategy:

- `auto`: TensorFlow's default, one device; on a machine with several GPUs, `mirrored`.
- `one_device`: the first GPU, or the CPU.
- `mirrored`: one replica per GPU of this machine, gradients all-reduced every step.
- `multi_worker`: `MultiWorkerMirroredStrategy`, one process per machine (each with its GPUs),
  the cluster read from `TF_CONFIG` (`trainer.cluster=env`) or from Slurm's variables
  (`trainer.cluster=slurm`).
- `tpu`: `TPUStrategy` on the TPU that `TPUClusterResolver` finds.

`trainer.batch_size` is always the global batch: tf.distribute splits every batch across the
replicas.

Every strategy but `multi_worker` trains with Keras' `fit`. Under `MultiWorkerMirroredStrategy`,
`fit` fails in Keras 3.15 (keras-team/keras#20585: it reduces a sample batch and the metric
values over the workers along an axis they do not have), so `DistributedLoop` drives the same
training: the model's own `train_step` and `test_step` under `strategy.run`, the same callbacks
in the same order, and the same logs. Only the driver differs, and a test checks that it gives
the numbers `fit` gives.
"""

import logging
import os

import keras
import tensorflow as tf

from taskzoo import choices
from taskzoo.errors import ConfigError
from taskzoo.quiet import runtime_lines_hidden


def cluster_resolver(cluster):
    """The cluster of a multi-worker run, from `TF_CONFIG` or from Slurm's environment."""
    if cluster == "slurm":
        if "SLURM_JOB_ID" not in os.environ:
            raise ConfigError(
                "trainer.cluster=slurm needs a Slurm job (SLURM_JOB_ID is not set); run it with srun, "
                "or use trainer.cluster=env with TF_CONFIG."
            )
        return tf.distribute.cluster_resolver.SlurmClusterResolver()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if not resolver.cluster_spec().as_dict():
        # No TF_CONFIG: this process is the only worker.
        return None
    return resolver


def build_strategy(trainer_config):
    """The configured tf.distribute strategy, or None for TensorFlow's default strategy."""
    # Physical devices: listing them does not start TensorFlow's runtime, which a multi-worker
    # strategy must configure first.
    name, gpus = str(trainer_config.strategy), tf.config.list_physical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else None
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        # Every step's collective operations would otherwise each log a line.
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
        resolver = cluster_resolver(str(trainer_config.cluster))
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    if name == "tpu":
        try:
            # TPU_NAME names a TPU node; without it, the TPU of this TPU VM.
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"trainer.strategy=tpu: no TPU found ({reason[:200]}).") from None
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"Unknown trainer.strategy {name!r}; expected {choices.expected(choices.STRATEGIES)}.")


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the run's outputs: the chief, or worker 0 in a cluster without
    one, or the only process."""
    if not is_multi_worker(strategy) or strategy.cluster_resolver is None:
        return True
    resolver = strategy.cluster_resolver
    return chief_task(resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict())


def chief_task(task_type, task_id, cluster):
    """Whether the task (`worker`, 1) of `cluster` ({"worker": [addresses], ...}) is the chief."""
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_description(strategy):
    if not is_multi_worker(strategy) or getattr(strategy.cluster_resolver, "task_type", None) is None:
        return "the only worker"
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id} of {strategy.extended._num_workers} workers"


class DistributedLoop:
    """`fit` and `evaluate` for a model built under `MultiWorkerMirroredStrategy`.

    It calls the callbacks at the points `fit` and `evaluate` call them, with the same logs: the
    metric values of each step, averaged over the replicas, and at an epoch's end the validation
    metrics with a `val_` prefix. A stop that one worker decides (a time budget, a signal) is
    agreed by all of them after every step, so that no worker waits for the others forever.
    """

    def __init__(self, model, strategy):
        self.model = model
        self.strategy = strategy
        self._train_function = None
        self._test_function = None
        self._vote_function = None

    def _reduce(self, outputs):
        def mean(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return self.strategy.reduce("MEAN", value, axis=None)
            return value

        return tf.nest.map_structure(mean, outputs)

    def _step_function(self, step):
        @tf.function
        def run(iterator):
            return self._reduce(self.strategy.run(step, args=(next(iterator),)))

        return run

    @property
    def train_function(self):
        if self._train_function is None:
            self._train_function = self._step_function(self.model.train_step)
        return self._train_function

    @property
    def test_function(self):
        if self._test_function is None:
            self._test_function = self._step_function(self.model.test_step)
        return self._test_function

    def any_worker(self, flag):
        """True on every worker when `flag` is true on any worker."""
        if self._vote_function is None:
            @tf.function
            def vote(stop):
                return self.strategy.reduce("SUM", self.strategy.run(lambda: stop), axis=None)

            self._vote_function = vote
        return float(self._vote_function(tf.constant(1.0 if flag else 0.0))) > 0

    @staticmethod
    def _logs(outputs):
        return {name: float(value) for name, value in outputs.items()}

    def _callback_list(self, callbacks, **kwargs):
        if isinstance(callbacks, keras.callbacks.CallbackList):
            return callbacks
        return keras.callbacks.CallbackList(list(callbacks), model=self.model, **kwargs)

    def _distribute(self, dataset):
        """The dataset split across the workers batch by batch: worker i of n takes every n-th
        batch. Every task's data is in memory or generated, never read from files that the
        workers could share out, so sharding by file (TensorFlow's first choice) cannot apply."""
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    @staticmethod
    def _iterate(distributed):
        """An iterator over a distributed dataset. Its making prints, once per process, that the
        strategy's per-device reader "will not be optimized", a notice of TensorFlow's internals
        that no setting of ours changes; it is hidden."""
        with runtime_lines_hidden():
            return iter(distributed)

    def _steps(self, dataset, steps):
        """Batches per pass: `steps`, or one pass over a finite dataset."""
        if steps:
            return steps
        cardinality = int(dataset.cardinality())
        if cardinality < 0:
            raise ValueError("A dataset of unknown or infinite length needs a number of steps.")
        return cardinality

    def fit(self, train_data, validation_data, epochs, steps_per_epoch=None, validation_steps=None,
            callbacks=(), verbose=0):
        # Like Keras' fit, the whole of training (callbacks included) runs in the strategy's scope.
        with self.strategy.scope():
            return self._fit(train_data, validation_data, epochs, steps_per_epoch, validation_steps,
                             callbacks, verbose)

    def _fit(self, train_data, validation_data, epochs, steps_per_epoch, validation_steps, callbacks, verbose):
        model = self.model
        steps_per_epoch = self._steps(train_data, steps_per_epoch)
        callback_list = self._callback_list(
            callbacks, add_history=True, add_progbar=verbose != 0, epochs=epochs,
            steps=steps_per_epoch, verbose=verbose,
        )
        distributed_train = self._distribute(train_data)
        repeats = int(train_data.cardinality()) == tf.data.INFINITE_CARDINALITY
        iterator = self._iterate(distributed_train) if repeats else None
        model.stop_training = False
        model._initial_epoch = 0
        callback_list.on_train_begin()
        epoch_logs = {}
        for epoch in range(model._initial_epoch, epochs):
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            if not repeats:
                iterator = self._iterate(distributed_train)
            logs = {}
            for step in range(steps_per_epoch):
                callback_list.on_train_batch_begin(step)
                try:
                    logs = self._logs(self.train_function(iterator))
                except (StopIteration, tf.errors.OutOfRangeError):
                    break
                callback_list.on_train_batch_end(step, logs)
                if self.any_worker(model.stop_training):
                    model.stop_training = True
                    break
            epoch_logs = dict(logs)
            if validation_data is not None:
                validation_logs = self._evaluate(validation_data, validation_steps, callback_list)
                epoch_logs.update({f"val_{name}": value for name, value in validation_logs.items()})
            callback_list.on_epoch_end(epoch, epoch_logs)
            if self.any_worker(model.stop_training):
                break
        callback_list.on_train_end(epoch_logs)
        return model.history

    def evaluate(self, dataset, steps=None, callbacks=()):
        with self.strategy.scope():
            return self._evaluate(dataset, steps, callbacks)

    def _evaluate(self, dataset, steps, callbacks):
        model = self.model
        steps = self._steps(dataset, steps)
        callback_list = self._callback_list(callbacks, steps=steps, verbose=0)
        iterator = self._iterate(self._distribute(dataset))
        model.reset_metrics()
        callback_list.on_test_begin()
        logs = {}
        for step in range(steps):
            callback_list.on_test_batch_begin(step)
            try:
                logs = self._logs(self.test_function(iterator))
            except (StopIteration, tf.errors.OutOfRangeError):
                break
            callback_list.on_test_batch_end(step, logs)
        callback_list.on_test_end(logs)
        return logs
