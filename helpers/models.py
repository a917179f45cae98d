"""Where models come from: a folder named by SCRFD_MODEL_DIR, or data/models filled by `fetch` or `link`.

`link` puts symlinks to a folder's models into data/models (setup.sh does it once for the
folder SCRFD_MODEL_DIR names), so later commands, notebooks and tests find them without the
variable. insightface publishes its SCRFD detectors inside model packs (zips) on its
GitHub releases; `fetch` downloads a pack, checks both the zip and the
detector inside against pinned SHA-256 values, and writes the detector
atomically, so a broken download never leaves a model behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers.atomic import write_bytes
from helpers.errors import UserError

ENV = "SCRFD_MODEL_DIR"
PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = PROJECT_DIR / "data" / "models"
ENGINES_DIR = PROJECT_DIR / "data" / "engines"  # git-ignored: engines and batchable copies of models
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
    return Path(env) if env else LOCAL_DIR


def onnx_in(folder: Path) -> list[Path]:
    """The .onnx files in `folder` (a broken link is no model); empty when there are none."""
    return sorted(p for p in folder.glob("*.onnx") if p.is_file()) if folder.is_dir() else []


def _none_found(folder: Path) -> UserError:
    named = f"{ENV}={folder}" if os.environ.get(ENV) == str(folder) else str(folder)
    where = f"{named} is not a folder" if not folder.is_dir() else f"no .onnx models in {named}"
    broken = [p.name for p in folder.glob("*.onnx") if not p.is_file()] if folder.is_dir() else []
    also = f" (broken links: {', '.join(broken)}; link them again)" if broken else ""
    return UserError(
        f"{where}{also}; run `python -m helpers models fetch` or set {ENV} to a folder of SCRFD exports"
    )


def available() -> list[Path]:
    """The models of the model folder; a one-line UserError saying how to get some when there are none."""
    found = onnx_in(model_dir())
    if not found:
        raise _none_found(model_dir())
    return found


def link(source: Path, dest: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Symlink every .onnx of `source` into `dest` (data/models): (linked, kept). A real file
    already in `dest` under the same name is kept; an old link is replaced (atomically)."""
    dest = dest or LOCAL_DIR
    source = source.expanduser().resolve()
    found = onnx_in(source)
    if not found:
        raise _none_found(source)
    if dest.resolve() == source:
        return [], found
    dest.mkdir(parents=True, exist_ok=True)
    linked, kept = [], []
    for model in found:
        target = dest / model.name
        if target.exists() and not target.is_symlink():
            kept.append(target)
            continue
        tmp = dest / f".{model.name}.{uuid.uuid4().hex[:8]}.link"
        tmp.symlink_to(model)
        os.replace(tmp, target)
        linked.append(target)
    return linked, kept


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
    return min(available(), key=_rank)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(pack: Pack, target: Path, opener: Callable[[str], io.IOBase]) -> bytes:
    try:
        with opener(pack.url) as response:
            return response.read()
    except OSError as exc:
        raise UserError(
            f"download of {pack.url} failed ({exc}); check the network, or download that zip by hand "
            f"and put the {pack.member} inside it at {target}, or set {ENV} to a folder of SCRFD .onnx files"
        ) from None


def fetch(
    pack: Pack,
    dest: Path | None = None,
    opener: Callable[[str], io.IOBase] = urllib.request.urlopen,
) -> Path:
    """Download `pack`, verify zip and detector checksums, write the detector atomically."""
    target = (dest or model_dir()) / f"{pack.name}.onnx"
    if target.is_file() and sha256(target.read_bytes()) == pack.sha256:
        return target
    blob = _download(pack, target, opener)
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
