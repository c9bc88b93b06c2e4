"""Alarms: one warning line, and the same line as a TensorBoard text entry under `alarms`."""

import logging

import tensorflow as tf

logger = logging.getLogger("taskzoo.alarms")


def report_alarm(message, step):
    """Logs `message` as a warning and writes it to the current default summary writer."""
    logger.warning(message)
    with tf.summary.record_if(True):
        tf.summary.text("alarms", message, step=step)


class JumpDetector:
    """Says when a value exceeds `factor` times the mean of the `window` values before it.

    After an alarm the history starts afresh, so a value that stays high raises one alarm, not
    one per step.
    """

    def __init__(self, factor, window):
        self.factor = factor
        self.window = window
        self.values = []

    def update(self, value):
        """Adds a value; returns the mean it jumped from, or None."""
        jumped_from = None
        if len(self.values) == self.window:
            mean = sum(self.values) / self.window
            if value > self.factor * mean:
                jumped_from = mean
        if jumped_from is not None:
            self.values = []
        else:
            self.values = (self.values + [value])[-self.window:]
        return jumped_from
