"""insightface 2.x's own `model_zoo.SCRFD` (PyPI `insightface`), timed as users run it.

Installed with `pip install --no-deps insightface==2.1`: its `opencv-python` dependency must not
join the workbook's `opencv-python-headless`. The package's `__init__` imports all of insightface
(tqdm, requests, scipy, ...), so only `model_zoo/scrfd.py` and the two modules it imports are
loaded; they need numpy, opencv, onnx and onnxruntime, which the workbook has.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

INSTALL = "pip install --no-deps insightface==2.1"


def insightface_version() -> str | None:
    """The installed insightface's version, or None when it is absent."""
    try:
        return version("insightface")
    except PackageNotFoundError:
        return None


@functools.cache
def scrfd_module() -> types.ModuleType:
    """`insightface.model_zoo.scrfd`, imported without running the package's `__init__`."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"insightface is not installed: {INSTALL}")
    root = Path(spec.origin).parent
    for name, folder in (("insightface", root), ("insightface.model_zoo", root / "model_zoo")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            sys.modules[name] = package
    return importlib.import_module("insightface.model_zoo.scrfd")


def insightface_missing() -> str | None:
    """Why insightface 2.x's SCRFD cannot be loaded here (one line), or None when it can."""
    if not insightface_version():
        return f"insightface 2.x not installed ({INSTALL})"
    try:
        scrfd_module()
    except ImportError as exc:
        return f"insightface {insightface_version()} installed, but its SCRFD module cannot load: {exc}"
    return None


class RecordedSession:
    """An ONNX Runtime session that runs once per input shape, then replays those outputs.

    Inside a benchmark case the image never changes, so the replay is exactly what the real
    session would return, and what is timed is insightface's Python around inference only.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self.recorded: dict[tuple[int, ...], list[np.ndarray]] = {}

    def __getattr__(self, name: str) -> Any:  # get_inputs, get_outputs, get_providers, ...
        return getattr(self.session, name)

    def run(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        (blob,) = feeds.values()
        if blob.shape not in self.recorded:
            self.recorded[blob.shape] = self.session.run(output_names, feeds)
        return self.recorded[blob.shape]


def insightface_scrfd(session: Any, det_thresh: float = 0.5, nms_thresh: float = 0.4) -> Any:
    """insightface's SCRFD on `session` (replayed outputs), thresholds as the workbook's."""
    detector = scrfd_module().SCRFD(model_file=None, session=RecordedSession(session))
    detector.prepare(0, det_thresh=det_thresh, nms_thresh=nms_thresh)
    return detector
