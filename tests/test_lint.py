"""`python -m helpers lint`: every rule fires at the right line on a bad snippet and not on its fix.

Expected findings are written into the snippets as `# LINT CODE` comments, so a test compares
the (line, code) pairs lint reports with the ones the snippet declares, both ways.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

from helpers.lint import RULES, lint_paths
from helpers.lint.engine import Source, lint_source, notebook_source

CASES = Path(__file__).parent / "lint_cases"
_MARK = re.compile(r"#\s*LINT((?:\s+TRT\d{3})+)")


def expected(code: str) -> set[tuple[int, str]]:
    return {
        (i, c)
        for i, line in enumerate(code.splitlines(), 1)
        if (m := _MARK.search(line))
        for c in m[1].split()
    }


def found(code: str) -> set[tuple[int, str]]:
    return {(f.line, f.code) for f in lint_source(Source("snippet.py", code))}


# (rule, bad snippet with its findings marked, its fixed twin: no finding at all)
PAIRS = {
    "TRT001 autoinit and a worker": (
        """
        import threading
        import pycuda.autoinit  # LINT TRT001
        import pycuda.driver as cuda

        def work():
            buf = cuda.mem_alloc(1024)  # LINT TRT002

        threading.Thread(target=work).start()
        """,
        """
        import threading
        import pycuda.autoinit
        import pycuda.driver as cuda

        def work():
            pycuda.autoinit.context.push()
            try:
                buf = cuda.mem_alloc(1024)
            finally:
                pycuda.autoinit.context.pop()

        threading.Thread(target=work).start()
        """,
    ),
    "TRT001 make_context, workers only read frames": (
        """
        from concurrent.futures import ThreadPoolExecutor
        import pycuda.driver as cuda

        cuda.init()
        ctx = cuda.Device(0).make_context()  # LINT TRT001

        def infer(frame):
            out = cuda.pagelocked_empty(16, "float32")  # LINT TRT002
            return out

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(infer, range(4)))
        """,
        """
        from concurrent.futures import ThreadPoolExecutor
        import pycuda.driver as cuda

        cuda.init()
        ctx = cuda.Device(0).make_context()

        def read(frame):
            return frame * 2

        with ThreadPoolExecutor(2) as pool:
            frames = list(pool.map(read, range(4)))
        out = cuda.pagelocked_empty(16, "float32")
        """,
    ),
    "TRT002 Thread subclass run()": (
        """
        import threading
        import pycuda.driver as cuda
        import pycuda.autoprimaryctx

        class Worker(threading.Thread):
            def __init__(self, engine):
                super().__init__()
                self.engine = engine

            def run(self):
                self.context = self.engine.create_execution_context()  # LINT TRT002
        """,
        """
        import threading
        import pycuda.driver as cuda

        class Worker(threading.Thread):
            def __init__(self, engine):
                super().__init__()
                self.engine = engine

            def run(self):
                import pycuda.autoprimaryctx
                self.context = self.engine.create_execution_context()
        """,
    ),
    "TRT002 a worker that only waits on a threading.Event": (
        """
        import threading
        import pycuda.driver as cuda

        def work(engine):
            stop = threading.Event()
            done = cuda.Event()  # LINT TRT002
            stop.wait()

        threading.Thread(target=work, args=(None,)).start()
        """,
        """
        import threading
        from threading import Event
        import pycuda.driver as cuda

        def work(engine):
            stop = threading.Event()
            other = Event()
            stop.wait()

        threading.Thread(target=work, args=(None,)).start()
        """,
    ),
    "TRT002 submit with the workbook's activate": (
        """
        import pycuda.driver as cuda

        def job(ctx, engine, image):
            stream = cuda.Stream()  # LINT TRT002
            return image

        def run(pool, ctx, engine, images):
            return [pool.submit(job, ctx, engine, im) for im in images]
        """,
        """
        import pycuda.driver as cuda

        def job(ctx, engine, image):
            with ctx.activate():
                stream = cuda.Stream()
                return image

        def run(pool, ctx, engine, images):
            return [pool.submit(job, ctx, engine, im) for im in images]
        """,
    ),
    "TRT003 engine shape into mem_alloc": (
        """
        import pycuda.driver as cuda
        import tensorrt as trt

        def allocate(engine, context, name):
            shape = engine.get_tensor_shape(name)
            n = trt.volume(shape)  # LINT TRT003
            return cuda.mem_alloc(n * 4)
        """,
        """
        import pycuda.driver as cuda
        import tensorrt as trt

        def allocate(engine, context, name):
            if not context.set_input_shape("input.1", (1, 3, 640, 640)):
                raise ValueError("shape outside the profile")
            shape = context.get_tensor_shape(name)
            return cuda.mem_alloc(trt.volume(shape) * 4)
        """,
    ),
    "TRT003 np.empty of engine shape": (
        """
        import numpy as np

        def host_buffers(engine, names):
            return [np.empty(tuple(engine.get_tensor_shape(n)), np.float32) for n in names]  # LINT TRT003
        """,
        """
        import numpy as np

        def host_buffers(engine, names):
            shapes = [engine.get_tensor_shape(n) for n in names]
            if any(-1 in s for s in shapes):
                raise ValueError("dynamic engine: size from the context")
            return [engine.get_tensor_profile_shape(n, 0)[2] for n in names]
        """,
    ),
    "TRT004 status dropped": (
        """
        import tensorrt as trt

        def run(context, stream, builder, network, config):
            context.set_input_shape("input.1", (1, 3, 640, 640))  # LINT TRT004
            context.execute_async_v3(stream.handle)  # LINT TRT004
            plan = builder.build_serialized_network(network, config)  # LINT TRT004
            with open("m.engine", "wb") as f:
                f.write(plan)
            runtime = trt.Runtime(trt.Logger())
            context = runtime.deserialize_cuda_engine(plan).create_execution_context()  # LINT TRT004
        """,
        """
        import tensorrt as trt

        def run(context, stream, builder, network, config):
            if not context.set_input_shape("input.1", (1, 3, 640, 640)):
                raise ValueError("shape")
            ok = context.execute_async_v3(stream.handle)
            assert ok, "enqueue failed"
            plan = builder.build_serialized_network(network, config)
            if plan is None:
                raise RuntimeError("build failed")
            with open("m.engine", "wb") as f:
                f.write(plan)
            return builder.build_serialized_network(network, config)
        """,
    ),
    "TRT005 cuda-python copy returned": (
        """
        from cuda.bindings import runtime as cudart

        def fetch(host, dev, nbytes, stream):
            kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            cudart.cudaMemcpyAsync(host.ctypes.data, dev, nbytes, kind, stream)
            return host  # LINT TRT005
        """,
        """
        from cuda.bindings import runtime as cudart

        def fetch(host, dev, nbytes, stream):
            kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            cudart.cudaMemcpyAsync(host.ctypes.data, dev, nbytes, kind, stream)
            cudart.cudaStreamSynchronize(stream)
            return host
        """,
    ),
    "TRT005 CuPy get(blocking=False)": (
        """
        import cupy as cp

        def scores(dev, stream):
            host = dev.get(stream=stream, blocking=False)
            print(host.shape)
            return host.max()  # LINT TRT005
        """,
        """
        import cupy as cp

        def scores(dev, stream):
            host = dev.get(stream=stream, blocking=False)
            print(host.shape)
            stream.synchronize()
            waited = dev.get(stream=stream)
            return host.max() + waited.max()
        """,
    ),
    "TRT006 TensorRT 8 names": (
        """
        import tensorrt as trt

        def old(engine, context, config, bindings, stream):
            config.max_workspace_size = 1 << 30  # LINT TRT006
            for i in range(engine.num_bindings):  # LINT TRT006
                print(engine.get_binding_name(i))  # LINT TRT006
            ok = context.execute_async_v2(bindings, stream.handle)  # LINT TRT006
            done = self.context.execute(1, bindings)  # LINT TRT006
        """,
        """
        import tensorrt as trt

        def new(engine, context, config, stream, settings, cursor):
            batch = settings.max_batch_size
            cursor.execute("select 1")
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
            for i in range(engine.num_io_tensors):
                print(engine.get_tensor_name(i))
            if hasattr(engine, "num_bindings"):
                print(engine.num_bindings)
            ok = context.execute_async_v3(stream.handle)
        """,
    ),
    "TRT007 TensorRT 10 names": (
        """
        import tensorrt as trt

        def fp16(builder, config, args):
            if builder.platform_has_fast_fp16:  # LINT TRT007
                config.set_flag(trt.BuilderFlag.FP16)  # LINT TRT007
            if args.fp16:
                config.set_flag(trt.BuilderFlag.INT8)  # LINT TRT007
        """,
        """
        import tensorrt as trt

        def fp16(builder, config, plan):
            if hasattr(trt.BuilderFlag, "FP16"):
                config.set_flag(trt.BuilderFlag.FP16)
            if plan.has_fp16_flag:
                config.set_flag(trt.BuilderFlag.FP16)
            config.set_flag(trt.BuilderFlag.TF32)
        """,
    ),
    "TRT008 default stream": (
        """
        import tensorrt as trt

        def run(context):
            handle = 0
            if not context.execute_async_v3(handle):  # LINT TRT008
                raise RuntimeError("enqueue")
            assert context.execute_async_v3(stream_handle=0)  # LINT TRT008
        """,
        """
        import pycuda.driver as cuda
        import tensorrt as trt

        def run(context):
            stream = cuda.Stream()
            if not context.execute_async_v3(stream.handle):
                raise RuntimeError("enqueue")
        """,
    ),
    "TRT009 SCRFD outputs by position": (
        """
        import onnxruntime as ort

        class SCRFD:
            _feat_stride_fpn = [8, 16, 32]

            def forward(self, session, blob):
                net_outs = session.run(None, {"input.1": blob})
                scores = net_outs[0]  # LINT TRT009
                for stride, out in zip(self._feat_stride_fpn, net_outs):  # LINT TRT009
                    print(stride, out)
                return scores
        """,
        """
        import onnxruntime as ort

        class SCRFD:
            _feat_stride_fpn = [8, 16, 32]

            def forward(self, session, blob):
                names = [o.name for o in session.get_outputs()]
                net_outs = session.run(None, {"input.1": blob})
                by_name = dict(zip(names, net_outs))
                for name in names:
                    print(by_name[name].shape)
                return by_name["score_8"]
        """,
    ),
    "TRT009 host output list of a TensorRT engine": (
        """
        class SCRFDTrt:
            def detect(self, blob, fmc=3):
                self.run(blob)
                net_outs = [out.reshape(-1, 4) for out in self.host_outputs]
                held = self.host_outputs
                score_8, score_16, score_32, *rest = held  # LINT TRT009
                return net_outs[fmc + 1]  # LINT TRT009
        """,
        """
        class SCRFDTrt:
            def detect(self, blob, layout):
                self.run(blob)
                net_outs = dict(zip(self.output_names, self.host_outputs))
                for name in layout.names:
                    print(net_outs[name].shape)
                return {n: net_outs[n] for n in self.output_names}
        """,
    ),
    "TRT009 (host, device) pairs appended per output": (
        """
        import pycuda.driver as cuda

        def scrfd_buffers(engine, names):
            outputs = []
            for name in names:
                host = cuda.pagelocked_empty(16, "float32")
                outputs.append((host, cuda.mem_alloc(host.nbytes)))
            return outputs[0][0]  # LINT TRT009
        """,
        """
        import pycuda.driver as cuda

        def scrfd_buffers(engine, names):
            outputs = {}
            for name in names:
                host = cuda.pagelocked_empty(16, "float32")
                outputs[name] = (host, cuda.mem_alloc(host.nbytes))
            return outputs["score_8"][0]
        """,
    ),
    "TRT005 cuda-python, the copy kind in a variable": (
        """
        from cuda.bindings import runtime as cudart

        def infer(inputs, outputs, stream, context):
            kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
            for inp in inputs:
                cudart.cudaMemcpyAsync(inp.device, inp.host, inp.nbytes, kind, stream)
            ok = context.execute_async_v3(stream)
            kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            for out in outputs:
                cudart.cudaMemcpyAsync(out.host, out.device, out.nbytes, kind, stream)
            return [out.host for out in outputs]  # LINT TRT005
        """,
        """
        from cuda.bindings import runtime as cudart

        def infer(inputs, outputs, stream, context):
            kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
            for inp in inputs:
                cudart.cudaMemcpyAsync(inp.device, inp.host, inp.nbytes, kind, stream)
                print(inp.device)
            ok = context.execute_async_v3(stream)
            kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            for out in outputs:
                cudart.cudaMemcpyAsync(out.host, out.device, out.nbytes, kind, stream)
            cudart.cudaStreamSynchronize(stream)
            return [out.host for out in outputs]
        """,
    ),
    "TRT003 NVIDIA's common.py refuses -1 itself": (
        """
        import tensorrt as trt

        def allocate(engine, name):
            shape = engine.get_tensor_shape(name)
            return trt.volume(shape)  # LINT TRT003
        """,
        """
        import numpy as np
        import tensorrt as trt

        def allocate(engine, name):
            shape = engine.get_tensor_shape(name)
            if not np.all([s >= 0 for s in shape]):
                raise ValueError(f"{name} has a dynamic shape: give a profile")
            return trt.volume(shape)
        """,
    ),
    "TRT005 a host array handed to more stream work is no read": (
        """
        import numpy as np
        import pycuda.driver as cuda

        def scores(host, dev, stream):
            cuda.memcpy_dtoh_async(host, dev, stream)
            return np.argmax(host)  # LINT TRT005
        """,
        """
        import numpy as np
        import pycuda.driver as cuda

        def scores(host, dev, other, stream):
            cuda.memcpy_dtoh_async(host, dev, stream)
            cuda.memcpy_htod_async(other, host, stream)
            stream.synchronize()
            return np.argmax(host)
        """,
    ),
    "TRT009 building an SCRFD-like graph is not reading outputs": (
        """
        def scrfd_outputs(session, blob):
            net_outs = session.run(None, {"input.1": blob})
            return net_outs[3]  # LINT TRT009
        """,
        """
        def scrfd_like(outputs, order):
            outputs = [outputs[i] for i in order]
            return outputs[0]
        """,
    ),
    "TRT010 cuda.init() alone": (
        """
        import pycuda.driver as cuda

        cuda.init()  # LINT TRT010
        d_input = cuda.mem_alloc(3 * 640 * 640 * 4)
        """,
        """
        import pycuda.driver as cuda

        cuda.init()
        ctx = cuda.Device(0).retain_primary_context()
        ctx.push()
        d_input = cuda.mem_alloc(3 * 640 * 640 * 4)
        """,
    ),
}


@pytest.mark.parametrize("case", PAIRS)
def test_bad_snippet_fires_at_its_lines(case):
    code = textwrap.dedent(PAIRS[case][0])
    assert expected(code), "the bad snippet declares no finding"
    assert found(code) == expected(code)


@pytest.mark.parametrize("case", PAIRS)
def test_fixed_twin_gets_no_finding(case):
    assert found(textwrap.dedent(PAIRS[case][1])) == set()


def test_every_rule_has_a_bad_snippet_and_an_explanation():
    fired = {c for bad, _ in PAIRS.values() for _, c in expected(textwrap.dedent(bad))}
    assert fired == set(RULES)
    for code, rule in RULES.items():
        text = rule.explain()
        assert text.startswith(code) and "notebooks/" in text and "fix:" in text


def test_correct_service_script_gets_no_finding():
    result = lint_paths([CASES / "correct_service.py"])
    assert result.findings == [] and result.errors == [] and result.status == 0


def test_the_workbooks_own_code_gets_no_finding():
    """helpers/ is written the way the notebooks teach (its FP16 flag is used only where the
    installed TensorRT has one); scripts/ and benchmarks/ drive it."""
    result = lint_paths([ROOT / "helpers", ROOT / "scripts", ROOT / "benchmarks"])
    assert result.errors == [] and [str(f) for f in result.findings] == []


def test_forum_script_flagged_at_the_right_lines():
    path = CASES / "forum_script.py"
    declared = expected(path.read_text())
    assert len({c for _, c in declared}) >= 7
    assert {(f.line, f.code) for f in lint_paths([path]).findings} == declared


def _notebook(tmp_path: Path, *cells: tuple[str, str]) -> Path:
    nb = {
        "cells": [{"cell_type": kind, "metadata": {}, "source": src.splitlines(True)} for kind, src in cells],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "mine.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_notebook_findings_map_to_cell_and_line(tmp_path):
    path = _notebook(
        tmp_path,
        ("markdown", "# My detector\n"),
        ("code", "!pip install pycuda\n%matplotlib inline\nimport threading\n"),
        ("code", "import pycuda.driver as cuda\nimport pycuda.autoinit\n"),
        ("code", "%%bash\necho not python (\n"),
        ("code", "def work():\n    x = 1\n    buf = cuda.mem_alloc(64)\n"),
        ("code", "threading.Thread(target=work).start()\nwork?\n"),
    )
    result = lint_paths([path])
    assert result.errors == []
    lines = [str(f).split(" (fix:")[0] for f in result.findings]
    assert [line.split(": ", 1)[0] for line in lines] == [f"{path}:cell 3:2:1", f"{path}:cell 5:3:11"]
    assert [f.code for f in result.findings] == ["TRT001", "TRT002"]


def test_notebook_syntax_error_names_the_cell(tmp_path):
    path = _notebook(tmp_path, ("code", "x = 1\n"), ("code", "y = 2\ndef (:\n"))
    [error] = lint_paths([path]).errors
    assert error.startswith(f"{path}:cell 2:2:") and "cannot parse" in error


def lint_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "helpers", "lint", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_exit_codes_and_one_line_errors(tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text("import tensorrt as trt\nprint(trt.__version__)\n")
    assert lint_cli(clean).returncode == 0
    bad = tmp_path / "bad.py"
    bad.write_text("import pycuda.driver as cuda\ncuda.init()\nd = cuda.mem_alloc(4)\n")
    result = lint_cli(clean, bad)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"{bad}:2:1: TRT010 ")
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    result = lint_cli(broken, bad, binary, tmp_path / "missing.py")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert str(broken) in errors[0] and "cannot parse" in errors[0]
    assert str(binary) in errors[1] and "cannot read" in errors[1]
    assert "missing.py" in errors[2]
    assert f"{bad}:2:1: TRT010" in result.stdout  # the good files are still linted


def test_cli_json_and_folders(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("import tensorrt as trt\nn = engine.num_bindings\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "b.py").write_text("import tensorrt as trt\nn = engine.num_bindings\n")
    result = lint_cli("--json", tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["status"] == 1 and report["errors"] == []
    [finding] = report["findings"]
    assert finding["path"].endswith("a.py") and (finding["line"], finding["code"]) == (2, "TRT006")
    assert finding["cell"] is None and "num_io_tensors" in finding["message"]


def test_cli_explain():
    result = lint_cli("--explain", "trt001")
    assert result.returncode == 0
    assert "notebooks/03_cuda_context_setup.ipynb" in result.stdout and "issues/4427" in result.stdout
    result = lint_cli("--explain", "TRT999")
    assert result.returncode == 2 and result.stderr.startswith("error: no lint rule")
    assert lint_cli().returncode == 2


def test_notebook_top_level_await_and_a_coding_line(tmp_path):
    path = _notebook(tmp_path, ("code", "import asyncio\nawait asyncio.sleep(0)\n"))
    assert lint_paths([path]).status == 0
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        "# -*- coding: latin-1 -*-\nname = 'caf\xe9'\nimport pycuda.driver as cuda\n".encode("latin-1")
    )
    latin.write_bytes(latin.read_bytes() + b"cuda.init()\nd = cuda.mem_alloc(4)\n")
    [finding] = lint_paths([latin]).findings
    assert (finding.line, finding.code) == (4, "TRT010")


def test_magics_keep_line_numbers():
    source = notebook_source(
        "n.ipynb",
        json.dumps({"cells": [{"cell_type": "code", "source": ["if True:\n", "    !ls\n", "x = 1\n"]}]}),
    )
    assert source.code.splitlines()[:3] == ["if True:", "    pass", "x = 1"]
    assert source.where(3) == (1, 3)


def test_doctor_explain_points_to_the_lint_rule():
    from helpers.cuda.explain import EXPLANATIONS, explain

    assert all(code in RULES for row in EXPLANATIONS for code in row.lint)
    [row] = explain("[TRT] [E] 1: [reformat.cpp] Cuda Runtime (invalid resource handle)")
    assert "lint --explain TRT001" in str(row)
    [row] = explain("AttributeError: 'ICudaEngine' object has no attribute 'get_binding_shape'")
    assert row.lint == ("TRT006",) and "TRT006" in str(row)
