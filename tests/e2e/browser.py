"""Playwright helpers for driving the Streamlit app in Debian's headless Chromium (recipe: ../shared/reference/e2e.md).

The pattern that holds on a busy 2-core machine: act, then `expect()` the output the action should produce (it
retries), then `wait_idle()` before reading or screenshotting. Widgets are found by their Streamlit key
(`by_key(page, "cfg_gpu")`, the `.st-key-<key>` class) or by their translated label, never by position.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"  # git-ignored
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu"]
VIEWPORT = {"width": 1400, "height": 1000}
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
MAX_SCREENSHOT_HEIGHT = 3200  # keeps a long page's screenshot small enough for a README


# -- the server ---------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """Start the app on a free port for the workspace `home`; return the process and its URL once healthy."""
    port = free_port()
    env = {**os.environ, "PLATFORM_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"the app did not become healthy in 60 s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server's whole process group (it was started in a session of its own)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# -- driving the page ---------------------------------------------------------------------------------------------
def wait_idle(page: Page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the current script run (use after an expect(), never instead of one)."""
    page.wait_for_selector(IDLE, timeout=timeout)


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=60_000)
    wait_idle(page)


def main(page: Page) -> Locator:
    """The main area (everything right of the sidebar)."""
    return page.get_by_test_id("stMain")


def by_key(page: Page, key: str) -> Locator:
    """The element of the widget or container created with `key=`."""
    return page.locator(f".st-key-{key}")


def nav(page: Page, title: str) -> None:
    """Go to a page through the sidebar navigation (keeps the session)."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title)
    link.click()
    expect(link).to_have_attribute("aria-current", "page", timeout=30_000)
    expect(main(page).get_by_role("heading").first).to_be_visible()
    wait_idle(page)


def set_language(page: Page, label: str, nav_title: str) -> None:
    """Click the sidebar's language switch (`label` is "English" or "中文"); `nav_title` is a link text to expect."""
    page.get_by_test_id("stSidebar").get_by_text(label, exact=True).click()
    expect(page.get_by_test_id("stSidebarNav").get_by_role("link", name=nav_title)).to_be_visible()
    wait_idle(page)


def open_dropdown(page: Page, box: Locator) -> None:
    """Click a combobox until its list shows (a rerun that lands during the click can close it again)."""
    wait_idle(page)
    for _ in range(3):
        box.click()
        try:
            expect(page.get_by_role("listbox").first).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            wait_idle(page)
    expect(page.get_by_role("listbox").first).to_be_visible()


def choose(page: Page, key: str, option: str | re.Pattern, exact: bool = True) -> None:
    """Pick an option of a keyed selectbox (a react-aria combobox in Streamlit 1.67) and wait for the rerun."""
    choose_in(page, by_key(page, key).get_by_role("combobox"), option, exact)


def choose_in(page: Page, box: Locator, option: str | re.Pattern, exact: bool = True) -> None:
    """Pick an option of a selectbox given as its combobox locator (e.g. found by its label)."""
    open_dropdown(page, box)
    page.get_by_role("option", name=option, exact=exact if isinstance(option, str) else None).first.click()
    expected = option if isinstance(option, re.Pattern) else (option if exact else re.compile(re.escape(option)))
    expect(box).to_have_value(expected)
    wait_idle(page)


def choose_many(page: Page, key: str, options: list[str | re.Pattern]) -> None:
    """Add options, in this order, to a keyed multiselect."""
    box = by_key(page, key).get_by_role("combobox")
    for option in options:
        open_dropdown(page, box)
        page.get_by_role("option", name=option, exact=isinstance(option, str) or None).first.click()
        wait_idle(page)
    page.keyboard.press("Escape")
    wait_idle(page)


def click_key(page: Page, key: str) -> None:
    """Click the button created with `key=`."""
    by_key(page, key).get_by_role("button").first.click()


def fill_key(page: Page, key: str, value, enter: bool = True) -> None:
    """Type into a keyed text/number input; Enter commits it (leave it out inside a form)."""
    field = by_key(page, key).locator("input, textarea").first
    field.fill(str(value))
    if enter:
        field.press("Enter")
        expect(field).to_have_value(str(value))
        wait_idle(page)


def tab(page: Page, name: str) -> None:
    """Open a tab of the main area by its label."""
    tab_button = main(page).get_by_role("tab", name=name, exact=True)
    tab_button.click()
    expect(tab_button).to_have_attribute("aria-selected", "true")
    wait_idle(page)


def expand(page: Page, label: str) -> None:
    """Open an expander by its label (no-op when it is open)."""
    details = (
        main(page)
        .get_by_test_id("stExpander")
        .locator("details")
        .filter(has=page.locator(":scope > summary", has_text=label))
    )
    details = details.first
    if details.get_attribute("open") is None:
        details.locator(":scope > summary").click()
    expect(details).to_have_attribute("open", "")


def text_of_main(page: Page) -> str:
    return main(page).inner_text()


def text_of_page(page: Page) -> str:
    """The UI text of the main area and the sidebar: code blocks (logs, commands, configs) left out, since what a
    program printed is not a UI string."""
    return page.evaluate(
        """() => ['stMain', 'stSidebar'].map(id => {
            const area = document.querySelector(`[data-testid=${id}]`);
            if (!area) return '';
            const copy = area.cloneNode(true);
            copy.querySelectorAll('[data-testid=stCode]').forEach(node => node.remove());
            document.body.appendChild(copy);  // innerText needs a rendered node
            const text = copy.innerText;
            copy.remove();
            return text;
        }).join('\\n')"""
    )


def set_number(page: Page, label: str, value) -> None:
    """Type into the number input labelled `label` in the main area and commit it."""
    field = main(page).get_by_role("spinbutton", name=label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_idle(page)


def metric_value(page: Page, label: str) -> str:
    """The value shown by the st.metric labelled `label` in the main area."""
    return (
        main(page).get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue").inner_text()
    )


def full_screenshot(page: Page, path: Path, max_height: int = MAX_SCREENSHOT_HEIGHT) -> None:
    """A screenshot of the whole main area: Streamlit scrolls inside stMain, so grow the viewport to its height."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)  # no hover effects (Plotly's toolbar, tooltips) in the picture
    wait_idle(page)
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " if (!m) return 1000; m.scrollTop = 0; return m.scrollHeight; }"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 40, max_height))})
    page.wait_for_timeout(300)
    wait_idle(page)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# -- untranslated strings ------------------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("**", "").replace("`", "")).strip()


def english_only_patterns(strings: dict[str, dict[str, str]], min_words: int = 3) -> dict[str, re.Pattern]:
    """{key: pattern} for the UI strings whose English differs from their Chinese and has at least `min_words`
    words outside its {placeholders}: finding one in a Chinese page means a string was not translated."""
    patterns = {}
    for key, entry in strings.items():
        english = _normalise(entry["en"])
        if english == _normalise(entry["zh"]):
            continue
        pieces = re.split(r"\{[^}]*\}", english)
        if len(re.findall(r"[A-Za-z]+", " ".join(pieces))) < min_words:
            continue
        patterns[key] = re.compile(".{1,80}?".join(re.escape(piece) for piece in pieces if piece.strip()))
    return patterns


_CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]{4,}")


def chinese_only_patterns(strings: dict[str, dict[str, str]]) -> dict[str, re.Pattern]:
    """{key: pattern} of the longest run of 4+ CJK characters of each UI string's Chinese that its English lacks:
    finding one in an English page means a Chinese string leaked into the English UI."""
    patterns = {}
    for key, entry in strings.items():
        runs = [run for run in _CJK.findall(_normalise(entry["zh"])) if run not in entry["en"]]
        if runs:
            patterns[key] = re.compile(re.escape(max(runs, key=len)))
    return patterns


def english_leftovers(text: str, patterns: dict[str, re.Pattern]) -> list[str]:
    """The keys of the English-only UI strings found in a page's text."""
    shown = _normalise(text)
    return sorted(key for key, pattern in patterns.items() if pattern.search(shown))
