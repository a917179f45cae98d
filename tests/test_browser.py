"""Notebook 07 in a real browser: JupyterLab runs it, Chromium shows the explorer, its sliders redraw it.

The unit tests prove the numbers; this proves the reader's path: the widgets
render in JupyterLab, the kernel answers them, the figure really changes, and in a
1400x900 window with the file browser open the figure and its controls are in view
together. Screenshots land in artifacts/browser/; with UPDATE_DOCS_SHOT=1 the window also
replaces docs/explorer.png (a plain test run leaves the checkout clean).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, model_dir

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOTEBOOK = "notebooks/07_interactive_score_maps.ipynb"
ARTIFACTS = ROOT / "artifacts" / "browser"
DOCS_SHOT = ROOT / "docs" / "explorer.png"
DOCS_LIMIT = 300_000
# Settings that keep every cell in the DOM and keep the news prompt off the page.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}
START_S, RUN_S, REDRAW_S = 60, 90, 30
# A common laptop window, with JupyterLab's file browser open beside the notebook.
VIEWPORT = {"width": 1400, "height": 900}
# What the reader must see at once: the picture and the controls that change it.
IN_VIEW = (
    "img.scrfd-figure",
    ".scrfd-image",
    ".scrfd-stride",
    ".scrfd-threshold",
    ".scrfd-nms",
    ".scrfd-cell",
)
# JupyterLab renders a cell's exception as a stderr-typed output that holds the traceback.
ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_dirs(tmp: Path) -> dict[str, str]:
    """A private Jupyter config/data/runtime/settings tree, so the user's own setup cannot interfere."""
    dirs = {k: tmp / k.lower() for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")}
    settings = tmp / "lab-settings"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    dirs["JUPYTERLAB_SETTINGS_DIR"] = settings
    dirs["JUPYTERLAB_WORKSPACES_DIR"] = tmp / "workspaces"
    return {k: str(v) for k, v in dirs.items()}


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {START_S} s:\n{log.read_text()[-2000:]}")


@dataclass(frozen=True)
class Lab:
    base: str
    token: str

    @property
    def notebook(self) -> str:
        return f"{self.base}/lab/tree/{NOTEBOOK}?token={self.token}"

    def kernel_ready(self) -> bool:
        """The notebook's kernel is idle with the page's websocket attached: Run All will reach it.

        The toolbar's indicator says idle before the kernel is even attached, so it cannot tell.
        """
        with urllib.request.urlopen(f"{self.base}/api/sessions?token={self.token}", timeout=5) as response:
            sessions = json.load(response)
        return any(
            s["path"].endswith(NOTEBOOK)
            and s["kernel"]["execution_state"] == "idle"
            and s["kernel"].get("connections", 0) > 0
            for s in sessions
        )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on a free local port over a copy of the notebooks."""
    if not CHROMIUM.is_file():
        pytest.skip("Chromium not installed: apt-get install chromium")
    models = model_dir()
    root = tmp_path / "root"
    shutil.copytree(
        ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, **_lab_dirs(tmp_path), "SCRFD_MODEL_DIR": str(models)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.extension_manager=readonly",  # no PyPI queries from a test
        *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/api/status?token={token}", proc, log)
        yield Lab(base, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _changed_fraction(a: bytes, b: bytes) -> float:
    """Share of pixels that differ visibly between two screenshots of the same element."""
    one, two = (cv2.imdecode(np.frombuffer(x, np.uint8), cv2.IMREAD_COLOR) for x in (a, b))
    assert one.shape == two.shape, f"screenshots differ in size: {one.shape} vs {two.shape}"
    return float((np.abs(one.astype(np.int16) - two).max(axis=2) > 16).mean())


def _redrawn(page, old_src: str) -> None:
    """Wait until the figure's image was replaced and has loaded."""
    page.wait_for_function(
        "old => { const img = document.querySelector('img.scrfd-figure');"
        " return img && img.src !== old && img.complete && img.naturalWidth > 0; }",
        arg=old_src,
        timeout=REDRAW_S * 1000,
    )


def _choose(page, action: Callable[[], object]) -> None:
    """Do one thing to a control, then wait for the kernel's redraw to arrive."""
    old = page.locator("img.scrfd-figure").get_attribute("src") or ""
    action()
    _redrawn(page, old)


def _type_into(page, readout, text: str) -> None:
    """Replace a slider's editable readout, as a reader would type a value."""
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def _run_all(page, lab: Lab) -> None:
    """Run > Run All Cells once the kernel is attached (clicked earlier, JupyterLab runs nothing)."""
    deadline = time.monotonic() + START_S
    while not lab.kernel_ready():
        assert time.monotonic() < deadline, f"the notebook's kernel was not ready within {START_S} s"
        page.wait_for_timeout(250)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
        f" const failed = document.querySelectorAll({json.dumps(ERROR_OUTPUT)}).length > 0;"
        " return failed || (p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent))); }",
        timeout=RUN_S * 1000,
    )


def _small_png(png: bytes, limit: int) -> bytes:
    """Shrink a screenshot until it fits the README's size budget."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    while len(png) > limit:
        image = cv2.resize(image, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)
        png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    return png


def _no_errors(page) -> None:
    errors = page.locator(ERROR_OUTPUT)
    assert errors.count() == 0, f"a notebook cell raised: {errors.first.inner_text()[-600:]}"


def _open_file_browser(page) -> None:
    """Show the file browser in the left sidebar, as a reader usually has it."""
    panel = page.locator("#filebrowser")
    if not panel.is_visible():
        page.locator(".jp-SideBar.jp-mod-left [data-id='filebrowser']").click()
    panel.wait_for(state="visible")


# Scrolls the explorer's top to the top of the notebook's scroller, then lists the selectors
# whose box is not wholly inside what that scroller shows of the window.
OUT_OF_VIEW_JS = """selectors => {
    const explorer = document.querySelector('.scrfd-explorer');
    explorer.scrollIntoView({block: 'start'});
    let box = explorer.parentElement;
    while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
    const v = box.getBoundingClientRect();
    const top = Math.max(v.top, 0), bottom = Math.min(v.bottom, window.innerHeight);
    const left = Math.max(v.left, 0), right = Math.min(v.right, window.innerWidth);
    const inside = r => r.width > 0 && r.top >= top - 1 && r.bottom <= bottom + 1
        && r.left >= left - 1 && r.right <= right + 1;
    const show = r => `x ${r.left | 0}-${r.right | 0}, y ${r.top | 0}-${r.bottom | 0}`;
    return selectors
        .map(s => [s, document.querySelector(s).getBoundingClientRect()])
        .filter(([s, r]) => !inside(r))
        .map(([s, r]) => `${s} at ${show(r)} of x ${left | 0}-${right | 0}, y ${top | 0}-${bottom | 0}`);
}"""


def _out_of_view(page) -> list[str]:
    """IN_VIEW elements the reader cannot see together with the rest, at the best scroll position."""
    return page.evaluate(OUT_OF_VIEW_JS, list(IN_VIEW))


def _drive(page, lab: Lab) -> tuple[bytes, bytes, bytes, bytes]:
    """Run the notebook, then change image, threshold and stride; screenshots after each redraw,
    and of the whole window as the reader sees the explorer (for the README)."""
    page.goto(lab.notebook)
    _run_all(page, lab)
    _no_errors(page)
    _open_file_browser(page)
    figure = page.locator("img.scrfd-figure")
    page.locator(".scrfd-explorer").scroll_into_view_if_needed()
    _redrawn(page, "")
    _choose(page, lambda: page.locator(".scrfd-image select").select_option("crowd48.png"))
    hidden = _out_of_view(page)
    window = page.screenshot(path=ARTIFACTS / "00_window.png")
    assert not hidden, f"at {VIEWPORT} with the file browser open, not in view together: {hidden}"
    start = figure.screenshot(path=ARTIFACTS / "01_crowd.png")
    status = page.locator(".scrfd-status").inner_text()

    readout = page.locator(".scrfd-threshold .widget-readout")
    _choose(page, lambda: _type_into(page, readout, "0.10"))
    lowered = figure.screenshot(path=ARTIFACTS / "02_threshold.png")
    assert readout.inner_text().strip() == "0.10"
    assert page.locator(".scrfd-status").inner_text() != status, (
        "the face counts did not follow the threshold"
    )

    active = page.locator(".scrfd-stride button.mod-active").inner_text().strip()
    other = page.locator(".scrfd-stride").get_by_role(
        "button", name="8" if active != "8" else "16", exact=True
    )
    _choose(page, other.click)
    restrided = figure.screenshot(path=ARTIFACTS / "03_stride.png")
    _no_errors(page)
    return start, lowered, restrided, window


def test_explorer_redraws_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(RUN_S * 1000)
        try:
            start, lowered, restrided, window = _drive(page, lab)
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png")
            (ARTIFACTS / "failure.html").write_text(page.content())
            raise
        finally:
            browser.close()

    assert _changed_fraction(start, lowered) > 0.002, "the threshold slider did not change the figure"
    assert _changed_fraction(lowered, restrided) > 0.05, "the stride selector did not change the figure"
    shot = _small_png(window, DOCS_LIMIT)
    (ARTIFACTS / "window.png").write_bytes(shot)
    if os.environ.get("UPDATE_DOCS_SHOT") == "1":
        DOCS_SHOT.write_bytes(shot)
