"""Notebook 07 in a real browser: JupyterLab runs it, Chromium shows the explorer, its sliders redraw it.

The unit tests prove the numbers; this proves the reader's path: the widgets
render in JupyterLab, the kernel answers them, and the figure really changes.
Screenshots land in artifacts/browser/ (for CI) and one in docs/explorer.png.
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
from collections.abc import Iterator
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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on a free local port over a copy of the notebooks; yields the notebook's URL."""
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
        yield f"{base}/lab/tree/{NOTEBOOK}?token={token}"
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


def _src(page) -> str:
    return page.locator("img.scrfd-figure").get_attribute("src") or ""


def _run_all(page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
        " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
        timeout=RUN_S * 1000,
    )


def _small_png(png: bytes, limit: int) -> bytes:
    """Shrink a screenshot until it fits the README's size budget."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    while len(png) > limit:
        image = cv2.resize(image, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)
        png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    return png


def test_explorer_redraws_in_jupyterlab(lab: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(RUN_S * 1000)
            page.goto(lab)
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            _run_all(page)
            assert (
                page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                .filter(has_text="Error")
                .count()
                == 0
            )
            assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0, (
                "a cell raised"
            )

            figure = page.locator("img.scrfd-figure")
            figure.scroll_into_view_if_needed()
            _redrawn(page, "")
            start = figure.screenshot(path=ARTIFACTS / "01_start.png")
            status = page.locator(".scrfd-status").inner_text()

            src = _src(page)
            readout = page.locator(".scrfd-threshold .widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("0.10")
            page.keyboard.press("Enter")
            _redrawn(page, src)
            lowered = figure.screenshot(path=ARTIFACTS / "02_threshold.png")
            assert readout.inner_text().strip() == "0.10"
            assert page.locator(".scrfd-status").inner_text() != status, "the face counts did not follow"

            src = _src(page)
            active = page.locator(".scrfd-stride button.mod-active").inner_text().strip()
            other = "8" if active != "8" else "32"
            page.locator(".scrfd-stride").get_by_role("button", name=other, exact=True).click()
            _redrawn(page, src)
            restrided = figure.screenshot(path=ARTIFACTS / "03_stride.png")
            explorer = page.locator(".scrfd-explorer").screenshot(path=ARTIFACTS / "04_explorer.png")
        finally:
            browser.close()

    assert _changed_fraction(start, lowered) > 0.002, "the threshold slider did not change the figure"
    assert _changed_fraction(lowered, restrided) > 0.02, "the stride selector did not change the figure"
    DOCS_SHOT.parent.mkdir(exist_ok=True)
    DOCS_SHOT.write_bytes(_small_png(explorer, DOCS_LIMIT))
