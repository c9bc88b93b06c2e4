"""The heat maps of TensorBoard's image tab (attention weights, confusion matrices)."""

import io

import matplotlib
import numpy as np
from PIL import Image

from taskzoo.observe.images import CELL_PIXELS, heatmap_png


def decoded(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def grid_origin(picture):
    """The top-left pixel of the grid, the first coloured (not grey) pixel."""
    coloured = ~np.all(picture == 255, axis=-1) & (picture.std(axis=-1) > 20)
    rows, columns = np.nonzero(coloured)
    return rows.min(), columns[rows == rows.min()].min()


def test_every_cell_has_the_colour_of_its_value_and_labels_are_drawn():
    matrix = np.array([[0.0, 0.5, 1.0], [0.25, 0.75, 2.0]])
    png = heatmap_png(matrix, ["le", "chat"], ["the", "cat", "sat"], "translation", "source")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    picture = decoded(png)
    top, left = grid_origin(picture)
    expected = matplotlib.colormaps["viridis"](np.clip(matrix, 0.0, 1.0), bytes=True)[..., :3]
    for row in range(2):
        for column in range(3):
            centre = picture[top + row * CELL_PIXELS + CELL_PIXELS // 2, left + column * CELL_PIXELS + CELL_PIXELS // 2]
            np.testing.assert_array_equal(centre, expected[row, column])
    # The row labels stand left of the grid and the column labels below it: dark pixels there.
    assert (picture[top : top + 2 * CELL_PIXELS, :left] < 100).any()
    assert (picture[top + 2 * CELL_PIXELS :, left : left + 3 * CELL_PIXELS] < 100).any()


def test_the_picture_grows_with_the_matrix_and_its_labels():
    small = decoded(heatmap_png(np.zeros((2, 3)), ["a", "b"], ["c", "d", "e"], "rows", "columns"))
    more_rows = decoded(heatmap_png(np.zeros((5, 3)), list("abcde"), ["c", "d", "e"], "rows", "columns"))
    long_labels = decoded(heatmap_png(np.zeros((2, 3)), ["a", "quatre-vingt-dix-sept"], ["c", "d", "e"], "rows", "columns"))
    assert more_rows.shape[0] - small.shape[0] == 3 * CELL_PIXELS
    assert more_rows.shape[1] == small.shape[1]
    assert long_labels.shape[1] > small.shape[1] + 50
