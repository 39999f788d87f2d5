"""Page speed in a real browser with a large store: 1,000 jobs, 200 datasets and 100 eval runs (target: every page's
first render and every job-list refresh under 1.5 s).

bench_pages_speed.py times the script runs with AppTest; this one times what a user waits for in headless Chromium
against the real server: from the click on a sidebar link until the page's title is shown and the app is idle (three
visits per page, in a new browser session, the first visit cold), and two job-list refreshes: the list's own
3-second refresh (a fragment run, timed by the app's run state) and a user's switch to the next page of the list.

    python bench/bench_pages_browser.py [--jobs 1000 --datasets 200 --evals 100]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from bench_pages_speed import ACTIVE_JOBS, fill, store_size_args  # noqa: E402
from e2e.browser import (  # noqa: E402
    CHROMIUM,
    LAUNCH_ARGS,
    VIEWPORT,
    by_key,
    main,
    open_app,
    start_server,
    stop_server,
    wait_idle,
)
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from app.i18n import t  # noqa: E402

PAGES = {
    "jobs": ("nav.jobs", "jobs.title"),
    "datasets": ("nav.datasets", "datasets.title"),
    "configurator": ("nav.configurator", "configurator.title"),
    "surgery": ("nav.surgery", "surgery.title"),
    "evaluation": ("nav.evaluation", "evaluation.title"),
    "settings": ("nav.settings", "settings.title"),
}
VISITS = 3
# Records how long each script run takes, from the app's run-state attribute (fragment runs included).
RUN_TIMER = """() => {
  window.__runs = []; let began = null;
  const app = document.querySelector('[data-testid=stApp]');
  new MutationObserver(() => {
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running' && began === null) began = performance.now();
    if (state === 'notRunning' && began !== null) { window.__runs.push(performance.now() - began); began = null; }
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def first_render(page, page_name: str) -> float:
    """Seconds from the click on the page's sidebar link until its title is shown and the app is idle."""
    nav_key, title_key = PAGES[page_name]
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=t(nav_key, "en"))
    title = main(page).get_by_role("heading", name=t(title_key, "en"), exact=True)
    started = time.perf_counter()
    link.click()
    expect(link).to_have_attribute("aria-current", "page", timeout=60_000)
    expect(title).to_be_visible(timeout=60_000)
    wait_idle(page)
    return time.perf_counter() - started


def away(page, page_name: str) -> None:
    """Go to another page, so that the next visit draws `page_name` from scratch."""
    other = "settings" if page_name != "settings" else "configurator"
    first_render(page, other)


def list_refreshes(page, seconds: float = 10.0) -> list[float]:
    """Durations (s) of the job list's own refreshes (a fragment every 3 s) while the Jobs page stays open."""
    first_render(page, "jobs")
    page.evaluate(RUN_TIMER)
    page.wait_for_timeout(seconds * 1000)
    return [ms / 1000 for ms in page.evaluate("() => window.__runs")]


def list_page_switch(page, jobs: int) -> float:
    """Seconds from typing the list's page number 2 until the table shows that page (the next 50 jobs) and is idle."""
    away(page, "jobs")
    first_render(page, "jobs")
    field = by_key(page, "jobs_page").locator("input")
    table = main(page).get_by_test_id("stDataFrame")
    expect(field).to_have_value("1")
    expect(table).to_contain_text(f"bench-job-{jobs - 1}")  # the newest job heads page 1
    started = time.perf_counter()
    field.fill("2")
    field.press("Enter")
    expect(table).to_contain_text(f"bench-job-{jobs - 51}", timeout=60_000)  # the first row of page 2
    wait_idle(page)
    return time.perf_counter() - started


def main_bench() -> None:
    args = store_size_args()
    home = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    env = {**os.environ, "PLATFORM_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "platform_core", "demo", "init"], check=True, capture_output=True, env=env)
    fill(home, args.jobs, args.datasets, args.evals)
    from platform_core import settings
    from platform_core.context import get_platform

    settings.set_language(get_platform(home), "en")
    proc, url = start_server(home, home / "streamlit.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            open_app(page, url)  # the server's first script run imports pandas and plotly: not a page's cost
            times: dict[str, list[float]] = {}
            for _ in range(VISITS):
                for name in PAGES:
                    away(page, name)
                    times.setdefault(name, []).append(first_render(page, name))
            refreshes = list_refreshes(page)
            switches = [list_page_switch(page, args.jobs) for _ in range(VISITS)]
            browser.close()
    finally:
        stop_server(proc)

    print(
        f"store: {args.jobs} jobs ({ACTIVE_JOBS} running, with run files), {args.datasets} datasets, "
        f"{args.evals} eval runs; headless Chromium, {url}\n"
    )
    print(f"{'page':<14}{'first visit':>13}{'median':>10}{'max':>8}")
    worst = 0.0
    for name, values in times.items():
        worst = max(worst, max(values))
        print(f"{name:<14}{values[0]:>12.2f}s{statistics.median(values):>9.2f}s{max(values):>7.2f}s")
    print(
        f"\njob list, automatic refresh (every 3 s): {len(refreshes)} runs, median "
        f"{statistics.median(refreshes):.2f} s, max {max(refreshes):.2f} s"
        if refreshes
        else "\njob list, automatic refresh: no run seen"
    )
    print(f"job list, switch to page 2: median {statistics.median(switches):.2f} s, max {max(switches):.2f} s")
    worst = max([worst, *refreshes, *switches])
    print(f"\nslowest: {worst:.2f} s (target < 1.5 s)")


if __name__ == "__main__":
    main_bench()
