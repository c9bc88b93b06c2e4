"""The recurrent decoder shared by translation and captioning, and the bridge that starts it.

The decoder writes a sequence one token at a time. At each step it embeds the previous token,
attends over a memory (the encoder's outputs, or the grid of CNN features of an image) with the
top layer's previous hidden state as the query, feeds the embedding and the attention context
into a stack of recurrent cells, and predicts the next token from the top hidden state and the
context (Bahdanau et al., 2015). Without attention the context is left out.

Training uses teacher forcing: the previous token is the reference one. `call` runs the same
`advance` function as one-step inference, scanned over time, so the two compute the same thing
by construction. With scheduled sampling (Bengio et al., 2015) each step instead feeds, with a
probability set by a callback during training, a token sampled from the decoder's own
prediction at the previous step.
"""

import keras
import tensorflow as tf
from keras import ops

from taskzoo import choices
from taskzoo.blocks.attention import ATTENTION_LAYERS
from taskzoo.blocks.decoding import sampled_tokens

CELLS = choices.registry(
    choices.CELLS, rnn=keras.layers.SimpleRNNCell, lstm=keras.layers.LSTMCell, gru=keras.layers.GRUCell
)

# The attentions a decoder accepts: the user's choices and the "mean" that captioning uses.
ATTENTION_KINDS = ("none", *ATTENTION_LAYERS)


def state_size(cell):
    """The number of state tensors a cell carries: 2 for an LSTM (h and c), else 1."""
    return 2 if cell == "lstm" else 1


@keras.saving.register_keras_serializable(package="taskzoo")
class StateBridge(keras.layers.Layer):
    """Maps the final states of an encoder's layers to the initial states of a decoder's layers.

    Encoder layer i starts decoder layer i. A bidirectional encoder's forward and backward states
    are concatenated; whenever the result's size differs from the decoder's `units`, a dense
    layer maps it (tanh for hidden states; linear for an LSTM's cell state, which is unbounded).

    Args:
        cell: the cell of both the encoder and the decoder ("rnn", "lstm" or "gru").
        units: the decoder's units.
        bidirectional: whether the encoder is bidirectional.

    Call arguments:
        encoder_states: a list with one entry per layer, each the list of that layer's final state
            tensors as `RecurrentStack(return_state=True)` returns them.
    """

    def __init__(self, cell, units, bidirectional=False, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.units = units
        self.bidirectional = bidirectional
        self.projections = {}

    def build(self, encoder_states_shape):
        per_direction = state_size(self.cell)
        for layer_index, layer_shapes in enumerate(encoder_states_shape):
            for component in range(per_direction):
                size = layer_shapes[component][-1] * (2 if self.bidirectional else 1)
                if size != self.units or self.bidirectional:
                    name = f"layer_{layer_index}_state_{component}"
                    projection = keras.layers.Dense(
                        self.units, activation="tanh" if component == 0 else None, name=name
                    )
                    projection.build((None, size))
                    self.projections[name] = projection

    def call(self, encoder_states):
        per_direction = state_size(self.cell)
        decoder_states = []
        for layer_index, states in enumerate(encoder_states):
            layer_states = []
            for component in range(per_direction):
                state = states[component]
                if self.bidirectional:
                    # (batch, units) forward and backward -> (batch, 2 * units)
                    state = ops.concatenate([state, states[per_direction + component]], axis=-1)
                name = f"layer_{layer_index}_state_{component}"
                if name in self.projections:
                    state = self.projections[name](state)
                layer_states.append(state)
            decoder_states.append(layer_states)
        return decoder_states

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units, "bidirectional": self.bidirectional}


@keras.saving.register_keras_serializable(package="taskzoo")
class VectorBridge(keras.layers.Layer):
    """Maps one feature vector (an image's pooled CNN features) to the initial states of every
    decoder layer: a dense layer per layer and state (tanh for hidden states, linear for an
    LSTM's cell state), as in Show, Attend and Tell.

    Call arguments:
        features: (batch, features).
    """

    def __init__(self, cell, units, num_layers, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.projections = [
            [
                keras.layers.Dense(units, activation="tanh" if component == 0 else None,
                                   name=f"layer_{layer_index}_state_{component}")
                for component in range(state_size(cell))
            ]
            for layer_index in range(num_layers)
        ]

    def build(self, features_shape):
        for layer_projections in self.projections:
            for projection in layer_projections:
                projection.build(features_shape)

    def call(self, features):
        return [[projection(features) for projection in layer_projections] for layer_projections in self.projections]

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units, "num_layers": self.num_layers}


@keras.saving.register_keras_serializable(package="taskzoo")
class RecurrentDecoder(keras.layers.Layer):
    """A recurrent decoder with optional attention over a memory.

    Args:
        vocabulary_size: size of the output vocabulary (index 0 is padding).
        cell: "rnn", "lstm" or "gru".
        units: hidden units of each layer.
        num_layers: number of stacked cells.
        embedding_dim: size of the token embeddings.
        attention: "none", "additive" (Bahdanau), "multiplicative" (Luong), or "mean" (the
            memory's mean at every step, without learned weights).
        attention_units: hidden size of additive attention's scoring network (default: units).
        dropout: dropout on the token embeddings and on the features before the output layer.
        scheduled_sampling: whether training may feed the decoder's own samples (with the
            probability held in `sampling_probability`, which a callback sets).
        kernel_initializer, recurrent_initializer: initialisers of the cells' kernels.

    Call arguments (teacher forcing):
        target_input: (batch, time) the reference tokens shifted right (start token first).
        memory: (batch, positions, features) what the attention reads.
        memory_mask: (batch, positions) true at real positions.
        initial_state: one list of state tensors per layer.
        training: whether dropout and scheduled sampling are active.

    Returns the logits (batch, time, vocabulary_size).
    """

    def __init__(
        self,
        vocabulary_size,
        cell="gru",
        units=128,
        num_layers=1,
        embedding_dim=64,
        attention="additive",
        attention_units=None,
        dropout=0.0,
        scheduled_sampling=False,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"Unknown cell {cell!r}; expected {choices.expected(choices.CELLS)}.")
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"Unknown attention {attention!r}; expected {choices.expected(ATTENTION_KINDS)}.")
        if num_layers < 1:
            raise ValueError(f"A decoder needs num_layers of 1 or more; received {num_layers}.")
        self.vocabulary_size = vocabulary_size
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.embedding_dim = embedding_dim
        self.attention_kind = attention
        self.attention_units = attention_units
        self.dropout = dropout
        self.scheduled_sampling = scheduled_sampling
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer

        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.cells = [
            CELLS[cell](
                units,
                kernel_initializer=kernel_initializer,
                recurrent_initializer=recurrent_initializer,
                name=f"{cell}_cell_{index}",
            )
            for index in range(num_layers)
        ]
        self.attention = None
        if attention != "none":
            self.attention = ATTENTION_LAYERS[attention](
                attention_units or units if attention == "additive" else units, name="attention"
            )
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.feature_dropout = keras.layers.Dropout(dropout)
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection")
        # The draws of scheduled sampling. Its state is a variable, so a resumed run (see
        # `taskzoo.resilience`) continues the same draws.
        self.seed_generator = keras.random.SeedGenerator(name="sampling_seed_generator")
        # Set by `taskzoo.observe.time_gradients.probing` while it measures the gradient through
        # time: every step then perturbs the cells' hidden states.
        self.time_gradient_probe = None

    def build(self, target_input_shape, memory_shape, memory_mask_shape=None, initial_state_shape=None):
        self.embedding.build(target_input_shape)
        memory_features = memory_shape[-1] if self.attention is not None else 0
        # The size of the memory's features is known only once the decoder is called.
        self.memory_features = memory_features
        input_size = self.embedding_dim + memory_features
        for cell in self.cells:
            cell.build((None, input_size))
            input_size = self.units
        if self.attention is not None:
            self.attention.build((None, self.units), memory_shape)
        self.output_projection.build((None, self.units + memory_features))
        # The probability of feeding the decoder's own sample instead of the reference token;
        # set during training by the ScheduledSampling callback, zero otherwise.
        self.sampling_probability = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="sampling_probability"
        )

    # One step, shared by training and inference.

    def prepare_memory(self, memory):
        """What every step reuses: the attention's projection of the memory (None without it)."""
        return None if self.attention is None else self.attention.project_memory(memory)

    def advance(self, embedded, states, memory, projected_memory, memory_mask, perturbations=None):
        """One decoder step from an embedded token.

        `perturbations`, one (batch, units) tensor per layer, are added to the layers' new hidden
        states; the time-gradient probe uses them (see `time_gradient_probe`).

        Returns (features (batch, units [+ memory features]), new states, attention weights
        (batch, positions), or None without attention).
        """
        weights = None
        inputs = embedded
        if self.attention is not None:
            # The query is the top layer's hidden state from the previous step.
            context, weights = self.attention(
                states[-1][0], memory, projected_memory=projected_memory, memory_mask=memory_mask
            )
            inputs = ops.concatenate([embedded, context], axis=-1)
        new_states = []
        for index, (cell, layer_states) in enumerate(zip(self.cells, states)):
            inputs, layer_new_states = cell(inputs, list(layer_states))
            layer_new_states = (
                list(layer_new_states) if isinstance(layer_new_states, (list, tuple)) else [layer_new_states]
            )
            if perturbations is not None:
                # The output of every Keras cell is its hidden state h, the first state.
                inputs = layer_new_states[0] = layer_new_states[0] + perturbations[index]
            new_states.append(layer_new_states)
        features = inputs if self.attention is None else ops.concatenate([inputs, context], axis=-1)
        return features, new_states, weights

    def step(self, tokens, states, memory, projected_memory, memory_mask):
        """Inference step: (batch,) previous tokens -> (logits (batch, vocabulary), states, weights)."""
        features, states, weights = self.advance(
            self.embedding(tokens), states, memory, projected_memory, memory_mask
        )
        return self.output_projection(features), states, weights

    # Teacher forcing over a whole sequence.

    def call(self, target_input, memory, memory_mask=None, initial_state=None, training=None):
        logits, _ = self.teacher_forced(target_input, memory, memory_mask, initial_state, training)
        return logits

    def teacher_forced(self, target_input, memory, memory_mask, initial_state, training=None):
        """Returns (logits (batch, time, vocabulary), attention weights (batch, time, positions)
        or None)."""
        projected_memory = self.prepare_memory(memory)
        # (batch, time, embedding_dim) -> time-major (time, batch, embedding_dim) for the scan.
        embedded = self.embedding_dropout(self.embedding(target_input), training=training)
        embedded = ops.transpose(embedded, (1, 0, 2))
        sampling = bool(training) and self.scheduled_sampling
        initial_state = [list(layer_states) for layer_states in initial_state]
        sequence, carry = self._scan_inputs(embedded, memory, initial_state, sampling)

        def body(carry, step_inputs):
            states, _, previous_weights = carry[:3]
            perturbations = None
            if sampling:
                teacher_embedded, (own, draw) = step_inputs
                step_embedded = ops.where(own[:, None], carry[3], teacher_embedded)
            elif isinstance(step_inputs, tuple):
                step_embedded, perturbations = step_inputs
            else:
                step_embedded = step_inputs
            features, states, weights = self.advance(
                step_embedded, states, memory, projected_memory, memory_mask, perturbations
            )
            if weights is None:
                weights = previous_weights
            if not sampling:
                return states, features, weights
            # The decoder's own guess for the next step, sampled from its prediction; no gradient
            # flows through the choice.
            sampled = sampled_tokens(ops.stop_gradient(self.output_projection(features)), 1.0, 0, draw)
            return states, features, weights, self.embedding(sampled)

        outputs = tf.scan(body, sequence, initializer=carry)
        # (time, batch, features) -> (batch, time, features)
        features = ops.transpose(outputs[1], (1, 0, 2))
        features = self.feature_dropout(features, training=training)
        logits = self.output_projection(features)
        weights = None if self.attention is None else ops.transpose(outputs[2], (1, 0, 2))
        return logits, weights

    def _scan_inputs(self, embedded, memory, initial_state, sampling):
        """The sequence the teacher-forced scan reads and its first carry: the embedded reference
        tokens (time, batch, embedding_dim), with scheduled sampling's draws or the time-gradient
        probe's perturbations beside them when either is active."""
        batch = ops.shape(embedded)[1]
        feature_size = self.units + self.memory_features
        positions = 1 if self.attention is None else ops.shape(memory)[1]
        # tf.scan stacks its whole carry over time; the features and the attention weights of
        # each step are part of it.
        carry = (initial_state, ops.zeros((batch, feature_size)), ops.zeros((batch, positions)))
        if sampling:
            # Whether each step feeds the model's own sample (never at the first step).
            steps = ops.shape(embedded)[0]
            # (time, batch, 2): whether to feed the own sample, and the draw that samples it.
            draws = keras.random.uniform((steps, batch, 2), seed=self.seed_generator)
            use_own = draws[..., 0] < self.sampling_probability
            use_own = ops.concatenate([ops.zeros((1, batch), "bool"), use_own[1:]], axis=0)
            sequence = (embedded, (use_own, draws[..., 1]))
            carry = (*carry, ops.zeros_like(embedded[0]))
        elif self.time_gradient_probe is not None:
            # Zero perturbations of every layer's hidden state, for the time-gradient probe.
            steps = ops.shape(embedded)[0]
            sequence = (embedded, [
                self.time_gradient_probe.perturbation(f"{self.name}/{cell.name}", steps, batch, self.units)
                for cell in self.cells
            ])
        else:
            sequence = embedded
        return sequence, carry

    def compute_output_spec(self, target_input, memory, memory_mask=None, initial_state=None, training=None):
        return keras.KerasTensor(tuple(target_input.shape) + (self.vocabulary_size,), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            embedding_dim=self.embedding_dim,
            attention=self.attention_kind,
            attention_units=self.attention_units,
            dropout=self.dropout,
            scheduled_sampling=self.scheduled_sampling,
            kernel_initializer=self.kernel_initializer,
            recurrent_initializer=self.recurrent_initializer,
        )
        return config
