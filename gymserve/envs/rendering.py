"""Drawing filled shapes into numpy RGB frames.

`rgb_array` rendering of the 2-D environments needs no window system and no pygame: a frame is
an `(height, width, 3)` uint8 array and shapes are filled by testing pixel centres, which is
fast enough for the few shapes of a cart-pole scene. Coordinates are `(column, row)` in pixels,
row 0 at the top.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Color = tuple[int, int, int]


def blank_frame(height: int, width: int, color: Color = (255, 255, 255)) -> np.ndarray:
    """A `(height, width, 3)` uint8 frame filled with `color`."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[...] = color
    return frame


def _pixel_centres(frame: np.ndarray, low: np.ndarray, high: np.ndarray):
    """Column and row slices covering `[low, high]` clipped to the frame, and their pixel centres."""
    height, width = frame.shape[:2]
    column_start, row_start = np.maximum(np.floor(low).astype(int), 0)
    column_stop = min(int(np.ceil(high[0])) + 1, width)
    row_stop = min(int(np.ceil(high[1])) + 1, height)
    columns = np.arange(column_start, column_stop) + 0.5
    rows = np.arange(row_start, row_stop)[:, None] + 0.5
    return (slice(row_start, row_stop), slice(column_start, column_stop)), columns, rows


def fill_convex_polygon(frame: np.ndarray, vertices: Sequence[Sequence[float]], color: Color) -> None:
    """Paint the pixels whose centres lie inside the convex polygon `vertices` (either winding)."""
    corners = np.asarray(vertices, dtype=np.float64)
    region, columns, rows = _pixel_centres(frame, corners.min(axis=0), corners.max(axis=0))
    if columns.size == 0 or rows.size == 0:
        return
    inside_left = np.ones((rows.size, columns.size), dtype=bool)
    inside_right = np.ones_like(inside_left)
    for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        side = (x1 - x0) * (rows - y0) - (y1 - y0) * (columns - x0)
        inside_left &= side >= 0
        inside_right &= side <= 0
    frame[region][inside_left | inside_right] = color


def fill_disc(frame: np.ndarray, centre: Sequence[float], radius: float, color: Color) -> None:
    """Paint the pixels whose centres lie within `radius` of `centre`."""
    centre_point = np.asarray(centre, dtype=np.float64)
    region, columns, rows = _pixel_centres(frame, centre_point - radius, centre_point + radius)
    inside = (columns - centre_point[0]) ** 2 + (rows - centre_point[1]) ** 2 <= radius**2
    frame[region][inside] = color
