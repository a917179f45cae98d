"""The layout is read from real shapes: any order, rank, stride count; non-SCRFD models refused."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import scrfd_like

from helpers.detector import sniff_layout
from helpers.errors import UserError
from helpers.layout import infer_layout
from helpers.ort_backend import OnnxRuntimeBackend


@pytest.mark.parametrize(
    ("strides", "anchors", "landmarks", "rank"),
    [
        ((8, 16, 32), 2, False, 2),  # 6 outputs
        ((8, 16, 32), 2, True, 3),  # 9 outputs, batched
        ((8, 16, 32, 64, 128), 1, False, 2),  # 10 outputs
        ((8, 16, 32, 64, 128), 1, True, 3),  # 15 outputs
        ((8, 16, 32), 2, True, 4),  # raw NCHW maps
        ((8, 16, 32), 3, True, 2),  # an unusual anchor count
    ],
)
def test_synthetic_layouts_are_understood(tmp_path, strides, anchors, landmarks, rank):
    n = len(strides) * (3 if landmarks else 2)
    order = list(np.random.default_rng(n + rank).permutation(n))
    path = scrfd_like(tmp_path / "m.onnx", strides, anchors, landmarks, rank, order=order)
    layout = sniff_layout(OnnxRuntimeBackend(path), (640, 480))
    assert layout.strides == strides
    assert layout.anchors == anchors
    assert layout.landmarks == landmarks
    assert layout.batched == (rank == 3)
    assert layout.nchw == (rank == 4)
    for kind in ("score", "bbox") + (("kps",) if landmarks else ()):
        assert layout.outputs[kind] == {s: f"{kind}_{s}" for s in strides}
    assert ("kps" in layout.outputs) == landmarks


def test_json_uses_string_stride_keys(tmp_path):
    layout = sniff_layout(OnnxRuntimeBackend(scrfd_like(tmp_path / "m.onnx", landmarks=False)), (640, 640))
    out = layout.to_json()
    assert out["outputs"]["score"] == {"8": "score_8", "16": "score_16", "32": "score_32"}
    assert out["outputs"]["kps"] is None
    assert out["dynamic_input"] is True


def test_nchw_rows_follow_the_head_order():
    """(1, A*C, h, w) must flatten as the head does: rows (y, x, anchor), channels inner."""
    from helpers.layout import Layout

    layout = Layout((8,), 2, False, False, True, True, {})
    maps = np.arange(1 * 8 * 2 * 3, dtype=np.float32).reshape(1, 8, 2, 3)  # A=2, C=4, h=2, w=3
    rows = layout.as_rows(maps)
    assert rows.shape == (12, 4)
    # row for y=1, x=2, anchor=1 is index (1*3+2)*2+1 = 11, channels 4..7 of that pixel
    assert rows[11].tolist() == maps[0, 4:8, 1, 2].tolist()


@pytest.mark.parametrize("count", [1, 5, 7, 12])
def test_wrong_output_count_is_not_scrfd(count):
    shapes = {f"o{i}": (100, 1) for i in range(count)}
    with pytest.raises(UserError, match="not an SCRFD model"):
        infer_layout(shapes, 640, 640, True)


def test_extra_output_is_not_scrfd(tmp_path):
    path = scrfd_like(tmp_path / "m.onnx", landmarks=False, extra_outputs=1)
    with pytest.raises(UserError, match="7 outputs"):
        sniff_layout(OnnxRuntimeBackend(path), (640, 640))


def test_rows_that_fit_no_stride_are_refused():
    shapes = {f"s{i}": (r, 1) for i, r in enumerate((12800, 3200, 801))}
    shapes |= {f"b{i}": (r, 4) for i, r in enumerate((12800, 3200, 800))}
    with pytest.raises(UserError, match="801 rows"):
        infer_layout(shapes, 640, 640, True)


def test_odd_channel_count_is_refused():
    shapes = {f"o{i}": (800, 3) for i in range(6)}
    with pytest.raises(UserError, match="3 channels"):
        infer_layout(shapes, 640, 640, True)


def test_real_models_layouts(model_path):
    layout = sniff_layout(OnnxRuntimeBackend(model_path), (640, 640))
    assert layout.strides == (8, 16, 32) and layout.anchors == 2 and layout.landmarks
    assert layout.batched == model_path.stem.endswith("bnkps")
    assert layout.dynamic_input != model_path.stem.endswith("bnkps")
    names = [n for kind in layout.outputs.values() for n in kind.values()]
    assert len(set(names)) == 9
