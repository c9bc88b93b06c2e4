"""Videos of real handwritten digits moving over a canvas, with a motion label for every frame.

Each video shows one digit from scikit-learn's bundled handwritten digits (8 x 8 scans, scaled up
to half the canvas). The digit enters from a random edge, then makes two to five moves (left, right,
up, down) or pauses, each lasting several frames, and finally leaves through the nearest edge (it
moves towards it, then is labelled `leave` from the frame where it crosses it). Every frame is
labelled with the motion that brought the digit to where it is in that frame:

    enter, left, right, up, down, pause, leave

No single frame tells its label: a digit fully inside the canvas looks the same whether it moved
left, moved up or stayed put, and a digit cut by an edge looks the same entering and leaving. A
per-frame classifier can only guess among the labels that a position allows; a recurrent model
that compares a frame with the frames before it can read the motion. Speeds (1 to 3 pixels per
frame), segment lengths, the digit and pixel noise vary, so the model has to learn motion, not a
fixed timetable. Everything is deterministic given the seed.
"""

import numpy as np

CLASS_NAMES = ["enter", "left", "right", "up", "down", "pause", "leave"]
ENTER, LEFT, RIGHT, UP, DOWN, PAUSE, LEAVE = range(len(CLASS_NAMES))
# (row, column) displacement of one pixel of motion in each direction.
DIRECTIONS = {LEFT: (0, -1), RIGHT: (0, 1), UP: (-1, 0), DOWN: (1, 0)}


def digit_images(size):
    """Scikit-learn's handwritten digits scaled to size x size pixels in [0, 1]; and their classes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    scale = max(1, size // 8)
    images = np.kron(images, np.ones((scale, scale), dtype=np.float32))
    return images, digits.target


def _paste(canvas, image, top, left):
    """Adds `image` onto `canvas` with its top-left corner at (top, left), clipped to the canvas."""
    height, width = canvas.shape
    size = image.shape[0]
    rows = slice(max(top, 0), min(top + size, height))
    columns = slice(max(left, 0), min(left + size, width))
    if rows.start >= rows.stop or columns.start >= columns.stop:
        return
    canvas[rows, columns] = np.maximum(
        canvas[rows, columns],
        image[rows.start - top:rows.stop - top, columns.start - left:columns.stop - left],
    )


def _path(rng, canvas_size, digit_size, max_frames):
    """Returns the digit's (top, left) position and label for every frame of one video."""
    inside = canvas_size - digit_size
    speed = int(rng.integers(1, 4))
    edge = int(rng.integers(4))
    # Enter: start with 2 to (digit_size - 2) pixels visible at one edge, move inwards.
    visible = int(rng.integers(2, digit_size - 1))
    along = int(rng.integers(0, inside + 1))
    start, inward = {
        0: ((along, visible - digit_size), (0, 1)),            # from the left edge
        1: ((along, canvas_size - visible), (0, -1)),          # from the right edge
        2: ((visible - digit_size, along), (1, 0)),            # from the top edge
        3: ((canvas_size - visible, along), (-1, 0)),          # from the bottom edge
    }[edge]
    position = np.array(start)
    positions, labels = [position.copy()], [ENTER]
    while not (0 <= position[0] <= inside and 0 <= position[1] <= inside):
        position = position + speed * np.array(inward)
        positions.append(position.copy())
        labels.append(ENTER)

    # Moves and pauses, each several frames long, staying fully inside the canvas.
    for _ in range(int(rng.integers(2, 6))):
        length = int(rng.integers(3, 9))
        room = {LEFT: position[1], RIGHT: inside - position[1], UP: position[0], DOWN: inside - position[0]}
        moves = [label for label, pixels in room.items() if pixels // speed >= 3]
        # A pause one time in five, else a move that has room for three steps or more.
        if not moves or rng.random() < 0.2:
            label = PAUSE
        else:
            label = moves[int(rng.integers(len(moves)))]
            length = min(length, room[label] // speed)
        step = np.array(DIRECTIONS.get(label, (0, 0))) * speed
        for _ in range(length):
            position = position + step
            positions.append(position.copy())
            labels.append(label)

    # Leave through the nearest edge until the digit is gone.
    distances = {LEFT: position[1], RIGHT: inside - position[1], UP: position[0], DOWN: inside - position[0]}
    direction = min(distances, key=distances.get)
    step = np.array(DIRECTIONS[direction]) * speed
    while -digit_size < position[0] < canvas_size and -digit_size < position[1] < canvas_size:
        position = position + step
        positions.append(position.copy())
        # Leaving starts when the digit reaches the edge; before that it is an ordinary move.
        fully_inside = 0 <= position[0] <= inside and 0 <= position[1] <= inside
        labels.append(direction if fully_inside else LEAVE)
    return positions[:max_frames], labels[:max_frames]


def generate_videos(num_videos, frame_size=32, max_frames=64, noise=0.05, seed=0):
    """Returns a list of (frames, labels): uint8 (time, frame_size, frame_size, 1) and int32 (time,)."""
    images, _ = digit_images(frame_size // 2)
    digit_size = images.shape[1]
    rng = np.random.default_rng(seed)
    videos = []
    for _ in range(num_videos):
        image = images[int(rng.integers(len(images)))]
        positions, labels = _path(rng, frame_size, digit_size, max_frames)
        frames = np.zeros((len(positions), frame_size, frame_size), dtype=np.float32)
        for frame, (top, left) in zip(frames, positions):
            _paste(frame, image, int(top), int(left))
        frames += rng.normal(0.0, noise, frames.shape).astype(np.float32)
        frames = np.clip(frames * 255.0, 0, 255).astype(np.uint8)[..., None]
        videos.append((frames, np.asarray(labels, dtype=np.int32)))
    return videos
