"""Imports TensorFlow and runs its first operations without the harmless lines that its C++
runtime prints once per process, which `TF_CPP_MIN_LOG_LEVEL` does not silence. Set
`TASKZOO_VERBOSE_IMPORT=1` to see them, for debugging an installation."""

import contextlib
import os
import sys


@contextlib.contextmanager
def runtime_lines_hidden():
    """Sends file descriptor 2, where TensorFlow's runtime writes, to /dev/null for the block
    (unless `TASKZOO_VERBOSE_IMPORT=1`). Python's own errors still reach the console: an exception
    is printed after the block ends."""
    if os.environ.get("TASKZOO_VERBOSE_IMPORT") == "1":
        yield
        return
    sys.stderr.flush()
    saved_descriptor = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved_descriptor, 2)
        os.close(saved_descriptor)


def import_tensorflow_quietly():
    """Imports TensorFlow and lists its devices without the informational lines (oneDNN, CUDA,
    CPU features) that its import prints. Redirecting the descriptor keeps oneDNN on."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.get("TASKZOO_VERBOSE_IMPORT") != "1":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    with runtime_lines_hidden():
        import tensorflow

        # Initialising the devices prints a line about CUDA drivers on a machine without them.
        tensorflow.config.list_physical_devices()


def run_first_operations_quietly():
    """Runs the operation whose first use prints an error-looking notice: the first transpose of
    a boolean tensor (every masked recurrent layer makes one) says, once per process, that oneDNN
    falls back to TensorFlow's own kernel on processors without AVX-512. It is harmless.

    Call it after a multi-worker strategy is created: TensorFlow must run no operation before.
    """
    import tensorflow

    with runtime_lines_hidden():
        tensorflow.transpose(tensorflow.constant([[True]]))
