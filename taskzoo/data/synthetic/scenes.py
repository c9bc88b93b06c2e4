"""Captioned scenes: real handwritten digits and simple shapes on a small canvas.

Each image holds one or two objects. An object is a handwritten digit from scikit-learn's bundled
set (drawn in a colour) or a filled shape (square, circle, triangle), in one of four colours and
two sizes, at a random place. The captions are generated from the scene:

    one object:                "a small red seven", "a red seven"
    two objects:               "a large blue circle left of a small green two",
                               "a small green two right of a large blue circle"
    two objects, alike:        "two red squares", "two red squares side by side" (or "one above
                               the other")

Several correct reference captions are given per image (the two orders of a relation, with and
without the size of a single object), as in the public caption datasets. Captioning such a scene
needs the colour, size and identity of each object and where the objects are relative to each
other; a decoder that attends over the image's spatial grid can look at one object per phrase,
which a single pooled feature vector makes hard. Everything is deterministic given the seed.
"""

import functools

import numpy as np

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 240), "yellow": (240, 220, 40)}
SHAPES = ("square", "circle", "triangle")
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Object sizes as fractions of the canvas: 12 and 20 pixels on the default 48 x 48 canvas.
SIZES = {"small": 0.25, "large": 5 / 12}


def _pixels(size, canvas_size):
    return max(3, int(round(SIZES[size] * canvas_size)))
RELATIONS = {"left": ("left of", "right of"), "above": ("above", "below")}


@functools.lru_cache(maxsize=4)
def _digits(size):
    """Scikit-learn's handwritten digits resized to size x size, in [0, 1], with their classes."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [
        np.asarray(Image.fromarray((image * 255 / 16).astype(np.uint8)).resize((size, size), Image.BILINEAR))
        for image in digits.images
    ]
    return np.stack(images).astype(np.float32) / 255.0, digits.target


def _shape_mask(shape, size):
    rows, columns = np.mgrid[0:size, 0:size] + 0.5
    if shape == "square":
        return np.ones((size, size), np.float32)
    if shape == "circle":
        centre = size / 2
        return (((rows - centre) ** 2 + (columns - centre) ** 2) <= centre**2).astype(np.float32)
    # An upward triangle: its width grows from the top row to the bottom row.
    half_width = rows / size * size / 2
    return (np.abs(columns - size / 2) <= half_width).astype(np.float32)


def _draw_object(rng):
    """A random object: its name, colour, size and, for a digit, which scan."""
    _, targets = _digits(20)
    colour = str(rng.choice(list(COLOURS)))
    size = str(rng.choice(list(SIZES)))
    if rng.random() < 0.5:
        index = int(rng.integers(len(targets)))
        return {"name": DIGIT_NAMES[targets[index]], "colour": colour, "size": size, "digit": index}
    return {"name": str(rng.choice(SHAPES)), "colour": colour, "size": size, "digit": None}


def _mask(item, canvas_size):
    pixels = _pixels(item["size"], canvas_size)
    if item["digit"] is None:
        return _shape_mask(item["name"], pixels)
    from PIL import Image

    digits, _ = _digits(20)
    image = Image.fromarray((digits[item["digit"]] * 255).astype(np.uint8)).resize((pixels, pixels), Image.BILINEAR)
    return np.asarray(image, np.float32) / 255.0


def _phrase(item, with_size=True):
    words = ["a"] + ([item["size"]] if with_size else []) + [item["colour"], item["name"]]
    return " ".join(words)


def _plural(name):
    return name + ("es" if name.endswith("x") else "s")


def _place(rng, canvas_size, masks):
    """Top-left corners for the masks, not overlapping (with a 2-pixel gap); two large objects
    always fit side by side or one above the other."""
    while True:
        corners = [
            (int(rng.integers(0, canvas_size - mask.shape[0] + 1)), int(rng.integers(0, canvas_size - mask.shape[1] + 1)))
            for mask in masks
        ]
        if len(masks) == 1:
            return corners
        (top_a, left_a), (top_b, left_b) = corners
        size_a, size_b = masks[0].shape[0], masks[1].shape[0]
        apart_rows = top_a + size_a + 2 <= top_b or top_b + size_b + 2 <= top_a
        apart_columns = left_a + size_a + 2 <= left_b or left_b + size_b + 2 <= left_a
        if apart_rows or apart_columns:
            return corners


def generate_scene(rng, canvas_size=48):
    """One scene: (uint8 image (canvas_size, canvas_size, 3), list of reference captions)."""
    count = 1 if rng.random() < 0.3 else 2
    items = [_draw_object(rng) for _ in range(count)]
    if count == 2 and rng.random() < 0.25:
        # Two alike objects (same name and colour), for counting.
        items[1] = dict(items[0], size=items[1]["size"], digit=items[0]["digit"])
    masks = [_mask(item, canvas_size) for item in items]
    corners = _place(rng, canvas_size, masks)

    image = np.zeros((canvas_size, canvas_size, 3), np.float32)
    for item, mask, (top, left) in zip(items, masks, corners):
        colour = np.asarray(COLOURS[item["colour"]], np.float32) / 255.0
        region = image[top : top + mask.shape[0], left : left + mask.shape[1]]
        region[:] = np.maximum(region, mask[..., None] * colour)
    image += rng.normal(0, 0.03, image.shape)
    image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)

    if count == 1:
        return image, [_phrase(items[0]), _phrase(items[0], with_size=False)]
    centres = [(top + mask.shape[0] / 2, left + mask.shape[1] / 2) for mask, (top, left) in zip(masks, corners)]
    vertical = centres[1][0] - centres[0][0]
    horizontal = centres[1][1] - centres[0][1]
    if abs(horizontal) >= abs(vertical):
        relation, first_is_before = RELATIONS["left"], horizontal > 0
        arrangement = "side by side"
    else:
        relation, first_is_before = RELATIONS["above"], vertical > 0
        arrangement = "one above the other"
    first, second = (items[0], items[1]) if first_is_before else (items[1], items[0])
    if first["name"] == second["name"] and first["colour"] == second["colour"]:
        plural = f"two {first['colour']} {_plural(first['name'])}"
        return image, [f"{plural} {arrangement}", plural]
    return image, [
        f"{_phrase(first)} {relation[0]} {_phrase(second)}",
        f"{_phrase(second)} {relation[1]} {_phrase(first)}",
    ]


def generate_scenes(sizes, seed, canvas_size=48):
    """Returns one (images (count, canvas_size, canvas_size, 3) uint8, captions) tuple per entry of
    `sizes`, deterministically by seed; `captions` holds a list of references per image."""
    rng = np.random.default_rng([seed, 31])
    splits = []
    for size in sizes:
        scenes = [generate_scene(rng, canvas_size) for _ in range(size)]
        splits.append((np.stack([image for image, _ in scenes]), [captions for _, captions in scenes]))
    return splits
