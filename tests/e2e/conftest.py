"""Browser fixtures: the app served by a real Streamlit server on a fresh demo workspace, and headless Chromium.

`app` starts `streamlit run app/main.py` on a free port with PLATFORM_HOME pointing at a fresh copy of the demo
workspace (built by `python -m platform_core demo init`), waits for /_stcore/health, and at the end stops the
server's process group; the `demo_platform` fixture underneath then stops any training job the test left running.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, VIEWPORT, start_server, stop_server
from playwright.sync_api import expect, sync_playwright

# The machine is shared and trainers run beside the browser: give every expectation room.
expect.set_options(timeout=30_000)


@dataclass
class App:
    url: str
    home: Path
    log: Path


def _stop_tasks(platform) -> None:
    """Stop surgery/evaluation tasks a failed test left running (they hold a CPU)."""
    from platform_core.tasks import FINAL_STATES, stop_task

    for task in platform.store.find("tasks"):
        if task["state"] not in FINAL_STATES:
            try:
                stop_task(platform, task["id"])
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass


@pytest.fixture
def app(demo_platform, tmp_path):
    """The app served on a fresh demo workspace; jobs and tasks left running are stopped at the end."""
    home = demo_platform.workspace.root
    log = tmp_path / "streamlit.log"
    try:
        proc, url = start_server(home, log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield App(url, home, log)
    stop_server(proc)
    _stop_tasks(demo_platform)  # demo_platform's own teardown stops the training jobs


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A page 1400x1000; when the test fails, what it showed is saved as test-artifacts/e2e/FAILED-<test>.png."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()
