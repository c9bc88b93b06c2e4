"""Imports TensorFlow without the lines its C++ runtime prints at start-up."""

import importlib
import os
import sys


def import_tensorflow_quietly():
    """Imports TensorFlow and lists its devices with file descriptor 2 sent to /dev/null.

    TensorFlow prints a few informational lines (oneDNN, CUDA, CPU features) at import time
    that `TF_CPP_MIN_LOG_LEVEL` does not silence. Redirecting the descriptor keeps oneDNN on.
    Set `TASKZOO_VERBOSE_IMPORT=1` to see them, for debugging an installation.
    """
    if "tensorflow" in sys.modules or os.environ.get("TASKZOO_VERBOSE_IMPORT") == "1":
        importlib.import_module("tensorflow")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stderr.flush()
    saved_descriptor = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow

            # Initialising the devices prints a line about CUDA drivers on a machine without them.
            tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved_descriptor, 2)
        os.close(saved_descriptor)


def run_first_operations_quietly():
    """Runs, with file descriptor 2 sent to /dev/null, the operation whose first use prints an
    error-looking notice: the first transpose of a boolean tensor (every masked recurrent layer
    makes one) says, once per process, that oneDNN falls back to TensorFlow's own kernel on
    processors without AVX-512. It is harmless.

    Call it after a multi-worker strategy is created: TensorFlow must run no operation before.
    """
    import tensorflow

    if os.environ.get("TASKZOO_VERBOSE_IMPORT") == "1":
        return
    sys.stderr.flush()
    saved_descriptor = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            tensorflow.transpose(tensorflow.constant([[True]]))
    finally:
        os.dup2(saved_descriptor, 2)
        os.close(saved_descriptor)
