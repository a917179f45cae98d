"""Read images the way the reference does (3-channel BGR uint8), with one-line errors.

OpenCV's colour decode already turns grayscale, RGBA and 16-bit files into
8-bit BGR; what it does not do is say why a file failed, so that is here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from helpers.errors import UserError


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise UserError(f"image {path} does not exist; check the path")
    if path.is_dir():
        raise UserError(f"image {path} is a directory; pass the image files inside it")
    data = np.fromfile(path, np.uint8)
    if data.size == 0:
        raise UserError(f"image {path} is empty (0 bytes); re-copy or re-export it")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"image {path} could not be decoded; use a JPEG, PNG, BMP, TIFF or WebP file")
    return image


def encode_image(image: np.ndarray, suffix: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(suffix, image)
    if not ok:
        raise UserError(f"could not encode an image as {suffix}; use .jpg or .png")
    return buf.tobytes()
