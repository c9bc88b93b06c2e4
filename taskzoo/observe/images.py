"""Pictures for TensorBoard's image tab.

The heat maps are drawn with Pillow, matplotlib's viridis colour map and the DejaVu Sans font that
matplotlib ships. Drawing them with matplotlib's axes took 0.6 s for a 60 × 50 matrix (1.2 s for
a 130 × 60 one, the size of an untrained decoder's translations) because every tick label is laid
out several times; a run draws several such pictures at every epoch end, inside its training
time. Pillow draws each label once: 0.05 s and 0.13 s for the same two pictures.
"""

import functools
import io
import pathlib

import numpy as np

# Pixels per cell of a heat map, and the size of its labels.
CELL_PIXELS = 18
FONT_PIXELS = 11
_MARGIN = 6


def colour_cells(shares, cell_height, cell_width, grey=None):
    """An RGB image (uint8) of (rows, columns) shares in [0, 1] on the viridis scale, each entry a
    block of `cell_height` × `cell_width` pixels; the entries where the boolean `grey` is true are
    grey."""
    import matplotlib

    colours = matplotlib.colormaps["viridis"](shares, bytes=True)[..., :3]
    if grey is not None:
        colours[grey] = 128
    return np.repeat(np.repeat(colours, cell_height, axis=0), cell_width, axis=1)


@functools.lru_cache(maxsize=None)
def _font():
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"),
                              FONT_PIXELS)


def _label_column(labels, font):
    """An image of the labels, one per cell-high row, aligned right."""
    from PIL import Image, ImageDraw

    width = max([int(font.getlength(label)) for label in labels] + [0]) + _MARGIN
    image = Image.new("RGB", (width, CELL_PIXELS * len(labels)), "white")
    draw = ImageDraw.Draw(image)
    for index, label in enumerate(labels):
        draw.text((width - _MARGIN // 2, (index + 0.5) * CELL_PIXELS), label, fill="black", font=font, anchor="rm")
    return image


def _title(text, length, font):
    """An image of a title centred along `length` pixels (more if the title needs them), one cell
    high."""
    from PIL import Image, ImageDraw

    length = max(length, int(font.getlength(text)) + _MARGIN)
    image = Image.new("RGB", (length, CELL_PIXELS), "white")
    ImageDraw.Draw(image).text((length // 2, CELL_PIXELS // 2), text, fill="black", font=font, anchor="mm")
    return image


def heatmap_png(matrix, row_labels, column_labels, row_title, column_title, vmax=1.0):
    """A PNG of a matrix as a heat map (0 to `vmax`, viridis), one cell per entry: the row labels
    on the left with `row_title` beside them, the column labels below, written upwards, with
    `column_title` under them."""
    from PIL import Image

    font = _font()
    shares = np.clip(np.asarray(matrix, dtype=np.float64) / vmax, 0.0, 1.0)
    grid = Image.fromarray(colour_cells(shares, CELL_PIXELS, CELL_PIXELS))
    rows = _label_column(list(row_labels), font)
    # Rotated a quarter turn anticlockwise, the right-aligned labels end next to the grid.
    columns = _label_column(list(column_labels), font).rotate(90, expand=True)
    row_title = _title(row_title, grid.height, font).rotate(90, expand=True)
    column_title = _title(column_title, grid.width, font)
    left, top = CELL_PIXELS + rows.width, _MARGIN
    width = left + max(grid.width, column_title.width) + _MARGIN
    height = top + max(grid.height + columns.height + CELL_PIXELS, row_title.height)
    picture = Image.new("RGB", (width, height), "white")
    picture.paste(grid, (left, top))
    picture.paste(rows, (CELL_PIXELS, top))
    picture.paste(columns, (left, top + grid.height))
    picture.paste(row_title, (0, top))
    picture.paste(column_title, (left, top + grid.height + columns.height))
    buffer = io.BytesIO()
    picture.save(buffer, format="png")
    return buffer.getvalue()
