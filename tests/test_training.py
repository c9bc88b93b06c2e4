"""The shared trainer's learning-rate schedule."""

import math

import keras
import numpy as np
import pytest

from taskzoo.training import CosineSchedule


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
