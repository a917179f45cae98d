"""Batched SCRFD on the CPU: the rewrite, per-image parity, the layout and Detector at batch N.

The reference for every image is its own batch-1 run of the unmodified export with ONNX Runtime
(CPU). Measured on the three shared exports in batches of 1, 3 and 8 mixed images: a max abs
difference of 0.0, so the tests ask for exact equality. (Dropping the recorded intermediate
shapes instead of batching them made the static 500m_bnkps drift by 1.4e-6.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import named_model, shared_image

from helpers.batch import batchify as bf
from helpers.detector import Detector
from helpers.errors import UserError
from helpers.layout import image_outputs, infer_layout
from helpers.letterbox import Preprocessor
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path

TOLERANCE = 0.0


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def session(model) -> ort.InferenceSession:
    ort.set_default_logger_severity(3)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def mixed_images() -> list[np.ndarray]:
    """Photos and samples of different sizes and aspect ratios, one grayscale, one reused."""
    photo = cv2.imread(str(shared_image("t1.jpg")))
    crowd = cv2.imread(str(sample_path("crowd48.png")))
    gray = cv2.cvtColor(cv2.imread(str(sample_path("astronaut.png"))), cv2.COLOR_BGR2GRAY)
    tall = cv2.resize(photo, (301, 517))
    return [photo, crowd, gray, tall, cv2.imread(str(shared_image("mask_white.jpg"))), photo[::2, ::3].copy()]


def blobs(images: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    prep = Preprocessor()
    return np.concatenate([prep(image, size)[0].copy() for image in images])


@pytest.mark.parametrize("name", ["scrfd_500m", "scrfd_2.5g", "scrfd_500m_bnkps"])
def test_each_image_of_a_batch_equals_its_own_run(name, cache):
    source = named_model(name)
    batched = bf.batchify(source, cache_dir=cache)
    assert batched != source and bf.plan(bf.load(batched)) == []  # batchable after the rewrite
    ref, new = session(source), session(batched)
    names, feed = [o.name for o in ref.get_outputs()], ref.get_inputs()[0].name
    size = (640, 640) if name.endswith("bnkps") else (640, 480)
    images = mixed_images()
    pool = blobs(images + images[:2], size)  # 8 slots: a real face photo in most of them
    for count in (1, 3, 8):
        inputs = pool[:count] if count != 3 else pool[[1, 4, 2]]
        own = [
            {
                k: v.reshape(bf.new_shape(v))
                for k, v in zip(names, ref.run(names, {feed: x[None]}), strict=True)
            }
            for x in inputs
        ]
        outs = dict(zip(names, new.run(names, {feed: inputs}), strict=True))
        assert all(v.shape[0] == count for v in outs.values())
        assert bf.max_difference(bf.split(outs, count), own) <= TOLERANCE


def test_the_naive_patch_interleaves_the_images_rows():
    """Only the input batch made dynamic: stride 8 rows come out (h, w, image, anchor)."""
    source = named_model("scrfd_500m")
    model = bf.load(source)
    naive = session(bf.naive_batch(model).SerializeToString())
    ref = session(source)
    images = np.random.default_rng(3).uniform(-1, 1, (3, 3, 64, 96)).astype(np.float32)
    out = naive.get_outputs()[0].name  # score, stride 8
    mixed = naive.run([out], {"input.1": images})[0]
    own = [ref.run([out], {"input.1": x[None]})[0] for x in images]
    cells, anchors = (64 // 8) * (96 // 8), 2
    assert mixed.shape == (3 * cells * anchors, 1)
    rows = mixed.reshape(cells, 3, anchors)
    for i in range(3):
        np.testing.assert_array_equal(rows[:, i], own[i].reshape(cells, anchors))
    assert not np.array_equal(mixed[: cells * anchors], own[0])  # the first image's "own" rows are not


def test_batchify_is_cached_on_the_source_bytes(cache, tmp_path):
    source = named_model("scrfd_500m")
    first = bf.batchify(source, cache_dir=cache)
    stamp = first.stat().st_mtime_ns
    assert bf.batchify(source, cache_dir=cache) == first and first.stat().st_mtime_ns == stamp
    assert bf.batchify(str(source), cache_dir=str(cache)) == first  # paths as strings, as users pass them
    copy = tmp_path / "scrfd_500m.onnx"
    model = bf.load(source)
    model.producer_name = "changed"
    onnx.save(model, str(copy))
    other = bf.batchify(copy, cache_dir=cache)
    assert other != first and other.parent == first.parent == cache / "batched"


def test_a_changed_rewrite_does_not_reuse_a_copy_made_by_the_old_one(cache, monkeypatch, tmp_path):
    """The cache key holds this module's source too: a copy left by an older rewrite (which gave
    the static export a 1-ulp drift, enough to move a rounded landmark) must not be reused."""
    source = named_model("scrfd_500m_bnkps")
    first = bf.batchify(source, cache_dir=cache)
    changed = tmp_path / "batchify.py"
    changed.write_bytes(bf.Path(bf.__file__).read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(bf, "__file__", str(changed))
    assert bf.batched_path(source, cache) != first


def test_a_batchable_model_is_returned_as_it_is(cache, tmp_path):
    batched = bf.batchify(named_model("scrfd_2.5g"), cache_dir=cache)
    assert bf.batchify(batched, cache_dir=cache) == batched
    out = bf.batchify(batched, tmp_path / "copy.onnx")  # --out writes even then
    assert out.read_bytes() == bf.rewrite(bf.load(batched)).SerializeToString()


def _broken(model: onnx.ModelProto, perm: list[int]) -> onnx.ModelProto:
    head = next(n for n in model.graph.node if n.op_type == "Transpose")
    del head.attribute[:]
    head.attribute.append(onnx.helper.make_attribute("perm", perm))
    return model


def test_an_export_that_cannot_be_rewritten_gets_one_line_saying_why(tmp_path):
    model = _broken(bf.load(named_model("scrfd_500m")), [3, 2, 0, 1])
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    with pytest.raises(UserError, match=r"cannot be rewritten.*perm \[3, 2, 0, 1\]") as err:
        bf.batchify(path, cache_dir=tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "batched").exists()


def test_layout_reads_a_batch_and_refuses_outputs_that_disagree():
    shapes = {f"s{s}": (3, 2 * (64 // s) ** 2, 1) for s in (8, 16, 32)}
    shapes |= {f"b{s}": (3, 2 * (64 // s) ** 2, 4) for s in (8, 16, 32)}
    layout = infer_layout(shapes, 64, 64, True)
    assert layout.batched and layout.holds_batch and layout.anchors == 2
    outputs = {k: np.arange(np.prod(v)).reshape(v) for k, v in shapes.items()}
    one = image_outputs(outputs, 2)
    assert one["s8"].shape == (1, 128, 1) and np.shares_memory(one["s8"], outputs["s8"])
    shapes["s8"] = (2, 128, 1)
    with pytest.raises(UserError, match="disagree on the batch size"):
        infer_layout(shapes, 64, 64, True)


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)


@pytest.mark.parametrize("name", ["scrfd_500m", "scrfd_500m_bnkps"])
def test_detector_batch_gives_each_image_its_one_at_a_time_faces(name, cache):
    batched = Detector(OnnxRuntimeBackend(bf.batchify(named_model(name), cache_dir=cache)), (640, 480))
    single = Detector(OnnxRuntimeBackend(named_model(name)), (640, 480))
    images = mixed_images()
    found = batched.run_batch(images)
    assert len(found) == len(images) and sum(len(d.faces) for d in found) > 10
    for image, detection in zip(images, found, strict=True):
        _same(detection.faces, single.run(image).faces)
    merged = batched.run_batch_sizes(
        images[:3], [(640, 480), (160, 160)] if name == "scrfd_500m" else [(640, 640)]
    )
    for image, (faces, _) in zip(images[:3], merged, strict=True):
        sizes = [(640, 480), (160, 160)] if name == "scrfd_500m" else [(640, 640)]
        _same(faces, single.run_sizes(image, sizes)[0])


def test_unbatched_rows_refuse_a_batch_with_the_fix():
    detector = Detector(OnnxRuntimeBackend(named_model("scrfd_500m")), (320, 320))
    image = np.zeros((100, 100, 3), np.uint8)
    assert len(detector.run_batch([image])) == 1  # one image is always fine
    with pytest.raises(UserError, match="batchify"):
        detector.run_batch([image, image])


def test_batch_runs_from_several_threads_keep_their_own_images(cache):
    detector = Detector(
        OnnxRuntimeBackend(bf.batchify(named_model("scrfd_500m"), cache_dir=cache)), (320, 320)
    )
    images = mixed_images()
    orders = [images[i:] + images[:i] for i in range(4)]
    want = [[d.faces for d in detector.run_batch(order)] for order in orders]

    def work(k: int) -> list:
        for _ in range(2):
            last = [d.faces for d in detector.run_batch(orders[k])]
        return last

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(work, range(4)))  # any exception is raised here
    for k in range(4):
        for a, b in zip(got[k], want[k], strict=True):
            _same(a, b)
