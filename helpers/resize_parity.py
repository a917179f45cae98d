"""Whether another resize than OpenCV's changes the faces: the GPU letterbox kernel's, say.

The kernel's arithmetic is modelled in NumPy (helpers.gpu.resize_model); this runs a whole CPU
detection with that resize in place of `cv2.resize`, so its effect on the faces can be checked
on a machine without a GPU. The resize is passed in: this module imports no GPU code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from helpers.detections import Faces
from helpers.detector import Detector
from helpers.letterbox import fit

Resize = Callable[[np.ndarray, int, int], np.ndarray]  # (BGR image, width, height) -> BGR image


@dataclass(frozen=True)
class ResizeParity:
    """The other resize against cv2.resize: its pixels, and the faces found with each."""

    max_pixel_difference: int
    identical_pixels: float  # fraction
    faces: Faces  # with the other resize, original-image pixels
    cpu_faces: Faces  # with cv2.resize (the CPU path)

    def box_difference(self) -> float | None:
        """Largest box-corner difference in pixels, when both found as many faces (both best first)."""
        if len(self.faces) != len(self.cpu_faces):
            return None
        return float(np.abs(self.faces.boxes - self.cpu_faces.boxes).max(initial=0.0))

    def __str__(self) -> str:
        lines = [
            f"resize vs cv2.resize: max difference {self.max_pixel_difference}, "
            f"identical pixels {100 * self.identical_pixels:.2f} %",
            f"faces: CPU path {len(self.cpu_faces)}, other resize {len(self.faces)}",
        ]
        box = self.box_difference()
        if box is not None:
            lines.append(f"largest box corner difference: {box:.3f} px")
        return "\n".join(lines)


def resize_parity(detector: Detector, image: np.ndarray, resize: Resize) -> ResizeParity:
    """Detect in `image` twice, letterboxed with `resize` and with cv2.resize, and compare."""
    box = fit(image.shape[:2], detector.input_size)
    ours = resize(image, box.new_width, box.new_height)
    size = (box.new_height, box.new_width)
    again = fit(ours.shape[:2], detector.input_size)
    if ours.shape[:2] != size or (again.new_height, again.new_width) != size:
        raise ValueError(f"the resize gave {ours.shape[:2]}, not the letterbox's {size}")
    diff = np.abs(ours.astype(np.int16) - cv2.resize(image, (box.new_width, box.new_height)))
    # An image already at its letterbox size is not resized again: the canvas holds `ours`.
    faces = detector.run(ours).faces.scaled(box.scale)
    return ResizeParity(int(diff.max()), float((diff == 0).mean()), faces, detector.detect(image))
