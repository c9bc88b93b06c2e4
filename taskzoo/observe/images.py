"""Pictures for TensorBoard's image tab."""

import io

import numpy as np


def heatmap_png(matrix, row_labels, column_labels, row_title, column_title, vmax=1.0):
    """A PNG of a matrix as a heat map (0 to `vmax`), its rows and columns labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    figure, axes = plt.subplots(
        figsize=(1.5 + 0.35 * len(column_labels), 1.2 + 0.3 * len(row_labels)), dpi=80
    )
    axes.imshow(matrix, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
    axes.set_xticks(range(len(column_labels)), column_labels, rotation=90)
    axes.set_yticks(range(len(row_labels)), row_labels)
    axes.set_xlabel(column_title)
    axes.set_ylabel(row_title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
