"""Image encoders: small convolutional networks trained from scratch (nothing is downloaded).

- `FrameEncoder` maps one image (height, width, channels), uint8 or float, to a feature vector;
  `VideoEncoder` applies it to the real frames of padded videos.
- `ImageEncoder` keeps the spatial grid: an image becomes (locations, features), the memory a
  captioning decoder attends over; `pretrained_backbone` gives the same grid from a Keras
  application (MobileNetV3, EfficientNet, ResNet...) with weights from a local file.
"""

import keras


def convolution_blocks(filters):
    """Blocks of (3x3 convolution, batch normalisation, ReLU) x 2 and 2x2 max pooling, one block
    per entry of `filters`; each block halves the height and the width."""
    layers = []
    for index, width in enumerate(filters):
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{index}a"),
            keras.layers.BatchNormalization(momentum=0.9, name=f"norm_{index}a"),
            keras.layers.ReLU(),
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{index}b"),
            keras.layers.BatchNormalization(momentum=0.9, name=f"norm_{index}b"),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2),
        ]
    return layers


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
        self.blocks = convolution_blocks(self.filters)
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


@keras.saving.register_keras_serializable(package="taskzoo")
class ImageEncoder(keras.layers.Layer):
    """An image (height, width, channels), uint8 or float in [0, 255], to a grid of features
    (batch, locations, features): `convolution_blocks(filters)`, then a dense layer of `features`
    units (ReLU) at every location. A 48 x 48 image with three blocks gives 6 x 6 = 36 locations.
    """

    def __init__(self, filters=(32, 64, 128), features=128, **kwargs):
        super().__init__(**kwargs)
        self.filters = list(filters)
        self.features = features
        self.rescale = keras.layers.Rescaling(1.0 / 255.0)
        self.blocks = convolution_blocks(self.filters)
        self.project = keras.layers.Dense(features, activation="relu", name="project")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.blocks:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.project.build(shape)
        self.built = True

    def call(self, images, training=None):
        outputs = self.rescale(keras.ops.cast(images, self.compute_dtype))
        for layer in self.blocks:
            outputs = layer(outputs, training=training)
        outputs = self.project(outputs)
        # (batch, height, width, features) -> (batch, locations, features)
        shape = keras.ops.shape(outputs)
        return keras.ops.reshape(outputs, (shape[0], shape[1] * shape[2], self.features))

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        scale = 2 ** len(self.filters)
        locations = None if height is None or width is None else (height // scale) * (width // scale)
        return (input_shape[0], locations, self.features)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "features": self.features}


# Keras applications usable as a captioning backbone, by configuration name.
BACKBONES = {
    "mobilenet_v3_small": "MobileNetV3Small",
    "mobilenet_v3_large": "MobileNetV3Large",
    "efficientnet_b0": "EfficientNetB0",
}


def pretrained_backbone(name, image_size, weights_path):
    """A Keras application without its classifier, taking images in [0, 255] (batch, size, size, 3;
    each application rescales inside) and giving its last feature map; `weights_path` is a local
    weights file (nothing is downloaded; None gives random weights, for tests)."""
    import pathlib

    from taskzoo.errors import ConfigError, DataError

    if name not in BACKBONES:
        raise ConfigError(f"Unknown task.encoder {name!r}; expected one of {['small_cnn', *BACKBONES]}.")
    if weights_path is not None and not pathlib.Path(weights_path).is_file():
        raise DataError(f"{weights_path}: no such weights file (task.encoder_weights).")
    application = getattr(keras.applications, BACKBONES[name])
    keyword = {"include_preprocessing": True} if "MobileNetV3" in BACKBONES[name] else {}
    try:
        backbone = application(
            input_shape=(image_size, image_size, 3), include_top=False, weights=None, name=name, **keyword
        )
        if weights_path is not None:
            backbone.load_weights(weights_path)
    except (ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0][:200]
        raise DataError(f"{weights_path}: cannot load {name} weights ({reason}).") from None
    return backbone
