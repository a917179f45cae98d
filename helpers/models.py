"""Where models come from: a folder named by SCRFD_MODEL_DIR, or data/models filled by `fetch`.

insightface publishes its SCRFD detectors inside model packs (zips) on its
GitHub releases; `fetch` downloads a pack, checks both the zip and the
detector inside against pinned SHA-256 values, and writes the detector
atomically, so a broken download never leaves a model behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers.atomic import write_bytes
from helpers.errors import UserError

ENV = "SCRFD_MODEL_DIR"
PROJECT_DIR = Path(__file__).resolve().parent.parent
RELEASES = "https://github.com/deepinsight/insightface/releases/download/v0.7"
# Bigger detectors first: the default is the most accurate model the folder holds.
PREFERENCE = ("det_10g", "scrfd_10g_bnkps", "det_2.5g", "scrfd_2.5g", "det_500m", "scrfd_500m")


@dataclass(frozen=True)
class Pack:
    """One insightface model pack and the SCRFD detector inside it."""

    name: str  # the detector's name in the model folder
    zip_name: str
    member: str  # file name of the detector inside the zip
    zip_sha256: str
    sha256: str
    zip_bytes: int

    @property
    def url(self) -> str:
        return f"{RELEASES}/{self.zip_name}"


CATALOGUE = {
    p.name: p
    for p in (
        Pack(
            "det_500m",
            "buffalo_sc.zip",
            "det_500m.onnx",
            "57d31b56b6ffa911c8a73cfc1707c73cab76efe7f13b675a05223bf42de47c72",
            "5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a",
            14_969_382,
        ),
        Pack(
            "det_2.5g",
            "buffalo_m.zip",
            "det_2.5g.onnx",
            "d98264bd8f2dc75cbc2ddce2a14e636e02bb857b3051c234b737bf3b614edca9",
            "041f73f47371333d1d17a6fee6c8ab4e6aecabefe398ff32cca4e2d5eaee0af9",
            275_951_529,
        ),
        Pack(
            "det_10g",
            "buffalo_l.zip",
            "det_10g.onnx",
            "80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f",
            "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
            288_621_354,
        ),
    )
}
DEFAULT_FETCH = "det_500m"


def model_dir() -> Path:
    env = os.environ.get(ENV)
    return Path(env) if env else PROJECT_DIR / "data" / "models"


def available() -> list[Path]:
    folder = model_dir()
    return sorted(folder.glob("*.onnx")) if folder.is_dir() else []


def _rank(path: Path) -> tuple[int, str]:
    stem = path.stem
    return (PREFERENCE.index(stem) if stem in PREFERENCE else len(PREFERENCE), stem)


def resolve(model: str | None) -> Path:
    """A model path from an explicit path, a bare name in the model folder, or the default."""
    if model:
        path = Path(model)
        if path.exists() or path.suffix == ".onnx" or os.sep in model:
            if not path.is_file():
                raise UserError(f"model {model} does not exist or is not a file; check the path")
            return path
        named = model_dir() / f"{model}.onnx"
        if named.is_file():
            return named
        raise UserError(f"no model named {model!r} in {model_dir()}; run `python -m helpers models list`")
    found = available()
    if not found:
        raise UserError(
            f"no .onnx models in {model_dir()}; run `python -m helpers models fetch` "
            f"or set {ENV} to a folder of SCRFD exports"
        )
    return min(found, key=_rank)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str, opener: Callable[[str], io.IOBase]) -> bytes:
    try:
        with opener(url) as response:
            return response.read()
    except OSError as exc:
        raise UserError(f"download of {url} failed ({exc}); check the network or fetch it by hand") from None


def fetch(
    pack: Pack,
    dest: Path | None = None,
    opener: Callable[[str], io.IOBase] = urllib.request.urlopen,
) -> Path:
    """Download `pack`, verify zip and detector checksums, write the detector atomically."""
    target = (dest or model_dir()) / f"{pack.name}.onnx"
    if target.is_file() and sha256(target.read_bytes()) == pack.sha256:
        return target
    blob = _download(pack.url, opener)
    if sha256(blob) != pack.zip_sha256:
        raise UserError(f"{pack.zip_name} failed its SHA-256 check; the download is corrupt, try again")
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        names = [n for n in archive.namelist() if Path(n).name == pack.member]
        if not names:
            raise UserError(f"{pack.zip_name} holds no {pack.member}; the pack changed upstream")
        model = archive.read(names[0])
    if sha256(model) != pack.sha256:
        raise UserError(f"{pack.member} in {pack.zip_name} failed its SHA-256 check; not written")
    return write_bytes(target, model)
