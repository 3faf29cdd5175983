"""What prepared 28x28 digits look like, in a few numbers per image that a person can read: when they change, the
test says which."""

import numpy as np

INK_LEVEL = 128  # a pixel at or above it is ink, for the box, the area and the outline
STATISTICS = ["ink", "center row", "center column", "box height", "box width", "stroke width"]


def digit_statistics(images: np.ndarray) -> np.ndarray:
    """(n, len(STATISTICS)) float32 for uint8 images (n, 28, 28): ink (mean pixel, 0-1), center of mass (row,
    column), bounding box of the ink (height, width) and stroke width (2 area / outline, in pixels)."""
    pixels = images.astype(np.float32) / 255
    mass = pixels.sum(axis=(1, 2))
    safe_mass = np.where(mass > 0, mass, 1)
    rows = np.arange(images.shape[1], dtype=np.float32)
    columns = np.arange(images.shape[2], dtype=np.float32)
    center_row = (pixels.sum(axis=2) @ rows) / safe_mass
    center_column = (pixels.sum(axis=1) @ columns) / safe_mass
    ink = images >= INK_LEVEL
    return np.stack(
        [
            pixels.mean(axis=(1, 2)),
            center_row,
            center_column,
            _extent(ink.any(axis=2)),
            _extent(ink.any(axis=1)),
            _stroke_width(ink),
        ],
        axis=1,
    ).astype(np.float32)


def _extent(occupied: np.ndarray) -> np.ndarray:
    """Rows (or columns) from the first occupied to the last, 0 when none is."""
    any_occupied = occupied.any(axis=1)
    first = occupied.argmax(axis=1)
    last = occupied.shape[1] - 1 - occupied[:, ::-1].argmax(axis=1)
    return np.where(any_occupied, last - first + 1, 0)


def _stroke_width(ink: np.ndarray) -> np.ndarray:
    """A stroke of length L and width w has area L w and an outline of about 2 L: w = 2 area / outline."""
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    outline = (padded[:, 1:, :] != padded[:, :-1, :]).sum(axis=(1, 2)) + (padded[:, :, 1:] != padded[:, :, :-1]).sum(
        axis=(1, 2)
    )
    area = ink.sum(axis=(1, 2))
    return np.where(outline > 0, 2 * area / np.maximum(outline, 1), 0)
