"""Image encoders: a small convolutional network applied to every frame of a video.

`FrameEncoder` maps one image (height, width, channels), uint8 or float, to a feature vector. Wrapped
in `keras.layers.TimeDistributed` it encodes a whole video (batch, time, height, width, channels)
into (batch, time, features), the input of the shared recurrent stack. It is trained from scratch:
nothing is downloaded.
"""

import keras


@keras.saving.register_keras_serializable(package="taskzoo")
class FrameEncoder(keras.layers.Layer):
    """Blocks of (3x3 convolution, batch normalisation, ReLU) x 2 and 2x2 max pooling, one block per
    entry of `filters`, then a global average and a dense layer of `features` units.

    Pixels are scaled from [0, 255] to [0, 1] first, so uint8 frames go in as they are decoded.
    """

    def __init__(self, filters=(16, 32, 64), features=64, **kwargs):
        super().__init__(**kwargs)
        self.filters = list(filters)
        self.features = features
        self.rescale = keras.layers.Rescaling(1.0 / 255.0)
        self.blocks = []
        for index, width in enumerate(self.filters):
            self.blocks += [
                keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{index}a"),
                keras.layers.BatchNormalization(momentum=0.9, name=f"norm_{index}a"),
                keras.layers.ReLU(),
                keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{index}b"),
                keras.layers.BatchNormalization(momentum=0.9, name=f"norm_{index}b"),
                keras.layers.ReLU(),
                keras.layers.MaxPooling2D(2),
            ]
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.project = keras.layers.Dense(features, activation="relu", name="project")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.blocks:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.project.build((shape[0], shape[-1]))
        self.built = True

    def call(self, images, training=None):
        outputs = self.rescale(keras.ops.cast(images, self.compute_dtype))
        for layer in self.blocks:
            outputs = layer(outputs, training=training)
        return self.project(self.pool(outputs))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.features)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, features=self.features)
        return config


@keras.saving.register_keras_serializable(package="taskzoo")
class VideoEncoder(keras.layers.Layer):
    """Encodes the real frames of padded videos with a `FrameEncoder`.

    Call arguments:
        frames: (batch, time, height, width, channels).
        real_frames: boolean (batch, time), true on real frames and false on padding.

    Returns (batch, time, features), zeros on padded frames. Only real frames go through the
    network, so padding neither costs computation nor enters the batch normalisation statistics.
    """

    def __init__(self, filters=(16, 32, 64), features=64, **kwargs):
        super().__init__(**kwargs)
        self.filters = list(filters)
        self.features = features
        self.encoder = FrameEncoder(filters, features, name="frame_encoder")

    def build(self, frames_shape, real_frames_shape=None):
        self.encoder.build((None, *tuple(frames_shape)[2:]))
        self.built = True

    def call(self, frames, real_frames, training=None):
        import tensorflow as tf

        indices = tf.where(real_frames)
        encoded = self.encoder(tf.gather_nd(frames, indices), training=training)
        shape = tf.shape(real_frames, out_type=tf.int64)
        return tf.scatter_nd(indices, encoded, tf.stack([shape[0], shape[1], self.features]))

    def compute_output_shape(self, frames_shape, real_frames_shape=None):
        return (frames_shape[0], frames_shape[1], self.features)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, features=self.features)
        return config
