"""The recurrent backbone every task builds on: a stack of Keras RNN, LSTM or GRU layers.

Depth is a stack of the standard Keras layers rather than a stacked cell, so each layer keeps the
fused (cuDNN) kernel on a GPU. Each layer can be bidirectional, takes dropout on its inputs and on
its recurrent connections, and respects the mask of padded steps. The stack returns the output
sequence or the final output, and optionally the final states of every layer, which decoders use
as their initial states.
"""

import types

import keras
import tensorflow as tf
from keras import ops

from taskzoo import choices

CELL_LAYERS = choices.registry(
    choices.CELLS, rnn=keras.layers.SimpleRNN, lstm=keras.layers.LSTM, gru=keras.layers.GRU
)


def fused_kernel_warning(cell, recurrent_dropout):
    """Returns a one-line warning when the configuration rules out the fused GPU kernel, else None."""
    if cell in ("lstm", "gru") and recurrent_dropout > 0:
        return (
            f"model.recurrent_dropout={recurrent_dropout} disables the fused cuDNN {cell.upper()} "
            "kernel on a GPU; training there uses the slower generic kernel."
        )
    return None


def _check_stack_arguments(cell, num_layers, bidirectional, return_sequences, return_state, stateful,
                           kernel_initializer, recurrent_initializer):
    """Raises a ValueError that names the argument when a `RecurrentStack` cannot be built."""
    if cell not in CELL_LAYERS:
        raise ValueError(f"Unknown cell {cell!r}; expected {choices.expected(choices.CELLS)}.")
    if num_layers < 0:
        raise ValueError(f"num_layers must be 0 or more; received num_layers={num_layers}.")
    if stateful and bidirectional:
        raise ValueError("A stateful stack cannot be bidirectional: the backward direction has no carried state.")
    if num_layers == 0 and (return_state or not return_sequences or bidirectional):
        raise ValueError(
            "A stack with num_layers=0 has no recurrent layer: it only supports "
            "return_sequences=True, return_state=False and bidirectional=False."
        )
    for name, value in (("kernel_initializer", kernel_initializer), ("recurrent_initializer", recurrent_initializer)):
        if value not in choices.INITIALIZERS:
            raise ValueError(f"Unknown {name} {value!r}; expected {choices.expected(choices.INITIALIZERS)}.")


@keras.saving.register_keras_serializable(package="taskzoo")
class RecurrentStack(keras.layers.Layer):
    """A stack of `num_layers` recurrent layers of one cell type.

    Args:
        cell: "rnn" (tanh SimpleRNN), "lstm" or "gru".
        units: hidden units per layer and direction.
        num_layers: depth of the stack; 0 makes the stack the identity on sequences, the
            baseline without recurrence.
        bidirectional: wrap every layer in `keras.layers.Bidirectional` (outputs concatenated).
        dropout: dropout on the inputs of every layer (the same mask at every step).
        recurrent_dropout: dropout on the recurrent connections (rules out the fused GPU kernel).
        kernel_initializer: initialiser of the input kernels.
        recurrent_initializer: initialiser of the recurrent kernels.
        return_sequences: return the output at every step (batch, time, features) instead of the
            final output (batch, features).
        return_state: also return the final states, a list with one entry per layer; each entry is
            the list of that layer's state tensors ([h] for rnn and gru, [h, c] for lstm; forward
            states then backward states when bidirectional).
        stateful: carry the final states of one batch over as the initial states of the next
            (truncated backpropagation through time); needs a fixed batch size, and
            `reset_state()` starts every sequence afresh.

    Call arguments:
        inputs: (batch, time, features).
        mask: optional boolean (batch, time); padded steps are skipped, and the final output of a
            sequence is the one at its last real step.
        initial_state: optional list with one entry per layer, each a list of state tensors.
        training: whether dropout is active.
    """

    def __init__(
        self,
        cell="gru",
        units=128,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        recurrent_dropout=0.0,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        return_sequences=False,
        return_state=False,
        stateful=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_stack_arguments(cell, num_layers, bidirectional, return_sequences, return_state, stateful,
                               kernel_initializer, recurrent_initializer)
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.stateful = stateful
        self.supports_masking = True
        # Set by `taskzoo.observe.time_gradients.probing` while it measures the gradient through
        # time: the stack then runs its cells step by step and perturbs their hidden states.
        self.time_gradient_probe = None

        # Keras' Bidirectional rebuilds the layers it is given from their configs. While a saved
        # model loads, Keras matches objects by their Python id, so a given layer that was freed
        # could hand its id, and so its rebuilt copy, to a later layer: a forward layer shared by
        # two stacks, or a "backward" layer that runs forward. Keeping the given layers alive for
        # the stack's lifetime (in a holder that Keras neither tracks nor saves) rules that out.
        # The backward layer is given too, so Bidirectional rebuilds one layer, not two.
        self._bidirectional_templates = types.SimpleNamespace(layers=[])
        self.recurrent_layers = [self._recurrent_layer(index) for index in range(num_layers)]

    def _recurrent_layer(self, index):
        """The Keras layer at depth `index`, wrapped in Bidirectional when the stack is."""
        cell = self.cell
        arguments = dict(
            units=self.units,
            return_sequences=self.return_sequences or index < self.num_layers - 1,
            return_state=True,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            kernel_initializer=self.kernel_initializer,
            recurrent_initializer=self.recurrent_initializer,
            stateful=self.stateful,
        )
        layer = CELL_LAYERS[cell](name=f"{cell}_{index}", **arguments)
        if not self.bidirectional:
            return layer
        backward = CELL_LAYERS[cell](name=f"backward_{cell}_{index}", go_backwards=True, **arguments)
        self._bidirectional_templates.layers += [layer, backward]
        return keras.layers.Bidirectional(layer, backward_layer=backward, name=f"bidirectional_{cell}_{index}")

    @property
    def output_size(self):
        """The feature size of the outputs: units, doubled when bidirectional."""
        return self.units * (2 if self.bidirectional else 1)

    def build(self, input_shape):
        # (batch, time, features) in, (batch, time, output_size) between layers.
        shape = tuple(input_shape)
        for layer in self.recurrent_layers:
            layer.build(shape)
            shape = shape[:2] + (self.output_size,)

    def call(self, inputs, mask=None, initial_state=None, training=None):
        outputs = inputs
        final_states = []
        for index, layer in enumerate(self.recurrent_layers):
            layer_initial_state = None if initial_state is None else list(initial_state[index])
            if self.time_gradient_probe is not None:
                outputs, states = self._probed_layer(layer, outputs, mask, layer_initial_state)
            else:
                results = layer(outputs, mask=mask, initial_state=layer_initial_state, training=training)
                # (batch, time, features) or (batch, features), followed by the state tensors.
                outputs, states = results[0], list(results[1:])
            final_states.append(states)
        if self.return_state:
            return outputs, final_states
        return outputs

    def _probed_layer(self, layer, inputs, mask, initial_state):
        """The layer's inference computation, cell by cell, with the time-gradient probe's
        perturbations on its hidden states (see `run_cell`). A stateful
        stack starts from zero states here and leaves its carried states alone."""
        is_last = layer is self.recurrent_layers[-1]
        return_sequences = self.return_sequences or not is_last
        directions = (
            [(layer.forward_layer, "forward"), (layer.backward_layer, "backward")]
            if isinstance(layer, keras.layers.Bidirectional) else [(layer, None)]
        )
        outputs, states = [], []
        for direction, (rnn, suffix) in enumerate(directions):
            direction_state = None
            if initial_state is not None:
                half = len(initial_state) // len(directions)
                direction_state = initial_state[direction * half:(direction + 1) * half]
            name = f"{self.name}/{layer.name}" + (f"/{suffix}" if suffix else "")
            sequence, final = run_cell(
                rnn.cell, inputs, self.time_gradient_probe, name, mask, direction_state, go_backwards=rnn.go_backwards
            )
            if rnn.go_backwards:
                # Keras' Bidirectional puts the backward outputs back in input order.
                sequence = ops.flip(sequence, 1)
            outputs.append(sequence if return_sequences else final[0])
            states.extend(final)
        return (outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)), states

    def reset_state(self):
        """Zeroes the carried states of a stateful stack."""
        for layer in self.recurrent_layers:
            layer.reset_state()

    def compute_mask(self, inputs, mask=None):
        if not self.return_sequences:
            return None
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            kernel_initializer=self.kernel_initializer,
            recurrent_initializer=self.recurrent_initializer,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            stateful=self.stateful,
        )
        return config


def reset_recurrent_states(model):
    """Zeroes the carried states of every stateful RecurrentStack in `model`."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, RecurrentStack) and layer.stateful:
            layer.reset_state()


def recurrent_stack_from_config(model_config, **kwargs):
    """Builds a RecurrentStack from the `model:` configuration node."""
    return RecurrentStack(
        cell=str(model_config.cell),
        units=model_config.units,
        num_layers=model_config.num_layers,
        bidirectional=model_config.bidirectional,
        dropout=model_config.dropout,
        recurrent_dropout=model_config.recurrent_dropout,
        kernel_initializer=str(model_config.initializer),
        recurrent_initializer=str(model_config.recurrent_initializer),
        **kwargs,
    )


def run_cell(cell, inputs, probe, name, mask=None, initial_state=None, go_backwards=False):
    """Runs a Keras recurrent cell over (batch, time, features) as Keras' RNN layer does in
    inference, adding the perturbation that `probe` gives the layer `name` to the hidden state
    after every step (a zero tensor whose gradient is the gradient through time, see
    `taskzoo.observe.time_gradients`).

    Returns (outputs in reading order (batch, time, units), final states). Masked steps keep the
    previous states and output zeros, as Keras' layer does.
    """
    sequence = ops.transpose(inputs, (1, 0, 2))
    steps, batch = ops.shape(sequence)[0], ops.shape(sequence)[1]
    step_mask = ops.ones((steps, batch), "bool") if mask is None else ops.transpose(ops.cast(mask, "bool"))
    if go_backwards:
        sequence, step_mask = ops.flip(sequence, 0), ops.flip(step_mask, 0)
    units = cell.units
    perturbation = probe.perturbation(name, steps, batch, units, step_mask)
    states = list(initial_state) if initial_state is not None else [
        ops.zeros((batch, units)) for _ in range(len(tf.nest.flatten(cell.state_size)))
    ]

    def body(carry, step):
        previous_states, _ = carry
        step_inputs, real, epsilon = step
        _, new_states = cell(step_inputs, list(previous_states), training=False)
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        # The output of all three Keras cells is their hidden state h, the first state.
        new_states[0] = new_states[0] + epsilon
        real = real[:, None]
        new_states = [ops.where(real, new, old) for new, old in zip(new_states, previous_states)]
        return new_states, ops.where(real, new_states[0], ops.zeros_like(new_states[0]))

    all_states, outputs = tf.scan(
        body, (sequence, step_mask, perturbation), initializer=(states, ops.zeros((batch, units)))
    )
    return ops.transpose(outputs, (1, 0, 2)), [state[-1] for state in all_states]
