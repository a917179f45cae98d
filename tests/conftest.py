"""Shared fixtures: real SCRFD models and real photos.

Models are found the way the CLI finds them (`helpers.models`): the folder SCRFD_MODEL_DIR
names, else data/models/, which `setup.sh` fills (it links the models of SCRFD_MODEL_DIR there,
or fetches insightface's det_500m). Without any model, model tests skip with one line saying so.

SCRFD_IMAGE_DIR names the folder of the shared test photos (t1.jpg, mask_white.jpg,
Tom_Hanks_54745.png from insightface's repository, not shipped with the workbook); it defaults to
../shared/images beside the checkout. Without them, the tests that need them skip by name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers.photos import photo_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

SHARED_IMAGES = photo_dir()
MODEL_NAMES = ("scrfd_500m_bnkps", "scrfd_500m", "scrfd_2.5g")


def model_dir() -> Path:
    """The model folder the CLI would use; skips when it holds no model."""
    from helpers.models import ENV, onnx_in
    from helpers.models import model_dir as folder

    path = folder()
    if not onnx_in(path):
        pytest.skip(f"no SCRFD models in {path}: set {ENV} or run `python -m helpers models fetch`")
    return path


def named_model(name: str) -> Path:
    """One export by name from the model folder; skips when that export is not there."""
    path = model_dir() / f"{name}.onnx"
    if not path.is_file():
        pytest.skip(f"no {path.name} in {path.parent}")
    return path


@pytest.fixture(params=MODEL_NAMES)
def model_path(request) -> Path:
    return named_model(request.param)


@pytest.fixture(scope="session")
def default_model() -> Path:
    from helpers.models import resolve

    model_dir()
    return resolve(None)


def shared_image(name: str) -> Path:
    path = SHARED_IMAGES / name
    if not path.is_file():
        pytest.skip(f"no shared test image {name}: set SCRFD_IMAGE_DIR")
    return path
