"""An engine cache that knows why a plan can or cannot be reused.

A TensorRT plan only runs with the TensorRT version and GPU it was built for, so the cache
key covers the ONNX bytes, TensorRT version, GPU name and compute capability, and every build
setting. Each `<name>.plan` has a `<name>.json` manifest; anything missing, damaged or
different means "rebuild" with a reason, never a crash. Writes are atomic (helpers.atomic).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.atomic import write_bytes, write_text
from helpers.trt.specs import Profile

MANIFEST_FORMAT = 1
_LABELS = {
    "onnx_sha256": "ONNX file (sha256)",
    "tensorrt_version": "TensorRT version",
    "gpu_name": "GPU",
    "compute_capability": "compute capability",
    "precision": "precision",
    "profile": "optimization profile",
    "opt_level": "builder optimization level",
    "workspace": "workspace limit (bytes)",
}


@dataclass(frozen=True)
class Target:
    """Where a plan runs: the facts a plan is tied to."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"

    def fields(self) -> dict[str, Any]:
        return {
            "tensorrt_version": self.tensorrt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
        }


@dataclass(frozen=True)
class BuildKey:
    """Everything that changes the plan a build produces."""

    onnx_sha256: str
    target: Target
    precision: str
    profile: Profile | None
    opt_level: int
    workspace: int | None  # None: TensorRT's default (the whole device)

    def fields(self) -> dict[str, Any]:
        return {
            "onnx_sha256": self.onnx_sha256,
            **self.target.fields(),
            "precision": self.precision,
            "profile": self.profile.to_json() if self.profile else None,
            "opt_level": self.opt_level,
            "workspace": self.workspace,
        }

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """The files of one cached engine."""

    plan: Path
    manifest: Path
    inspector: Path


@dataclass(frozen=True)
class Lookup:
    """A cache answer: the plan bytes on a hit, else None, and always a reason to show."""

    entry: CacheEntry
    plan: bytes | None
    reason: str


def describe_mismatch(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """One line per field where a plan's manifest differs from what is wanted now.

    `wanted` is `BuildKey.fields()` or, for a plan file given directly, `Target.fields()`.
    """
    have = manifest.get("key")
    if not isinstance(have, Mapping):
        return ["the manifest has no build key"]
    lines = []
    for field, want in wanted.items():
        if have.get(field) != want:
            label = _LABELS.get(field, field)
            lines.append(f"{label}: plan has {_short(have.get(field))}, wanted {_short(want)}")
    return lines


def _short(value: Any) -> str:
    text = "none" if value is None else json.dumps(value) if isinstance(value, dict) else str(value)
    return text[:12] if re.fullmatch(r"[0-9a-f]{64}", text) else text


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict[str, Any] | str:
    """The manifest as a dict, or a string saying why it cannot be used."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return "no manifest"
    except (OSError, ValueError) as exc:
        return f"manifest {path.name} is unreadable ({type(exc).__name__})"
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return f"manifest {path.name} has an unknown format"
    return data


def check_plan_file(entry: CacheEntry, manifest: Mapping[str, Any]) -> bytes | str:
    """The plan bytes if they match the manifest's size and checksum, else why not."""
    try:
        plan = entry.plan.read_bytes()
    except FileNotFoundError:
        return f"plan {entry.plan.name} is missing"
    recorded = manifest.get("plan")
    if not isinstance(recorded, Mapping):
        return f"manifest {entry.manifest.name} does not describe its plan"
    if len(plan) != recorded.get("bytes") or hashlib.sha256(plan).hexdigest() != recorded.get("sha256"):
        return f"plan {entry.plan.name} is damaged (size or checksum differs from its manifest)"
    return plan


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


class EngineCache:
    """A folder of plans, manifests, inspector reports and per-GPU timing caches."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry(self, key: BuildKey, model_stem: str) -> CacheEntry:
        base = self.root / f"{_slug(model_stem)}-{key.precision}-{key.digest()[:16]}"
        return CacheEntry(
            base.with_suffix(".plan"), base.with_suffix(".json"), base.with_name(base.name + ".layers.json")
        )

    def timing_cache(self, target: Target) -> Path:
        """One timing cache per TensorRT version and GPU, shared by all models (that is its point)."""
        gpu = _slug(f"{target.gpu_name}-sm{target.compute_capability}")
        return self.root / f"timing-trt{_slug(target.tensorrt_version)}-{gpu}.cache"

    def lookup(self, key: BuildKey, model_stem: str) -> Lookup:
        entry = self.entry(key, model_stem)
        manifest = read_manifest(entry.manifest)
        if isinstance(manifest, str):
            return Lookup(entry, None, self._explain_miss(key, model_stem, manifest))
        differences = describe_mismatch(manifest, key.fields())
        if differences:
            return Lookup(entry, None, "cached engine differs: " + "; ".join(differences))
        plan = check_plan_file(entry, manifest)
        if isinstance(plan, str):
            return Lookup(entry, None, plan)
        return Lookup(entry, plan, f"cached engine {entry.plan}")

    def _explain_miss(self, key: BuildKey, model_stem: str, why: str) -> str:
        """Say why an older plan of the same model does not fit (the "plan not compatible" case)."""
        if why != "no manifest":
            return why
        for other in sorted(self.root.glob(f"{_slug(model_stem)}-{key.precision}-*.json")):
            manifest = read_manifest(other)
            if isinstance(manifest, dict):
                differences = describe_mismatch(manifest, key.fields())
                if differences:
                    return f"no cached engine for these settings ({other.name}: {'; '.join(differences)})"
        return "no cached engine for these settings"

    def store(
        self, key: BuildKey, model_stem: str, plan: bytes, inspector_json: str | None = None
    ) -> CacheEntry:
        """Write plan, inspector report and manifest; the manifest last, so it marks a complete entry."""
        entry = self.entry(key, model_stem)
        write_bytes(entry.plan, plan)
        if inspector_json is not None:
            write_text(entry.inspector, inspector_json)
        manifest = {
            "format": MANIFEST_FORMAT,
            "model": model_stem,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "key": key.fields(),
            "plan": {
                "file": entry.plan.name,
                "bytes": len(plan),
                "sha256": hashlib.sha256(plan).hexdigest(),
            },
            "inspector": entry.inspector.name if inspector_json is not None else None,
        }
        write_text(entry.manifest, json.dumps(manifest, indent=2) + "\n")
        return entry


def plan_manifest(plan_path: Path) -> dict[str, Any] | str:
    """The manifest beside a plan given by path (`x.plan` -> `x.json`), or why there is none."""
    return read_manifest(plan_path.with_suffix(".json"))
