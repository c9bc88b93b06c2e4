"""Alarms: one warning line, and the same line as a TensorBoard text entry under `alarms`."""

import logging
import sys

import tensorflow as tf

logger = logging.getLogger("taskzoo.alarms")


def report_alarm(message, step, after_progress_bar=False):
    """Logs `message` as a warning and writes it to the current default summary writer.

    `after_progress_bar`: a live progress bar is drawn on the current console line, so the
    warning first ends that line, to start on its own.
    """
    if after_progress_bar:
        sys.stdout.write("\n")
        sys.stdout.flush()
    logger.warning(message)
    with tf.summary.record_if(True):
        tf.summary.text("alarms", message, step=step)


class JumpDetector:
    """Says when a value stays above `factor` times its earlier level for `steps` consecutive
    values: the signature of an exploding gradient, which stays large until it is dealt with.

    The earlier level is the larger of two means: of the `window` values before the jump, and of
    every value before it. A single large value (one hard batch, a cliff in the loss surface that
    clipping absorbs) raises nothing; neither does noise on a loss already near zero, whose
    gradients are tiny next to those of the run so far. The values of a jump in progress do not
    count towards the earlier level. After an alarm the window starts afresh, so a value that
    stays high raises one alarm, not one per step.
    """

    def __init__(self, factor, window, steps=3):
        self.factor = factor
        self.window = window
        self.steps = steps
        self.values = []
        self.jump = []
        self.total = 0.0
        self.count = 0

    def level(self):
        if len(self.values) < self.window:
            return None
        return max(sum(self.values) / self.window, self.total / self.count)

    def _remember(self, values):
        self.values = (self.values + values)[-self.window:]
        self.total += sum(values)
        self.count += len(values)

    def update(self, value):
        """Adds a value; returns the earlier level it jumped from when the jump has lasted
        `steps` values, else None."""
        level = self.level()
        if level is not None and value > self.factor * level:
            self.jump.append(value)
            if len(self.jump) < self.steps:
                return None
            self.total += sum(self.jump)
            self.count += len(self.jump)
            self.values, self.jump = [], []
            return level
        self._remember(self.jump + [value])
        self.jump = []
        return None
