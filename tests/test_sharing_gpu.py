"""What services do, on a GPU: 8 threads sharing one Detector, and one pool of lanes, under no
context, `pycuda.autoinit` and `pycuda.autoprimaryctx`, for v2, v3, graph, GPU stages and GPU
stages with a graph; every result equal to one thread's, no CUDA error. Plus graph capture while
another thread works on the default stream (CuPy, torch), and close() during runs.

Each context setup runs in a fresh process (autoinit changes the whole process). Needs TensorRT
(or trtemu, the API emulator, not TensorRT) with pycuda, CuPy and a GPU; skipped by name elsewhere.
"""

from __future__ import annotations

import pytest
from conftest import model_dir
from test_trt_threads import AVAILABLE, WHY, scenario

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not AVAILABLE, reason=f"TensorRT not installed or not usable here: {WHY}"),
]
SETUPS = ["none", "pycuda.autoinit", "pycuda.autoprimaryctx"]
COMMON = """
import threading
import cv2
import helpers.trt.engine as engine_module
from helpers.detector import Detector
from helpers.errors import UserError
from helpers.gpu.stages import GpuStages
from helpers.lanes import tensorrt_lanes
from helpers.samples import sample_path
IMAGES = [cv2.imread(str(sample_path(n))) for n in ("crowd48.png", "astronaut.png", "large_face.png")]
IMAGES.append(cv2.resize(IMAGES[0], (1280, 720)))
N = len(IMAGES)

def key(faces):
    return [faces.boxes.tolist(), faces.scores.tolist()]

def shared(det, want, runs=12):
    return lambda: all(key(det.detect(IMAGES[j % N])) == want[j % N] for j in range(runs))

SETUPS = [("v3", False), ("v2", False), ("graph", False), ("v3", True), ("graph", True)]
"""


@pytest.fixture(scope="module")
def model():
    path = model_dir() / "scrfd_2.5g.onnx"
    if not path.is_file():
        pytest.skip("no scrfd_2.5g.onnx in SCRFD_MODEL_DIR")
    return path


@pytest.mark.parametrize("setup", SETUPS)
def test_shared_detector_and_lanes_give_one_thread_results(setup, model, tmp_path):
    prelude = "" if setup == "none" else f"import {setup}\n"
    out = scenario(
        prelude
        + COMMON
        + """
before_all = stack()
deserialised = []
real = engine_module.deserialize
engine_module.deserialize = lambda *a: deserialised.append(1) or real(*a)
report = {}
for method, on_gpu in SETUPS:
    name = f"{method}{'+gpu-stages' if on_gpu else ''}"
    backend = TensorRTBackend(MODEL, method=method, cache_dir=CACHE, progress=False)
    stages = GpuStages(backend, graph=method == "graph") if on_gpu else None
    det = Detector(backend, stages=stages)
    want = [key(det.detect(image)) for image in IMAGES]
    threads_ok = in_threads(shared(det, want), 8)
    graph = None
    if method == "graph":
        graph = stages.captured if on_gpu else backend.runner._graph is not None
    before = len(deserialised)
    pool = tensorrt_lanes(MODEL, 4, method=method, gpu_stages=on_gpu, cache_dir=CACHE, progress=False)
    lanes_ok = pool.map(lambda lane, j: key(lane.detect(IMAGES[j % N])) == want[j % N], range(48))
    lane_graphs = [
        (lane.stages.captured if on_gpu else lane.backend.runner._graph is not None)
        for lane in pool.lanes
    ] if method == "graph" else []
    pool.close()
    backend.close()
    if stages is not None:
        stages.close()  # after the backend's close: no error, nothing left
    report[name] = {
        "faces": [len(w[1]) for w in want], "threads": threads_ok, "graph": graph,
        "lanes": all(lanes_ok), "lane_graphs": lane_graphs, "deserialised": len(deserialised) - before,
    }
_, device = drv.cuDeviceGet(0)
_, primary = drv.cuDevicePrimaryCtxRetain(device)
drv.cuDevicePrimaryCtxRelease(device)
primary = bindings.native(primary)
print(json.dumps({"report": report, "before": before_all, "after": stack(), "primary": primary}))
""",
        model,
        tmp_path,
    )
    # The caller's stack is as it was; with none, CuPy's runtime calls may leave the primary
    # context current (the CUDA runtime does that on first use, as torch does), nothing else.
    assert len(out["before"]) == (setup != "none")
    assert out["after"] == out["before"] or (setup == "none" and out["after"] == [out["primary"]])
    for name, r in out["report"].items():
        assert sum(r["faces"]) > 0, name
        assert r["threads"] == [True] * 8, name
        assert r["lanes"], name
        assert r["deserialised"] == 1, f"{name}: the lanes' engine was deserialised {r['deserialised']} times"
        if name.startswith("graph"):
            assert r["graph"] is True and r["lane_graphs"] == [True] * 4, name


def test_graph_capture_while_another_thread_uses_the_default_stream(model, tmp_path):
    """A non-blocking engine stream: capture in one thread does not break CuPy / torch work on the
    legacy default stream in another (with a blocking one: cudaErrorStreamCaptureImplicit)."""
    out = scenario(
        COMMON
        + """
import cupy
try:
    import torch
except ImportError:
    torch = None
backend = TensorRTBackend(MODEL, method="graph", cache_dir=CACHE, progress=False)
stages = GpuStages(backend, graph=True)
det = Detector(backend, stages=stages)
want = [key(det.detect(image)) for image in IMAGES]
stop, errors, laps = threading.Event(), [], [0]

def noise():
    try:
        while not stop.is_set():
            a = cupy.arange(1 << 20, dtype=cupy.float32)
            float((a * 2).sum())
            if torch is not None:
                float(torch.ones(1 << 20, device="cuda").sum())
            laps[0] += 1
    except Exception as exc:
        errors.append(repr(exc)[:300])

worker = threading.Thread(target=noise)
worker.start()
ok = []
for round in range(4):
    for j, image in enumerate(IMAGES):  # a new frame shape each time: a capture each time
        narrower = cv2.resize(image, (image.shape[1] - 32 * round - 32, image.shape[0]))
        ok.append(len(det.detect(narrower)) >= 0)
        ok.append(key(det.detect(IMAGES[j])) == want[j])
stop.set()
worker.join()
captured = stages.captured
backend.close()
print(json.dumps({"ok": all(ok), "errors": errors, "laps": laps[0], "captured": captured,
                  "torch": torch is not None}))
""",
        model,
        tmp_path,
    )
    assert out["errors"] == [] and out["ok"] and out["captured"] and out["laps"] > 0
    if not out["torch"]:
        pytest.skip("torch is not installed: only CuPy's default-stream work was tested")


@pytest.mark.parametrize("on_gpu", [False, True], ids=["cpu-stages", "gpu-stages"])
def test_close_during_runs_stops_them_with_one_line_errors(on_gpu, model, tmp_path):
    """Threads mid-run when close() comes: each run finishes or is refused ("was closed"); no
    CUDA error, nothing freed under a kernel. Synchronised by events, not sleeps."""
    out = scenario(
        COMMON
        + f"""
backend = TensorRTBackend(MODEL, cache_dir=CACHE, progress=False)
stages = GpuStages(backend) if {on_gpu} else None
det = Detector(backend, stages=stages)
running = [threading.Event() for _ in range(6)]
outcomes = []

def worker(i):
    done = 0
    while True:
        try:
            det.detect(IMAGES[i % N])
        except UserError as exc:
            outcomes.append(("refused", done, "was closed" in str(exc)))
            return
        except Exception as exc:
            outcomes.append(("error", done, repr(exc)[:300]))
            return
        done += 1
        running[i].set()

threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
for t in threads:
    t.start()
all(e.wait(120) for e in running)  # every thread is in its loop of runs
backend.close()
for t in threads:
    t.join()
print(json.dumps({{"outcomes": outcomes}}))
""",
        model,
        tmp_path,
    )
    assert len(out["outcomes"]) == 6
    assert all(kind == "refused" and done > 0 and named for kind, done, named in out["outcomes"]), out
