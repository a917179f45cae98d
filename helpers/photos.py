"""insightface's test photos, which the workbook does not ship: where they are and which were found.

`SCRFD_IMAGE_DIR` names their folder (default: ../shared/images beside the checkout). Without
them the benchmarks and notebooks 06, 06b and 06d fall back to the generated samples, and their
numbers then describe other images than the committed reports: so they say which they used.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.models import PROJECT_DIR

PHOTOS = ("t1.jpg", "mask_white.jpg", "Tom_Hanks_54745.png")
FRAME_SOURCE = "t1.jpg"  # the 6-face group photo the synthetic frames are stretched from
FALLBACK = "crowd48.png"  # the generated sample they come from without it (48 faces)


def photo_dir() -> Path:
    return Path(os.environ.get("SCRFD_IMAGE_DIR") or PROJECT_DIR.parent / "shared" / "images")


def found_photos() -> list[Path]:
    folder = photo_dir()
    return [folder / name for name in PHOTOS if (folder / name).is_file()]


def frame_source() -> str:
    """The name of the image the synthetic frames are made from here."""
    return FRAME_SOURCE if (photo_dir() / FRAME_SOURCE).is_file() else FALLBACK


def photos_line() -> str:
    """One line: how many of the photos were found where, and what stands in for missing ones."""
    found = {p.name for p in found_photos()}
    where = f"{len(found)} of {len(PHOTOS)} test photos in {photo_dir()}"
    if len(found) == len(PHOTOS):
        return where
    missing = ", ".join(n for n in PHOTOS if n not in found)
    return (
        f"{where} (missing {missing}; set SCRFD_IMAGE_DIR): notebooks 06, 06b and 06d use the "
        f"generated samples, frames made from {frame_source()}"
    )
