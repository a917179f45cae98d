"""Shared fixtures: real SCRFD models from SCRFD_MODEL_DIR and real photos beside the checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

SHARED_IMAGES = Path(os.environ.get("SCRFD_IMAGE_DIR", ROOT.parent / "shared" / "images"))
MODEL_NAMES = ("scrfd_500m_bnkps", "scrfd_500m", "scrfd_2.5g")


def model_dir() -> Path:
    env = os.environ.get("SCRFD_MODEL_DIR")
    if not env or not Path(env).is_dir():
        pytest.skip("no SCRFD models: set SCRFD_MODEL_DIR to a folder of SCRFD .onnx files")
    return Path(env)


@pytest.fixture(params=MODEL_NAMES)
def model_path(request) -> Path:
    path = model_dir() / f"{request.param}.onnx"
    if not path.is_file():
        pytest.skip(f"no {path.name} in SCRFD_MODEL_DIR")
    return path


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
