"""taskzoo: learn, compare and use recurrent neural networks on real tasks.

Importing the package registers every Keras layer that a saved taskzoo model holds, so that
`keras.saving.load_model("model.keras")` loads any run's model in safe mode after `import taskzoo`.
"""

__version__ = "0.1.0"

from taskzoo.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

# The task modules define, or import from `taskzoo.blocks`, every serializable taskzoo layer.
import taskzoo.tasks  # noqa: E402, F401
