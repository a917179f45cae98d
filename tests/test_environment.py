"""environment.yml (conda, GPU users) and pyproject.toml must ask for the same things."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
USER_NAMED = {
    "tensorrt",
    "pycuda",
    "onnx",
    "onnxruntime-gpu",
    "numpy",
    "matplotlib",
    "jupyterlab",
    "ipywidgets",
}


def split(req: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)(.*)$", req.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def conda_env() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            if not item.startswith("-e"):
                name, spec = split(item)
                reqs[name] = spec.lstrip("=") if spec.startswith("=") and not spec.startswith("==") else spec
    return reqs


def project_reqs(*extras: str) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return dict(split(r) for r in reqs)


def test_every_gpu_and_notebook_requirement_is_in_the_conda_env_with_the_same_bounds():
    env = conda_env()
    for name, spec in project_reqs("gpu", "notebooks").items():
        assert name in env, f"{name} is in pyproject.toml but not in environment.yml"
        assert env[name] == spec, f"{name}: pyproject says {spec!r}, environment.yml {env[name]!r}"


def test_the_conda_env_asks_for_nothing_pyproject_does_not_know():
    known = project_reqs("gpu", "notebooks")
    extra = set(conda_env()) - set(known) - {"python", "pip"}
    assert not extra, f"environment.yml has {extra} that pyproject.toml lacks"


def test_packages_the_user_named_are_all_there():
    assert set(conda_env()) >= USER_NAMED


def test_cpu_and_gpu_onnxruntime_are_never_mixed():
    assert "onnxruntime" not in conda_env()
    assert "onnxruntime-gpu" not in project_reqs("cpu", "notebooks")
