"""The HTML report as a browser shows it: headless Chromium renders it offline, screenshots it and prints it."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from shared.report import build_report, render_html
from tests.unit.test_report import NOW, estate

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Everything that could reach the network or a profile outside the temporary directory is switched off.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def chromium() -> str:
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium not installed: apt-get install chromium")


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    path.write_text(render_html(build_report(estate(), NOW)), encoding="utf-8")
    return path


def _run(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium, *_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_screenshot_is_a_full_size_png(chromium: str, page: Path, tmp_path: Path):
    shot = tmp_path / "r.png"
    result = _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 1600)
    assert len(data) > 20_000  # a blank page compresses to a few kilobytes


def test_dom_has_the_summary_and_no_injected_script(chromium: str, page: Path, tmp_path: Path):
    result = _run(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert '<section id="summary">' in dom
    assert "57.1 %" in dom
    assert "4 of 7 eligible servers are covered" in dom
    assert "UserErrorMissingRequiredPermissions" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script" not in dom.lower()


def test_prints_to_pdf(chromium: str, page: Path, tmp_path: Path):
    pdf = tmp_path / "r.pdf"
    result = _run(chromium, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert pdf.read_bytes()[:5] == b"%PDF-"
