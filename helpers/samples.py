"""The project's own sample images, generated from photos that scikit-image ships.

Nothing is downloaded and no third-party test photo is committed: the images
are made on first use into data/samples/ (atomically) and are identical on
every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from helpers.atomic import write_bytes
from helpers.images import encode_image
from helpers.models import PROJECT_DIR

SAMPLE_DIR = PROJECT_DIR / "data" / "samples"


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def _crowd(columns: int = 8, rows: int = 6, cell: int = 64) -> np.ndarray:
    """48 LFW face crops on a grid: a many-face scene for speed and NMS tests."""
    from skimage import data

    faces = data.lfw_subset()[: columns * rows]  # the first 100 crops are faces
    tiles = [
        cv2.resize((f * 255).astype(np.uint8), (cell, cell), interpolation=cv2.INTER_CUBIC) for f in faces
    ]
    grid = np.vstack([np.hstack(tiles[r * columns : (r + 1) * columns]) for r in range(rows)])
    return cv2.cvtColor(grid, cv2.COLOR_GRAY2BGR)


def _large_face() -> np.ndarray:
    """The astronaut's face filling the frame: missed at 640, found at 128 or 320."""
    face = _astronaut()[60:220, 150:290]
    return cv2.resize(face, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)


SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut.png": _astronaut,
    "crowd48.png": _crowd,
    "large_face.png": _large_face,
}


def sample_path(name: str = "astronaut.png") -> Path:
    """Path of a sample image, generating it on first use."""
    path = SAMPLE_DIR / name
    if not path.is_file():
        write_bytes(path, encode_image(SAMPLES[name](), path.suffix))
    return path


def all_samples() -> list[Path]:
    return [sample_path(n) for n in SAMPLES]
