"""One `Detector` shared by 8 worker threads on the GPU, as a service shares it, under each
context setup a reader arrives with; every result must be the one-thread result, with no CUDA
error. Also: a graph captured while another thread works on the legacy default stream, and
`close()` while a frame runs (ordered by events, not sleeps).

Each scenario runs in a fresh process (pycuda.autoinit changes the whole process, and a CUDA
fault would poison the next setup). Needs TensorRT (or trtemu, the API emulator) with pycuda,
CuPy and a GPU; skipped by name elsewhere. The CPU (ONNX Runtime) case is tests/test_sharing.py.
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import named_model
from test_trt_threads import scenario

from helpers.trt.backend import tensorrt_available

AVAILABLE, WHY = tensorrt_available()
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not AVAILABLE, reason=f"TensorRT not installed or not usable here: {WHY}"),
]
SETUPS = {
    "no context": "",
    "pycuda.autoinit": "import pycuda.autoinit",
    "pycuda.autoprimaryctx": "import pycuda.autoprimaryctx",
}
# (method, GPU stages, graph in the stages): CPU pre/post on v2, v3 and a graph, then GPU stages.
CONFIGS = {
    "v2": ("v2", False, False),
    "v3": ("v3", False, False),
    "graph": ("graph", False, False),
    "gpu stages": ("v3", True, False),
    "gpu stages + graph": ("v3", True, True),
}
DETECTORS = """
import cv2
from concurrent.futures import ThreadPoolExecutor
from helpers.detector import Detector
from helpers.errors import UserError
from helpers.samples import sample_path

crowd, astronaut = (cv2.imread(str(sample_path(n))) for n in ("crowd48.png", "astronaut.png"))
FRAMES = [crowd, astronaut, crowd[:, ::-1].copy(), cv2.resize(astronaut, (333, 517)),
          crowd[40:400, 10:600].copy()]

def rows(faces):
    '''Faces as sorted rows: GPU decode may list candidates in any order.'''
    table = np.concatenate([faces.boxes, faces.scores[:, None]], axis=1)
    return table[np.lexsort(table.T[::-1])] if len(table) else table

def detector(method, stages, graph):
    backend = TensorRTBackend(MODEL, method=method, cache_dir=CACHE, progress=False)
    if not stages:
        return Detector(backend, (640, 640)), backend, None
    from helpers.gpu.stages import GpuStages
    gpu = GpuStages(backend, graph=graph)
    return Detector(backend, (640, 640), stages=gpu), backend, gpu

def captured(backend, gpu):
    return gpu.captured if gpu is not None else backend.runner.captured
"""
SHARED = """
THREADS, EACH = 8, 15
out = {}
for name, (method, stages, graph) in CONFIGS.items():
    det, backend, gpu = detector(method, stages, graph)
    want = [rows(det.detect(f)) for f in FRAMES]
    start = threading.Barrier(THREADS)

    def work(k):
        start.wait()  # all threads at once, so their frames overlap
        wrong, errors = 0, []
        for j in range(EACH):
            i = (k + j) % len(FRAMES)
            try:
                got = rows(det.detect(FRAMES[i]))
                wrong += got.shape != want[i].shape or not np.array_equal(got, want[i])
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
        return wrong, errors

    with ThreadPoolExecutor(THREADS) as pool:
        done = list(pool.map(work, range(THREADS)))
    out[name] = {"faces": sum(len(w) for w in want), "wrong": sum(d[0] for d in done),
                 "errors": [e for d in done for e in d[1]], "captured": captured(backend, gpu),
                 "runs": THREADS * EACH}
    if gpu is not None:
        gpu.close()
    backend.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def model():
    return named_model("scrfd_2.5g")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One engine cache for the module: the engine is built once, loaded by every scenario."""
    return tmp_path_factory.mktemp("engines")


def _require_cupy() -> None:
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy not installed: the GPU stages and the default-stream worker need it")


@pytest.mark.parametrize("setup", list(SETUPS))
def test_eight_threads_sharing_one_detector_get_one_thread_results(setup, model, cache):
    _require_cupy()
    out = scenario(SETUPS[setup] + DETECTORS + f"CONFIGS = {CONFIGS!r}\n" + SHARED, model, cache)
    for name, (method, _, graph) in CONFIGS.items():
        seen = out[name]
        assert seen["faces"] > 0, name
        assert not seen["errors"], f"{setup}, {name}: {seen['errors'][:3]}"
        assert seen["wrong"] == 0, (
            f"{setup}, {name}: {seen['wrong']} of {seen['runs']} differ from one thread"
        )
        assert seen["captured"] == (method == "graph" or graph), f"{setup}, {name}: graph held?"


@pytest.mark.parametrize("library", ["cupy", "torch"])
@pytest.mark.parametrize("config", ["graph", "gpu stages + graph"])
def test_graph_capture_while_another_thread_works_on_the_default_stream(library, config, model, cache):
    """A blocking engine stream capturing a graph made the legacy stream unusable for everyone
    (cudaErrorStreamCaptureImplicit in the other thread, and the capture invalidated)."""
    _require_cupy()
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} not installed: no default-stream {library} work to run beside the capture")
    work = {
        "cupy": "import cupy\nx = cupy.arange(1 << 20, dtype=cupy.float32)\n"
        "def step():\n    with cupy.cuda.Stream.null:\n        y = cupy.zeros_like(x); y += x * 2\n"
        "        assert float(y[7]) == 14.0\n",
        "torch": "import torch\nx = torch.arange(1 << 20, dtype=torch.float32, device='cuda')\n"
        "def step():\n    y = torch.zeros_like(x); y += x * 2\n    assert float(y[7]) == 14.0\n",
    }[library]
    code = (
        DETECTORS
        + work
        + f"""
method, stages, graph = {CONFIGS[config]!r}
det, backend, gpu = detector(method, stages, graph)
wide = Detector(backend, (640, 480), stages=gpu)  # another input shape: alternating recaptures
step()
want = [[rows(d.detect(f)) for f in FRAMES] for d in (det, wide)]
busy, stop, other = threading.Event(), threading.Event(), []

def default_stream_work():
    try:
        while not stop.is_set():
            step()
            busy.set()
    except Exception as exc:
        other.append(f"{{type(exc).__name__}}: {{exc}}"[:300])
    busy.set()

worker = threading.Thread(target=default_stream_work)
worker.start()
busy.wait()
results, captures = [], []
for j in range(12):  # the input shape alternates: each frame captures the graph again
    i, k = j % len(FRAMES), j % 2
    results.append(bool(np.array_equal(rows((det, wide)[k].detect(FRAMES[i])), want[k][i])))
    captures.append(captured(backend, gpu))
stop.set()
worker.join()
if gpu is not None:
    gpu.close()
backend.close()
print(json.dumps({{"results": results, "captures": captures, "other": other}}))
"""
    )
    out = scenario(code, model, cache)
    assert out["other"] == [], out["other"]
    assert all(out["results"]) and all(out["captures"]), out


@pytest.mark.parametrize("config", ["v3", "gpu stages"])
def test_close_during_a_run_waits_for_it_then_refuses_by_name(config, model, cache):
    """The run in flight when `close()` is called finishes with the right faces; the next one is
    a one-line UserError. Ordered by events: the run is inside the engine when close starts."""
    if CONFIGS[config][1]:
        _require_cupy()
    code = (
        DETECTORS
        + f"""
method, stages, graph = {CONFIGS[config]!r}
det, backend, gpu = detector(method, stages, graph)
want = rows(det.detect(FRAMES[0]))
inside, closing, closed = threading.Event(), threading.Event(), threading.Event()
target = backend if gpu is not None else backend.runner
original = target.enqueue if gpu is not None else target.run

def hooked(*args):
    inside.set()
    closing.wait()  # close() has been called: it must wait for this frame
    result = original(*args)
    seen["closed_during_run"] = not closed.is_set()  # still inside the run lock here
    return result

if gpu is not None:
    backend.enqueue = hooked
else:
    target.run = hooked
seen = {{}}

def run_one():
    seen["first"] = bool(np.array_equal(rows(det.detect(FRAMES[0])), want))

def close():
    inside.wait()
    closing.set()
    backend.close()
    closed.set()

threads = [threading.Thread(target=run_one), threading.Thread(target=close)]
for t in threads:
    t.start()
for t in threads:
    t.join()
try:
    det.detect(FRAMES[0])
    seen["after"] = "ran"
except UserError as exc:
    seen["after"] = str(exc)
if gpu is not None:
    gpu.close()  # after the backend's close: neither raises nor leaks
print(json.dumps(seen))
"""
    )
    out = scenario(code, model, cache)
    assert out["first"] and out["closed_during_run"], out
    assert "was closed" in out["after"] and "\n" not in out["after"], out


def test_gpu_stages_graph_recaptures_when_the_frame_buffer_moves(model, cache):
    """The graph froze the staging and letterbox addresses: a `frame_buffer()` of another shape
    between runs must make the next run capture again, not replay into freed memory."""
    _require_cupy()
    code = (
        DETECTORS
        + """
det, backend, gpu = detector("v3", True, True)
frame = FRAMES[0]
want = rows(det.detect(frame))
before = gpu.letterbox.addresses(1)
held = gpu.letterbox._staging[0], gpu.letterbox._device[0]  # so the new buffers cannot reuse them
pinned = gpu.frame_buffer((frame.shape[0] + 16, frame.shape[1] + 16, 3))  # moves the staging
pinned = gpu.frame_buffer(frame.shape)
pinned[...] = frame
moved = gpu.letterbox.addresses(1) != before
again = [bool(np.array_equal(rows(det.detect(f)), want)) for f in (frame, pinned, frame)]
print(json.dumps({"moved": moved, "again": again, "captured": gpu.captured}))
gpu.close()
backend.close()
"""
    )
    out = scenario(code, model, cache)
    assert out["moved"], "the staging buffers did not move: nothing was tested"
    assert out["again"] == [True, True, True] and out["captured"], out
