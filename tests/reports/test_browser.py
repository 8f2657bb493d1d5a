"""The HTML report in a real headless Chromium: charts render, the script runs, no table scrolls sideways at
1280 px, no console errors; the screenshot is kept under artifacts/ (CI uploads it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from processors.reports.html import to_html
from processors.reports.reconciliation import ReportRequest, build_report
from tests.conftest import git_root
from tests.reports.dataset import END, NOW, START

APT_LINE = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium"


def chromium() -> str:
    """Debian's chromium; installed here when missing and we are root, else the test fails loudly."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() == 0 and os.environ.get("SMSHOOKS_TEST_NO_INSTALL") != "1":
        subprocess.run(["bash", "-c", APT_LINE], check=False, timeout=900, capture_output=True)
        found = shutil.which("chromium")
        if found:
            return found
    pytest.fail(f"chromium is not installed; install it with: {APT_LINE}")


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run chromium headless, offline, with console messages logged to stderr."""
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_html_report_renders_in_chromium(loaded_sqlite, connect, tmp_path):
    binary = chromium()
    with connect(loaded_sqlite) as connection:
        request = ReportRequest(START, END, NOW, ("vendor", "day"))
        report = build_report(connection, loaded_sqlite, request)
        previous = build_report(connection, loaded_sqlite, request.earlier())
    page = tmp_path / "report.html"
    page.write_text(to_html(report, previous), encoding="utf-8")
    url = page.resolve().as_uri()

    dom = headless(binary, tmp_path / "profile-dom", "--window-size=1280,2000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="ok"' in dom.stdout and 'data-charts="3"' in dom.stdout and 'data-rows="4"' in dom.stdout
    # at a laptop's width no table needs a sideways scroll (p95, p99, clicks and opt-outs stay in view)
    assert 'data-overflow="0"' in dom.stdout
    assert dom.stdout.count("<polyline") == 2  # one delivery-rate line per vendor
    assert dom.stdout.count('class="point"') == 4
    assert dom.stdout.count('class="segment"') >= 5 and dom.stdout.count('class="bar"') == 9
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console

    artifacts = git_root() / "artifacts"
    artifacts.mkdir(exist_ok=True)
    screenshot = artifacts / "report.png"
    screenshot.unlink(missing_ok=True)
    shot = headless(binary, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1280,2000", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.exists() and screenshot.stat().st_size > 20_000
    assert [line for line in shot.stderr.splitlines() if "CONSOLE" in line] == []
