"""The pipeline's report as people open it: in the Prefect UI of a real server on loopback,
rendered by headless Chromium, every plot must load (not a broken image)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlwf.rehearsal.stage import PrefectServer

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def ui_server(tmp_path: Path) -> Iterator[PrefectServer]:
    server = PrefectServer.start(tmp_path / "prefect", ui=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,2000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_plots_render_in_the_prefect_ui(ui_server: PrefectServer, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    env = {**os.environ, "PREFECT_API_URL": ui_server.url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    run = subprocess.run(
        [sys.executable, "-m", "mlwf.cli", "demo", "--output", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    # With a Prefect API that has a UI, the demo says where its flow run is.
    assert f"flow run  {ui_server.ui_url}/flow-runs/flow-run/" in run.stdout

    artifacts = httpx.post(
        f"{ui_server.url}/artifacts/filter", json={"artifacts": {"key": {"any_": ["storm-damage-report"]}}}
    )
    artifacts.raise_for_status()
    (artifact,) = artifacts.json()
    browser.get(f"{ui_server.ui_url}/artifacts/artifact/{artifact['id']}")  # type: ignore[attr-defined]

    def plots_loaded(driver: object) -> list[dict[str, object]] | bool:
        images = driver.execute_script(  # type: ignore[attr-defined]
            "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
        )
        plots = [i for i in images if i["alt"] in ("ROC and PR curves", "Drift of each input (PSI)")]
        return plots if len(plots) == 2 and all(i["complete"] for i in plots) else False

    plots = WebDriverWait(browser, 60).until(plots_loaded)
    assert all(int(p["width"]) > 0 for p in plots), plots
