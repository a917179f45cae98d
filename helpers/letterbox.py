"""Letterbox preprocessing, exactly as insightface's SCRFD reference does it.

Aspect-preserving resize into the top-left of a zero canvas, so boxes map
back with a single scale factor. At about 1 ms of inference per frame the
Python around the engine decides the frame rate, so this runs near the floor
(writing the float32 canvas once): no per-call allocation, the padding only
rewritten when the image's geometry changes, and normalisation, BGR -> RGB
and HWC -> CHW done in one table look-up per plane straight into the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MEAN = 127.5
STD = 128.0
# uint8 -> (x - 127.5) / 128: every value is exact in float32 ((2x - 255) / 256), so the look-up
# is bit-identical to cv2.dnn.blobFromImage's arithmetic, and cv2.LUT writes float32 straight out.
LUT = ((np.arange(256, dtype=np.float64) - MEAN) / STD).astype(np.float32)
PAD = float(LUT[0])  # the canvas's zero pixels, normalised


@dataclass(frozen=True)
class Letterbox:
    """Where the image landed on the canvas: (new_w, new_h) at `scale`."""

    width: int
    height: int
    new_width: int
    new_height: int
    scale: float


def fit(image_hw: tuple[int, int], size: tuple[int, int]) -> Letterbox:
    """The reference's arithmetic, plus a floor of one pixel for extreme aspect ratios."""
    h, w = image_hw
    width, height = size
    if h / w > height / width:
        new_h = height
        new_w = int(new_h / (h / w))
    else:
        new_w = width
        new_h = int(new_w * (h / w))
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    return Letterbox(width, height, new_w, new_h, new_h / h)


def check_blob(out: np.ndarray, size: tuple[int, int]) -> None:
    """A caller's canvas must be a C-contiguous (1, 3, H, W) float32 array."""
    shape = (1, 3, size[1], size[0])
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}"
        )


class Preprocessor:
    """Turns BGR uint8 images into the model's NCHW float32 blob, reusing buffers.

    The returned blob is owned by the preprocessor: the next call of the same size overwrites
    it, and its padding is written only when the resized image's geometry changes, so copy it
    to keep or modify it. With `out` (for example an engine's pinned input buffer) the blob is
    written there instead, padding included every call, since others may write into it.
    """

    def __init__(self) -> None:
        self._blobs: dict[tuple[int, int], np.ndarray] = {}
        self._padded: dict[tuple[int, int], tuple[int, int]] = {}  # size -> (new_w, new_h) padded
        self._scratch = np.empty(0, np.uint8)  # RGB planes, then the resized image

    def __call__(
        self, image: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None
    ) -> tuple[np.ndarray, Letterbox]:
        box = fit(image.shape[:2], size)
        nw, nh = box.new_width, box.new_height
        if out is not None:
            check_blob(out, size)
            blob = out
            pad(blob, nw, nh)
        else:
            blob = self._own_blob(size, nw, nh)
        rgb = self._rgb_planes(image, nw, nh)
        # One look-up for all three planes: the canvas side the image fills makes each plane's
        # image region rows of one 2-D view (whole rows when it fills the width).
        height, width = blob.shape[2:]
        if nw == width:
            src, dst = rgb.reshape(3, nh * nw), blob[0].reshape(3, height * width)[:, : nh * nw]
        else:  # fit() fills the height when it does not fill the width
            src, dst = rgb.reshape(3 * nh, nw), blob[0, :, :, :nw].reshape(3 * height, nw)
        cv2.LUT(src, LUT, dst=dst)
        return blob, box

    def _own_blob(self, size: tuple[int, int], nw: int, nh: int) -> np.ndarray:
        blob = self._blobs.get(size)
        if blob is None:
            blob = self._blobs[size] = np.empty((1, 3, size[1], size[0]), np.float32)
        if self._padded.get(size) != (nw, nh):
            pad(blob, nw, nh)
            self._padded[size] = (nw, nh)
        return blob

    def _rgb_planes(self, image: np.ndarray, nw: int, nh: int) -> np.ndarray:
        """The resized image as R, G, B planes (3, nh, nw) in one reused scratch buffer."""
        if image.ndim != 2 and (image.ndim != 3 or image.shape[2] != 3):
            raise ValueError(f"expected a BGR (H, W, 3) or grayscale (H, W) image, got shape {image.shape}")
        area = nw * nh
        if self._scratch.size < 6 * area:
            self._scratch = np.empty(6 * area, np.uint8)
        rgb = self._scratch[: 3 * area].reshape(3, nh, nw)
        resized = image  # the reference's resize to the same size is a plain copy
        if image.shape[:2] != (nh, nw):
            channels = image.shape[2:]
            dst = self._scratch[3 * area : (4 if image.ndim == 2 else 6) * area].reshape(nh, nw, *channels)
            resized = cv2.resize(image, (nw, nh), dst=dst)
        if resized.ndim == 2:
            rgb[...] = resized
        else:
            cv2.split(resized, [rgb[2], rgb[1], rgb[0]])  # B, G, R into planes 2, 1, 0
        return rgb


def pad(blob: np.ndarray, nw: int, nh: int) -> None:
    """Fill the canvas outside the top-left (nw, nh) image with the normalised zero pixel."""
    planes = blob[0]
    planes[:, nh:, :] = PAD
    planes[:, :nh, nw:] = PAD
