"""The run's phases and callback order, the learning-rate schedule, and a task trained without the trainer."""

import math

import keras
import numpy as np
import pytest

from conftest import compose_config
from taskzoo import train
from taskzoo.observe.gradients import GradientNormLogger
from taskzoo.optimization import CosineSchedule
from taskzoo.resilience import Backup, GracefulStop, StopOnNonFiniteLoss
from taskzoo.stopping import BestWeights, ProgressBar, TimeBudget
from taskzoo.tasks.translation import ScheduledSampling, TranslationSamples, TranslationTask


class LearningRates(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate.numpy()))


def fit_with(schedule, epochs=2, steps=4):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    rates = LearningRates()
    x, y = np.ones((steps * 2, 3)), np.zeros((steps * 2, 1))
    model.fit(x, y, batch_size=2, epochs=epochs, callbacks=[schedule, rates], verbose=0)
    return rates.rates


def test_cosine_schedule_decays_over_the_steps_of_the_run():
    rates = fit_with(CosineSchedule(0.1, 0.05, total_steps=8))
    expected = [0.1 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / 8))) for step in range(8)]
    assert rates == pytest.approx(expected, rel=1e-5)


def test_with_a_time_budget_the_rate_follows_the_time_spent():
    # A clock that advances 15 seconds between readings, against a one-minute budget: the run is
    # 25, 50, 75 and 100% done at the first four steps, whatever the step count says.
    readings = iter(range(0, 1000, 15))
    rates = fit_with(CosineSchedule(0.1, 0.05, total_steps=1000, max_minutes=1, clock=lambda: next(readings)))
    expected = [0.1 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min((step + 1) / 4, 1)))) for step in range(8)]
    assert rates == pytest.approx(expected, rel=1e-5)


class StopAfter(keras.callbacks.Callback):
    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.steps:
            self.model.stop_training = True


@pytest.mark.parametrize("progress_bar, expected", [(ProgressBar, "3/10 "), (keras.callbacks.ProgbarLogger, "10/10 ")])
def test_the_line_of_an_epoch_cut_short_counts_the_steps_that_ran(progress_bar, expected, capsys):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = np.ones((20, 3)), np.zeros((20, 1))
    model.fit(x, y, batch_size=2, epochs=2, callbacks=[StopAfter(3), progress_bar()], verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if "/step" in line]
    # One line: the epoch stopped after 3 of its 10 steps. Keras' own bar claims all 10.
    assert len(lines) == 1 and lines[0].strip().startswith(expected), lines
    # Whole epochs keep Keras' line.
    model.fit(x, y, batch_size=2, epochs=1, callbacks=[progress_bar()], verbose=2)
    assert capsys.readouterr().out.lstrip().startswith("10/10 ")


TINY_TRANSLATION = [
    "task=translation", "trainer=smoke", "model.units=8", "model.embedding_dim=8", "task.data.num_train=64",
    "task.data.num_validation=8", "task.data.num_test=8", "task.eval_decode_examples=8",
]


def test_the_callbacks_of_a_run_come_in_their_stated_order(tmp_path):
    cfg = compose_config(*TINY_TRANSLATION, "task.scheduled_sampling=0.2", "trainer.max_minutes=5",
                         "trainer.schedule=cosine", "trainer.verbose=2")
    run = train.Run(cfg, tmp_path, tmp_path, strategy=None, chief=True)
    run.prepare()
    kinds = [type(callback) for callback in run.callbacks]
    position = {kind: kinds.index(kind) for kind in kinds}
    assert kinds[:3] == [Backup, StopOnNonFiniteLoss, GracefulStop]
    # The task's callbacks add val_bleu to the logs before early stopping reads them.
    assert position[TranslationSamples] < position[BestWeights] and position[ScheduledSampling] < position[BestWeights]
    # The gradient-norm logger adds its values before TensorBoard writes the logs.
    tensorboard = next(index for index, callback in enumerate(run.callbacks)
                       if isinstance(callback, keras.callbacks.TensorBoard))
    assert position[BestWeights] < position[GradientNormLogger] < tensorboard
    assert kinds[-3:] == [TimeBudget, CosineSchedule, ProgressBar]


def test_a_task_trains_under_a_plain_keras_fit(tmp_path):
    # The task's callbacks reach the network through `trained_network`: no trainer needed.
    keras.utils.set_random_seed(0)
    task = TranslationTask(compose_config(*TINY_TRANSLATION, "task.scheduled_sampling=0.5"))
    train_data, validation_data, _ = task.datasets()
    network = task.build_model()
    network.compile(optimizer="adam", loss=task.loss(), weighted_metrics=task.weighted_metrics())
    history = network.fit(train_data, validation_data=validation_data, epochs=2, steps_per_epoch=4,
                          validation_steps=1, callbacks=task.callbacks(tmp_path), shuffle=False, verbose=0)
    assert len(history.history["val_bleu"]) == 2 and history.history["val_decode_seconds"][-1] > 0
    assert float(network.get_layer("decoder").sampling_probability.numpy()) == 0.0  # reset at the end
