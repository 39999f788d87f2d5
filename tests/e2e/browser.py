"""Playwright helpers for driving the Streamlit app in Debian's headless Chromium (recipe: ../shared/reference/e2e.md)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

CHROMIUM = "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'


def wait_idle(page: Page, timeout: float = 30_000) -> None:
    """Wait until Streamlit has finished the current script run (use after an expect(), never instead of one)."""
    page.wait_for_selector(IDLE, timeout=timeout)


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    wait_idle(page, 60_000)


def nav(page: Page, title: str) -> None:
    """Go to a page through the sidebar navigation (keeps the session)."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title)
    link.click()
    expect(link).to_have_attribute("aria-current", "page", timeout=30_000)
    wait_idle(page)


def select_option(page: Page, label: str, option: str, exact: bool = True, scope=None) -> None:
    """Pick an option of a Streamlit 1.67 selectbox (a react-aria combobox) by its label."""
    root = scope or page
    root.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=exact).click()
    wait_idle(page)


def button(page: Page, name: str, scope=None, exact: bool = True):
    root = scope or page
    return root.get_by_role("button", name=name, exact=exact)


def click(page: Page, name: str, scope=None, exact: bool = True) -> None:
    button(page, name, scope, exact).first.click()


def fill(page: Page, label: str, value: str, scope=None) -> None:
    """Type into a text/number input by its label and commit it (Enter)."""
    root = scope or page
    field = root.get_by_label(label, exact=True).first
    field.fill(str(value))
    field.press("Enter")
    wait_idle(page)


def tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    wait_idle(page)


def text_of_main(page: Page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def full_screenshot(page: Page, path: Path) -> None:
    """A screenshot of the whole main area: Streamlit scrolls inside stMain, so grow the viewport to its height."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wait_idle(page)
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('section[data-testid=stMain]'); return m ? m.scrollHeight : 1000; }"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 40, 6000))})
    page.wait_for_timeout(300)
    wait_idle(page)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
