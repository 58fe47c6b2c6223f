"""How fast `sagepipe console` shows the runs page with 1,000 runs (the goal: under 1 s locally).

    .venv/bin/python bench/console_render.py [--runs 1000] [--repeat 5]

Writes 1,000 synthetic run records (every status, realistic fields: about 1.5 KB of JSON each) as `sagepipe local
run` leaves them, in a temporary state directory, and serves them with the console (`--local`'s source) on
127.0.0.1. Prints, as medians of --repeat (and the first, cold one, which reads every file):

- the server: GET /runs?limit=1000 (every row), through the WSGI app in process, and /api/runs?limit=1000, the
  JSON a page polls;
- the browser (Debian's Chromium through Playwright, when /usr/bin/chromium exists): navigation to the page's
  load event, and one live update (the poll's fetch and the 1,000 rows replaced), read from the page's own
  Performance API marks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagepipe.console.app import create_app
from sagepipe.console.browser import CHROMIUM, CHROMIUM_FLAGS
from sagepipe.console.server import serving
from sagepipe.console.sources import StateDirRuns

STATUSES = ("SUCCEEDED",) * 6 + ("FAILED", "SKIPPED", "DUPLICATE", "RUNNING")


def record(index: int, rng: random.Random) -> dict[str, Any]:
    status = STATUSES[index % len(STATUSES)]
    day, minute = divmod(index, 1440)
    started = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T{minute // 60:02d}:{minute % 60:02d}:00.000Z"
    commit = f"{rng.getrandbits(160):040x}"
    version = f"{rng.getrandbits(128):032x}"
    value: dict[str, Any] = {
        "schema_version": 2,
        "run_id": f"{rng.getrandbits(128):032x}",
        "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:sagepipe-Pipeline:run-{index}",
        "status": status,
        "started_at": started,
        "finished_at": started.replace(".000Z", ".900Z"),
        "trigger_kind": ("data", "code", "manual")[index % 3],
        "trigger_source": "aws.s3",
        "triggered_by": "arn:aws:iam::123456789012:user/ana",
        "commit_id": commit,
        "commit_branch": "main",
        "data_ref": f"s3://sagepipe-data/datasets/breast-cancer-{index}.csv?versionId={version}",
        "data_key": f"datasets/breast-cancer-{index}.csv",
        "data_version_id": version,
        "data_size_bytes": 120380,
        "hyperparameters": {"n_estimators": "200", "max_depth": "3", "learning_rate": "0.1"},
        "instance_type": "ml.m5.large",
    }
    if status == "SUCCEEDED":
        value |= {
            "metrics": {"validation:accuracy": round(0.9 + rng.random() / 20, 5), "train:accuracy": 1.0},
            "artifact_uri": f"s3://sagepipe-artifacts/runs/{value['run_id']}/output/model.tar.gz",
            "artifact_sha256": f"{rng.getrandbits(256):064x}",
            "model_content_sha256": f"{rng.getrandbits(256):064x}",
            "image_digest": f"sha256:{rng.getrandbits(256):064x}",
        }
    elif status == "FAILED":
        value |= {"failed_stage": "Train", "error": "States.TaskFailed", "failure_reason": "AlgorithmError: no target"}
    return value


def write_runs(state_dir: Path, count: int) -> int:
    rng = random.Random(14)  # noqa: S311 - synthetic ids, reproducible
    size = 0
    for index in range(count):
        one = record(index, rng)
        run_dir = state_dir / "runs" / one["run_id"]
        run_dir.mkdir(parents=True)
        text = json.dumps(one)
        size += len(text)
        (run_dir / "record.json").write_text(text, encoding="utf-8")
    return size


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(the first call's seconds, the median of the next `repeat`)."""
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def browser_figures(url: str, rows: int, repeat: int) -> tuple[tuple[float, float, float], float] | None:
    """((response received, DOM ready, load event) after navigation starts, one live update), medians in seconds."""
    if not os.access(CHROMIUM, os.X_OK):
        return None
    from playwright.sync_api import sync_playwright

    loads: list[tuple[float, float, float]] = []
    updates: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_FLAGS))
        # Playwright's wait_for_function evaluates its predicate as a string, which the console's CSP forbids.
        page = browser.new_context(bypass_csp=True).new_page()
        for _ in range(repeat):
            page.goto(url, wait_until="load")
            page.locator("#runs-body tr").nth(rows - 1).wait_for(state="attached", timeout=30_000)
            timing = page.evaluate(
                "(({responseEnd, domContentLoadedEventEnd, loadEventEnd}) =>"
                " [responseEnd, domContentLoadedEventEnd, loadEventEnd])(performance.getEntriesByType('navigation')[0])"
            )
            loads.append(tuple(milliseconds / 1000 for milliseconds in timing))
            # One live update: the poll's next tick fetches /api/runs and replaces every row.
            page.evaluate(
                "window.__updates = []; new MutationObserver(() => window.__updates.push(performance.now()))"
                ".observe(document.getElementById('runs-body'), {childList: true})"
            )
            start = page.evaluate("performance.now()")
            page.wait_for_function("window.__updates.length > 0", timeout=30_000)
            fetched = page.evaluate(
                "performance.getEntriesByType('resource').filter(e => e.name.includes('/api/runs')).pop()"
            )
            replaced = page.evaluate("window.__updates[0]")
            updates.append((replaced - max(start, fetched["startTime"])) / 1000)
        browser.close()
    response, ready, load = (statistics.median(column) for column in zip(*loads, strict=True))
    return (response, ready, load), statistics.median(updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sagepipe-console-bench-") as temporary:
        state_dir = Path(temporary)
        size = write_runs(state_dir, args.runs)
        app = create_app(StateDirRuns(state_dir), refresh_seconds=2.0)
        client = app.test_client()
        query = f"limit={args.runs}"

        def get(url: str) -> Callable[[], None]:
            def action() -> None:
                response = client.get(url)
                assert response.status_code == 200, response.status_code
                assert response.get_data().count(b"<tr data-run-id=") in {0, 50, args.runs}

            return action

        page_cold, page_warm = timed(get(f"/runs?{query}"), args.repeat)
        html_bytes = len(client.get(f"/runs?{query}").get_data())
        api_cold, api_warm = timed(get(f"/api/runs?{query}"), args.repeat)
        _, default_warm = timed(get("/runs"), args.repeat)
        print(f"sagepipe console, runs page with {args.runs} runs ({size / 1024:.0f} KiB of records on disk)")
        print(
            f"  server  GET /runs       {page_warm * 1000:7.1f} ms median of {args.repeat} "
            f"(first, reading every file: {page_cold * 1000:.1f} ms), {html_bytes / 1024:.0f} KiB of HTML"
        )
        print(f"  server  GET /runs, its default page (the newest 50): {default_warm * 1000:.1f} ms median")
        print(
            f"  server  GET /api/runs   {api_warm * 1000:7.1f} ms median of {args.repeat} "
            f"(first: {api_cold * 1000:.1f} ms)"
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        with serving(app) as server:
            browser = browser_figures(f"{server.url}/runs?{query}", args.runs, args.repeat)
        if browser is None:
            print("  browser: /usr/bin/chromium is missing (make browser-deps); not measured")
        else:
            (response, ready, load), update = browser
            print(
                f"  browser (Chromium), from navigation: response {response * 1000:.0f} ms, DOM ready "
                f"{ready * 1000:.0f} ms, load event {load * 1000:.0f} ms (medians of {args.repeat})"
            )
            print(f"  browser one live update (fetch + {args.runs} rows replaced) {update * 1000:7.1f} ms median")
        goal = "met" if page_warm < 1 and (browser is None or browser[0][1] < 1) else "NOT met"
        load_average = os.getloadavg()[0]
        print(
            f"  goal (< 1 s, server render and DOM ready): {goal}; "
            f"load average {load_average:.1f} on {os.cpu_count()} CPUs"
        )


if __name__ == "__main__":
    main()
