"""The conda environments (one per CUDA major) and pyproject.toml must ask for the same things.

environment-cu12.yml and environment-cu13.yml each mirror pyproject's gpu-cuNN extra plus the
notebooks extra and pycuda (from conda-forge there, a binary; PyPI has only the source);
environment.yml is the CUDA 12 one, the name the layout asked for.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MAJORS = ("12", "13")
USER_NAMED = {"pycuda", "onnx", "onnxruntime-gpu", "numpy", "matplotlib", "jupyterlab", "ipywidgets"}
NVIDIA_INDEX = "--extra-index-url https://pypi.nvidia.com"


def split(req: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)(.*)$", req.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def env_file(major: str) -> dict:
    return yaml.safe_load((ROOT / f"environment-cu{major}.yml").read_text())


def conda_env(major: str) -> dict[str, str]:
    """Requirement name -> bounds, conda and pip sections together (options and -e skipped)."""
    reqs = {}
    for dep in env_file(major)["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            if not item.startswith("-"):
                name, spec = split(item)
                reqs[name] = spec.lstrip("=") if spec.startswith("=") and not spec.startswith("==") else spec
    return reqs


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def project_reqs(*extras: str) -> dict[str, str]:
    reqs = list(project()["dependencies"])
    for extra in extras:
        reqs += project()["optional-dependencies"][extra]
    return dict(split(r) for r in reqs)


@pytest.mark.parametrize("major", MAJORS)
def test_every_requirement_is_in_its_conda_env_with_the_same_bounds(major):
    env = conda_env(major)
    for name, spec in project_reqs(f"gpu-cu{major}", "notebooks", "pycuda").items():
        assert name in env, f"{name} is in pyproject.toml but not in environment-cu{major}.yml"
        assert env[name] == spec, f"{name}: pyproject says {spec!r}, environment-cu{major}.yml {env[name]!r}"


@pytest.mark.parametrize("major", MAJORS)
def test_the_conda_env_asks_for_nothing_pyproject_does_not_know(major):
    known = project_reqs(f"gpu-cu{major}", "notebooks", "pycuda")
    extra = set(conda_env(major)) - set(known) - {"python", "pip"}
    assert not extra, f"environment-cu{major}.yml has {extra} that pyproject.toml lacks"


@pytest.mark.parametrize("major", MAJORS)
def test_each_env_installs_its_own_extra_from_nvidias_index_and_pycuda_from_conda_forge(major):
    env = env_file(major)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert NVIDIA_INDEX in pip and f"-e .[gpu-cu{major},notebooks]" in pip
    assert env["channels"] == ["conda-forge"]
    assert any(str(d).startswith("pycuda") for d in env["dependencies"] if not isinstance(d, dict))
    assert not any(p.startswith("pycuda") for p in pip), "PyPI's pycuda is source only"


@pytest.mark.parametrize("major", MAJORS)
def test_each_gpu_extra_is_one_cuda_major(major):
    other = "13" if major == "12" else "12"
    names = set(project_reqs(f"gpu-cu{major}")) - set(project_reqs())
    assert {f"tensorrt-cu{major}", f"cupy-cuda{major}x", "cuda-python", "onnxruntime-gpu"} == names
    assert not any(other in n for n in names)
    cuda_python = project_reqs(f"gpu-cu{major}")["cuda-python"]
    assert f"<{int(major) + 1}" in cuda_python, "cuda-python must stay on the same CUDA major"


def test_environment_yml_is_the_cuda_12_environment():
    assert (ROOT / "environment.yml").read_text() == (ROOT / "environment-cu12.yml").read_text()


def test_gpu_is_an_alias_of_the_cuda_12_stack():
    assert project()["optional-dependencies"]["gpu"] == ["scrfd-trt-workbook[gpu-cu12]"]


def test_packages_the_user_named_are_all_there():
    for major in MAJORS:
        assert set(conda_env(major)) >= USER_NAMED
        assert any(n.startswith("tensorrt") for n in conda_env(major))


def test_cpu_and_gpu_onnxruntime_are_never_mixed():
    for major in MAJORS:
        assert "onnxruntime" not in conda_env(major)
    assert "onnxruntime-gpu" not in project_reqs("cpu", "notebooks", "dev")


SMI = """+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI {driver}              Driver Version: {driver}      CUDA Version: {cuda}     |
+-----------------------------------------+------------------------+----------------------+
"""


def _pick(tmp_path: Path, smi: str | None = None, major: str | None = None):
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    fake = bin_dir / "nvidia-smi"  # shadows a real one, so the test means the same on a GPU machine
    if smi is None:  # what nvidia-smi does without a working driver
        fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    else:
        fake.write_text(f"#!/bin/sh\ncat <<'END'\n{smi}END\n")
    fake.chmod(0o755)
    if major is not None:
        env["CUDA_MAJOR"] = major
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_extra.sh")],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.getcwd(),
    )


@pytest.mark.parametrize(
    ("driver", "cuda", "extra"),
    [
        ("535.183.01", "12.2", "gpu-cu12"),
        ("575.57.08", "12.9", "gpu-cu12"),
        ("580.65.06", "13.0", "gpu-cu13"),
    ],
)
def test_setup_picks_the_extra_by_the_drivers_cuda_major(tmp_path, driver, cuda, extra):
    result = _pick(tmp_path, SMI.format(driver=driver, cuda=cuda))
    assert (result.returncode, result.stdout.strip()) == (0, extra), result.stderr
    assert extra in project()["optional-dependencies"]


def test_cuda_major_overrides_the_driver(tmp_path):
    result = _pick(tmp_path, SMI.format(driver="580.65.06", cuda="13.0"), major="12")
    assert result.stdout.strip() == "gpu-cu12"


@pytest.mark.parametrize(
    ("smi", "major", "text"),
    [
        (None, None, "nvidia-smi found no NVIDIA driver"),
        (SMI.format(driver="470.82.01", cuda="11.4"), None, "supports CUDA 11"),
        ("no version here", None, "no 'CUDA Version'"),
    ],
)
def test_no_usable_driver_is_one_line(tmp_path, smi, major, text):
    result = _pick(tmp_path, smi, major)
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and text in line


def test_onnxruntime_gpu_loads_its_cuda_wheels_once_before_a_cuda_session(monkeypatch):
    """onnxruntime-gpu[cuda,cudnn] brings CUDA as wheels, which ORT finds only after preload_dlls."""
    import sys
    import types

    from helpers import ort_backend

    calls = []

    class Session:
        def __init__(self, path, options, providers):
            self.providers = providers

        def get_providers(self):
            return self.providers

    def fake(providers):
        module = types.ModuleType("onnxruntime")
        module.set_default_logger_severity = lambda level: None
        module.get_available_providers = lambda: providers
        module.SessionOptions = types.SimpleNamespace
        module.InferenceSession = Session
        module.preload_dlls = lambda: calls.append("preload")
        return module

    ort_backend.load_cuda_libraries.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", fake(["CPUExecutionProvider"]))
    ort_backend.OnnxRuntimeBackend("m.onnx")
    assert calls == []
    monkeypatch.setitem(sys.modules, "onnxruntime", fake(["CUDAExecutionProvider", "CPUExecutionProvider"]))
    ort_backend.OnnxRuntimeBackend("m.onnx")
    ort_backend.OnnxRuntimeBackend("m.onnx")
    assert calls == ["preload"]
    ort_backend.load_cuda_libraries.cache_clear()
