"""TensorRT lanes on a GPU, as a service runs them: 8 worker threads borrowing 4 lanes, under no
context, `pycuda.autoinit` and `pycuda.autoprimaryctx`, for v2, v3, graph, GPU stages and GPU
stages with a graph: every result equal to one thread's, the engine deserialised once.

Each setup runs in a fresh process (pycuda.autoinit changes the whole process). Needs TensorRT
(or trtemu, the API emulator, not TensorRT) with pycuda, CuPy for the GPU stages, and a GPU;
skipped by name elsewhere.
"""

from __future__ import annotations

import pytest
import test_trt_threads as threads
from conftest import named_model

pytestmark = threads.pytestmark  # TensorRT (or trtemu), pycuda and a GPU, skipped by name elsewhere

SCENARIO = """
{setup}
from helpers.images import read_image
from helpers.lanes import tensorrt_lanes
from helpers.samples import sample_path
from helpers.trt import engine as engine_module

METHOD, GPU_STAGES = {method!r}, {gpu_stages!r}
loads = []
deserialize = engine_module.deserialize
engine_module.deserialize = lambda *a: loads.append(a[1].name) or deserialize(*a)
frames = [read_image(sample_path(n)) for n in ("astronaut.png", "crowd48.png", "large_face.png")]
from concurrent.futures import ThreadPoolExecutor
pool = tensorrt_lanes(MODEL, 4, METHOD, gpu_stages=GPU_STAGES, cache_dir=CACHE, progress=False)
one = [pool.lanes[0].detect(f).to_json() for f in frames]  # one thread, one lane
with ThreadPoolExecutor(8) as workers:  # 8 threads borrowing 4 lanes
    many = [f.to_json() for f in workers.map(pool.detect, frames * 16)]
graphs = [
    lane.stages.captured if lane.stages is not None else lane.backend.runner.captured
    for lane in pool.lanes
]
contexts = len({{id(lane.backend.context) for lane in pool.lanes}})
streams = len({{lane.backend.stream_handle for lane in pool.lanes}})
engines = len({{id(lane.backend.loaded) for lane in pool.lanes}})
gpu_stages = [lane.stages is not None for lane in pool.lanes]
pool.close()
print(json.dumps({{
    "equal": many == one * 16, "faces": [len(f) for f in one], "loads": loads, "graphs": graphs,
    "gpu_stages": gpu_stages, "contexts": contexts, "streams": streams, "engines": engines,
    "closed": pool.lanes[0].backend.loaded.closed,
}}))
"""

SETUPS = {
    "no-context": "",
    "autoinit": "import pycuda.autoinit",
    "autoprimaryctx": "import pycuda.autoprimaryctx",
}
WAYS = [("v2", False), ("v3", False), ("graph", False), ("v3", True), ("graph", True)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize(
    ("method", "gpu_stages"), WAYS, ids=[f"{m}-{'gpu' if g else 'cpu'}" for m, g in WAYS]
)
def test_threads_over_tensorrt_lanes_give_one_threads_results(setup, method, gpu_stages, cache):
    code = SCENARIO.format(setup=SETUPS[setup], method=method, gpu_stages=gpu_stages)
    out = threads.scenario(code, named_model("scrfd_2.5g"), cache)
    assert out["equal"], out
    assert any(out["faces"])  # faces were compared, not only empty frames
    assert len(out["loads"]) == 1 and out["engines"] == 1  # one engine, deserialised once, four lanes
    assert out["contexts"] == 4 and out["streams"] == 4 and out["closed"]
    assert out["gpu_stages"] == [gpu_stages] * 4
    if method == "graph":
        assert all(out["graphs"]), out  # every lane replays a graph, not a silent fallback


BATCH_SCENARIO = """
import pycuda.autoinit
from concurrent.futures import ThreadPoolExecutor
from helpers.batch.batchify import batchify
from helpers.images import read_image
from helpers.lanes import tensorrt_lanes
from helpers.samples import sample_path
from helpers.trt.build import BuildOptions

names = ("astronaut.png", "crowd48.png", "large_face.png")
frames = [read_image(sample_path(n)) for n in names] * 4
options = BuildOptions(batch=(1, 4, 4), sizes=((1, 3, 640, 640),))
model = batchify(MODEL, cache_dir=CACHE)
pool = tensorrt_lanes(
    model, 2, {method!r}, gpu_stages={gpu_stages!r}, options=options, cache_dir=CACHE, progress=False
)
chunks = [frames[i : i + 4] for i in range(0, len(frames), 4)] + [frames[:3], frames[:1]]

def run(chunk):
    with pool.lane() as lane:
        return [d.faces.to_json() for d in lane.run_batch(chunk)]

one = [[d.faces.to_json() for d in pool.lanes[0].run_batch(c)] for c in chunks]  # one thread
with ThreadPoolExecutor(4) as workers:  # 4 threads borrowing 2 lanes, a batch per borrow
    many = list(workers.map(run, chunks * 3))
batch = pool.lanes[1].run_batch(frames[:3])
single = [pool.lanes[1].run(f) for f in frames[:3]]
gap = max(
    (float(np.abs(b.faces.boxes - s.faces.boxes).max()) for b, s in zip(batch, single) if len(s.faces)),
    default=0.0,
)
pool.close()
print(json.dumps({{
    "equal": many == one * 3, "faces": [len(s.faces) for s in single],
    "batch_faces": [len(b.faces) for b in batch], "box_gap_px": gap,
}}))
"""


@pytest.mark.parametrize(
    ("method", "gpu_stages"), [("v3", False), ("graph", True)], ids=["v3-cpu", "graph-gpu"]
)
def test_lanes_times_batch_give_one_threads_batches(method, gpu_stages, cache):
    """Lanes x batch, the service's two knobs together: batches from 4 threads over 2 lanes equal
    one thread's, and a batch's images their one-at-a-time runs (boxes within 0.5 px)."""
    code = BATCH_SCENARIO.format(method=method, gpu_stages=gpu_stages)
    out = threads.scenario(code, named_model("scrfd_2.5g"), cache)
    assert out["equal"], out
    assert out["batch_faces"] == out["faces"] and any(out["faces"]) and out["box_gap_px"] <= 0.5, out
