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
