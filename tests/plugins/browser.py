"""Headless Chromium (Debian's, never a downloaded one) for the e2e tests, driven with
Playwright's sync API against pytest-django's live_server.

Every page records console errors and Content-Security-Policy violations; a failing
test leaves a screenshot in test-artifacts/."""

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; live_server and the ORM
# calls in the tests are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    def __init__(self):
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]

    def assert_clean(self) -> None:
        assert self.csp_violations == [], self.csp_violations
        assert self.page_errors == [], self.page_errors


@pytest.fixture
def page_problems():
    return PageProblems()


@pytest.fixture
def page(browser, live_server, request, page_problems):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and page_problems.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page_problems.page_errors.append(str(exc)))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
