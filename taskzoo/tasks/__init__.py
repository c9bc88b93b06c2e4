"""The task registry: a task name in the configuration selects one pipeline."""

from taskzoo.errors import ConfigError
from taskzoo.tasks.captioning import CaptioningTask
from taskzoo.tasks.char_lm import CharLanguageModelTask
from taskzoo.tasks.sentiment import SentimentTask
from taskzoo.tasks.tagging import TaggingTask
from taskzoo.tasks.translation import TranslationTask
from taskzoo.tasks.video import VideoTask

TASKS = {
    "sentiment": SentimentTask,
    "char_lm": CharLanguageModelTask,
    "video": VideoTask,
    "translation": TranslationTask,
    "captioning": CaptioningTask,
    "tagging": TaggingTask,
}


def build_task(cfg):
    """Returns the task named by `cfg.task.name`, or raises ConfigError for an unknown name."""
    name = cfg.task.name
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r} (task.name); expected one of {sorted(TASKS)}.")
    return TASKS[name](cfg)


def main_metric(task_name):
    """The task's main metric as (name in `metrics.json`, higher is better): the validation
    metric that selects the best epoch (`Task.monitor`). Unknown tasks fall back to the loss."""
    task = TASKS.get(task_name)
    if task is None:
        return "loss", False
    return task.monitor.removeprefix("val_"), task.monitor_mode == "max"
