"""`sagepipe console` in a real browser: Debian's Chromium, driven by Playwright, over a local stack with real runs.

The stack runs three runs through the real event path: a code push before any data (SKIPPED), a data upload
(SUCCEEDED), and an upload without the target column whose key is an HTML tag (FAILED in Train). The console reads
that stack as it reads a deployed one (StackRuns: CloudFormation outputs, the runs table, Step Functions), served
on 127.0.0.1 in this process. Every wait is Playwright's `expect`, bounded by its timeout, never a sleep.

Chromium is /usr/bin/chromium (`make browser-deps` installs Debian's package); `playwright install` is never run.
Each scenario saves a screenshot under $SAGEPIPE_TEST_OUTPUT/console (.build/test-output/console by default);
`make console-screenshot` copies the failed run's one to docs/console.png for the README.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sagepipe.console.app import create_app
from sagepipe.console.browser import CHROMIUM, CHROMIUM_FLAGS
from sagepipe.console.server import ConsoleServer, serving
from sagepipe.console.sources import StackRuns
from sagepipe.local.core.emulator import Emulator
from sagepipe.local.git import git
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.template import PROJECT_ROOT
from tests.local.conftest import BuiltImage, provision_for_test, put_image_of_head, run_through_events, wait_for_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

XSS = "<img src=x onerror=alert(1)>"
XSS_KEY = f"datasets/{XSS}.csv"
OUTPUT_DIR = Path(os.environ.get("SAGEPIPE_TEST_OUTPUT", PROJECT_ROOT / ".build" / "test-output")) / "console"
WAIT_MS = 15_000
RUN_TIMEOUT_SECONDS = 300.0


class EmulatorSession:
    """What StackRuns asks of a boto3 session: clients, here the emulator's."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def client(self, service: str, config: Any = None) -> Any:
        return self.emulator.client(service)


@dataclass
class Stack:
    pipeline: LocalPipeline
    server: ConsoleServer
    skipped: RunResult
    succeeded: RunResult
    failed: RunResult
    data: Path


@pytest.fixture(scope="module")
def stack(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory, built_images: dict[str, BuiltImage]
) -> Iterator[Stack]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("/usr/bin/chromium is missing: `make browser-deps` installs Debian's chromium package")
    work = tmp_path_factory.mktemp("console")
    repository = work / "training-code"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(PROJECT_ROOT), str(repository)], check=True, timeout=60)
    emulator.reset()
    pipeline = LocalPipeline(
        emulator, provision_for_test(emulator, repository=repository), repository, runs_dir=work / "runs"
    )
    put_image_of_head(pipeline, built_images)  # the console is the subject, not the build
    from sagepipe.local.sample_data import write_breast_cancer_csv

    data = write_breast_cancer_csv(work / "breast-cancer.csv")
    header, *rows = data.read_text(encoding="utf-8").splitlines()
    no_target = work / "no-target.csv"
    no_target.write_text("\n".join([header.removesuffix(",target") + ",label", *rows]) + "\n", encoding="utf-8")
    skipped, succeeded = run_through_events(pipeline, commit=git(repository, "rev-parse", "HEAD"), data=data)
    (failed,) = run_through_events(pipeline, commit=None, data=no_target, data_key=XSS_KEY)
    statuses = [run.record["status"] if run.record else None for run in (skipped, succeeded, failed)]
    assert statuses == ["SKIPPED", "SUCCEEDED", "FAILED"]

    # The layout of `sagepipe local up`'s state directory: the emulator's session (its job logs) under session/.
    state_dir = work / "state"
    state_dir.mkdir()
    (state_dir / "session").symlink_to(emulator.state_dir, target_is_directory=True)
    source = StackRuns(EmulatorSession(emulator), pipeline.stack.name, state_dir=state_dir)
    with serving(create_app(source, refresh_seconds=0.5, repository=repository)) as server:
        yield Stack(pipeline, server, skipped, succeeded, failed, data)
    wait_for_quiet(emulator)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_FLAGS))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records every dialog it is asked to open (none may be)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.dialogs = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()


def screenshot(page: Any, name: str) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{name}.png"
    page.screenshot(path=str(path))  # the viewport: what a user sees first
    return path


def row(page: Any, run: RunResult) -> Any:
    return page.locator(f'#runs-body tr[data-run-id="{run.run_id}"]')


def test_the_runs_table_shows_the_three_runs_with_their_statuses(stack: Stack, page: Any) -> None:
    """Given the three runs, when the runs page opens, then each is a row with its status."""
    page.goto(stack.server.url + "/")

    for run, status in ((stack.skipped, "SKIPPED"), (stack.succeeded, "SUCCEEDED"), (stack.failed, "FAILED")):
        expect(row(page, run)).to_have_attribute("data-status", status)
        expect(row(page, run).locator(".status")).to_have_text(status)
    screenshot(page, "runs")


def test_the_failed_run_highlights_train_and_shows_its_error_on_click(stack: Stack, page: Any) -> None:
    """Given the run that failed in Train, when its page opens and Train is clicked, then Train's node is the
    failed one, and the panel shows Train failed with its error and a cause naming the missing column."""
    page.goto(f"{stack.server.url}/runs/{stack.failed.run_id}")
    failed_nodes = page.locator("#graph g.node.state.failed")
    train = page.locator(
        'xpath=//*[@id="graph"]//*[local-name()="g"][contains(concat(" ", @class, " "), " state ")]'
        '[*[local-name()="title"]="Train"]'
    )

    expect(failed_nodes).to_have_count(1)
    expect(train).to_have_class(re.compile(r"\bfailed\b"))
    train.click()

    expect(page.locator("#state-panel")).to_be_visible()
    expect(page.locator("#state-name")).to_have_text("Train")
    expect(page.locator("#state-status")).to_have_text("failed")
    expect(page.locator("#state-errors .error-name").last).not_to_be_empty()
    expect(page.locator("#state-errors .cause").last).to_contain_text("target")
    expect(train).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#log-training")).to_contain_text("'target' column")
    screenshot(page, "failed-run")


def test_compare_shows_the_differing_data_version(stack: Stack, page: Any) -> None:
    """Given the succeeded and the failed run (two data versions), when both are ticked and compared, then the
    data version row differs and shows both versions."""
    page.goto(stack.server.url + "/")
    row(page, stack.succeeded).locator("input[name=run]").check()
    row(page, stack.failed).locator("input[name=run]").check()
    page.locator("#compare-button").click()

    version = page.locator('#diff tr[data-field="data.data_version_id"]')
    expect(version).to_have_class("differs")
    expect(version).to_contain_text(str(stack.succeeded.record["data_version_id"])[:20])  # type: ignore[index]
    expect(version).to_contain_text(str(stack.failed.record["data_version_id"])[:20])  # type: ignore[index]
    screenshot(page, "compare")


def test_a_run_started_while_the_page_is_open_appears_without_a_reload(stack: Stack, page: Any) -> None:
    """Given the runs page open, when a data upload starts a run, then its row appears (polling) with no
    navigation, and follows it to SUCCEEDED."""
    page.goto(stack.server.url + "/")
    expect(row(page, stack.failed)).to_be_visible()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    # New bytes (the first 50 rows dropped), so that the run trains instead of ending CACHED on the first one's key.
    header, *rows = stack.data.read_text(encoding="utf-8").splitlines()
    live_data = stack.data.with_name("live.csv")
    live_data.write_text("\n".join([header, *rows[50:]]) + "\n", encoding="utf-8")
    marker = stack.pipeline.execution_marker()
    stack.pipeline.upload_data(live_data, "datasets/live.csv")
    (arn,) = stack.pipeline.started_since(marker)
    run_id = arn.rsplit(":", 1)[-1]

    live = page.locator(f'#runs-body tr[data-run-id="{run_id}"]')
    expect(live).to_be_visible()
    result = stack.pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)
    assert result.record is not None
    assert result.record["status"] == "SUCCEEDED"
    expect(live).to_have_attribute("data-status", "SUCCEEDED", timeout=WAIT_MS)
    assert navigations == []
    screenshot(page, "live-run")


def test_an_object_key_that_is_html_renders_as_text_and_opens_no_dialog(stack: Stack, page: Any) -> None:
    """Given the failed run's data key `<img src=x onerror=alert(1)>`, when its page and the runs page load, then
    the key is text on the page, no <img> element exists, and no dialog was opened."""
    page.goto(f"{stack.server.url}/runs/{stack.failed.run_id}", wait_until="networkidle")
    expect(page.locator('tr[data-field="data_key"] td')).to_have_text(XSS_KEY)
    expect(page.locator("main img")).to_have_count(0)
    screenshot(page, "object-key-as-text")
    page.goto(stack.server.url + "/", wait_until="networkidle")
    expect(row(page, stack.failed)).to_contain_text("<img src=x onerror=alert(1)")
    expect(page.locator("main img")).to_have_count(0)
    assert page.dialogs == []


def test_a_run_that_does_not_exist_is_a_404_page(stack: Stack, page: Any) -> None:
    """Given a run id that does not exist, when it is opened, then the answer is a 404 page, not a stack trace."""
    response = page.goto(stack.server.url + "/runs/no-such-run")

    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_contain_text("404")
    expect(page.locator("#error-description")).to_contain_text("no-such-run")
    expect(page.locator("body")).not_to_contain_text("Traceback")
    screenshot(page, "not-found")
