"""`sagepipe console` without a browser: its pages through Flask's test client over a state directory of runs.

The runs are written as `sagepipe local run` leaves them (record.json, history.json); their histories are
tests/unit/test_local_graph.py's synthetic ones for the real definition. What a browser adds (clicks, live
updates, dialogs) is in tests/local/test_console_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from sagepipe.cli import main
from sagepipe.console.app import CONTENT_SECURITY_POLICY, create_app
from sagepipe.console.graph_svg import sanitize
from sagepipe.console.redact import REDACTED, Redactor
from sagepipe.console.server import exposure_warning, serving, trusted_hosts
from sagepipe.console.sources import StateDirRuns
from tests.unit.test_local_graph import data_run, training_failure

XSS_KEY = "datasets/<img src=x onerror=alert(1)>.csv"
CHART_JS = Path(__file__).parents[2] / "sagepipe" / "console" / "static" / "vendor" / "chartjs" / "chart.umd.min.js"
CHART_JS_SHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"  # vendor/chartjs/README.md
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _json_default(value: Any) -> str:
    assert isinstance(value, datetime)
    return value.isoformat()


def write_run(state_dir: Path, run_id: str, status: str, history: list[dict[str, Any]] | None, **fields: Any) -> None:
    run_dir = state_dir / "runs" / run_id
    run_dir.mkdir(parents=True)
    record = {
        "run_id": run_id,
        "status": status,
        "trigger_kind": "data",
        "triggered_by": "arn:aws:iam::123456789012:user/ana",
        "commit_id": "3e5b0c1f" * 5,
        "data_key": "datasets/breast-cancer.csv",
        **fields,
    }
    (run_dir / "record.json").write_text(json.dumps(record), encoding="utf-8")
    if history is not None:
        (run_dir / "history.json").write_text(json.dumps(history, default=_json_default), encoding="utf-8")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """Three runs: skipped (no data yet), succeeded, and failed in Train on an object key that is an HTML tag."""
    write_run(tmp_path, "run-skipped", "SKIPPED", None, started_at="2026-11-01T10:00:00Z", data_key=None)
    write_run(
        tmp_path,
        "run-succeeded",
        "SUCCEEDED",
        data_run(),
        started_at="2026-11-02T10:00:00Z",
        finished_at="2026-11-02T10:03:00Z",
        data_version_id="version-one",
        metrics={"validation:accuracy": 0.956},
    )
    write_run(
        tmp_path,
        "run-failed",
        "FAILED",
        training_failure(),
        started_at="2026-11-03T10:00:00Z",
        data_key=XSS_KEY,
        data_version_id="version-two",
        trigger_kind="manual",
        trigger_reason=f"retrain with token={SECRET_KEY} and key {ACCESS_KEY}",
        failed_stage="Train",
    )
    return tmp_path


@pytest.fixture
def client(state_dir: Path) -> Iterator[FlaskClient]:
    redactor = Redactor.from_environment({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
    app = create_app(StateDirRuns(state_dir), redactor=redactor, trusted_hosts=trusted_hosts("127.0.0.1"))
    with app.test_client() as test_client:
        yield test_client


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def embedded_json(html: str, element_id: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert found is not None, element_id
    return json.loads(found.group(1))


def listed(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-run-id="([^"]+)" data-status="([^"]+)">', html)


def test_the_runs_page_lists_every_run_newest_first_and_filters(client: FlaskClient) -> None:
    """Given three runs, when the runs page is read without and with filters, then it lists them newest first
    with their statuses, and each filter (status, trigger) keeps only its runs; a bad status is said, not raised."""
    everything = listed(page(client, "/"))
    failed = listed(page(client, "/runs?status=failed"))
    manual = listed(page(client, "/runs?trigger=manual"))
    data = listed(page(client, "/runs?trigger=data"))
    bad = page(client, "/runs?status=%3Cb%3E")

    assert everything == [("run-failed", "FAILED"), ("run-succeeded", "SUCCEEDED"), ("run-skipped", "SKIPPED")]
    assert failed == [("run-failed", "FAILED")]
    assert manual == [("run-failed", "FAILED")]
    assert data == [("run-succeeded", "SUCCEEDED"), ("run-skipped", "SKIPPED")]
    assert "is not a status" in bad
    assert "<b>" not in bad


def test_every_page_has_the_strict_headers_and_no_inline_script(client: FlaskClient) -> None:
    """Given any page, then it carries the CSP (scripts and styles from the console only) and never an inline
    script: the only <script> elements without src are JSON data blocks."""
    for url in ("/", "/runs/run-failed", "/compare?run=run-failed&run=run-succeeded", "/metrics", "/runs/nope"):
        response = client.get(url)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        scripts = re.findall(r"<script([^>]*)>", response.get_data(as_text=True))
        assert all("src=" in attributes or 'type="application/json"' in attributes for attributes in scripts), url


def test_an_object_key_that_is_html_is_escaped_everywhere(client: FlaskClient) -> None:
    """Given a run whose data key is an <img onerror> tag, then no page holds it as markup: the runs page, the run
    page and the comparison escape it, and the JSON the scripts read keeps it as text (set with textContent)."""
    for url in ("/", "/runs/run-failed", "/compare?run=run-failed&run=run-succeeded"):
        html = page(client, url)
        assert "<img" not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, url
    rows = client.get("/api/runs").get_json()["rows"]
    assert rows[0]["data_version"].startswith("datasets/<img src=x onerror=alert(1)>")


def test_the_failed_runs_graph_marks_train_failed_and_its_state_data_holds_the_error(client: FlaskClient) -> None:
    """Given the run that failed in Train after two retries, then its graph has Train's node classed failed and
    retried, and the states data gives Train's three attempts, its errors and causes, and its catch."""
    html = page(client, "/runs/run-failed")

    train = re.search(r'<g id="node\d+" class="([^"]+)"><title>Train</title>', html)
    assert train is not None
    assert {"state", "failed", "retried"} <= set(train.group(1).split())
    states = embedded_json(html, "states-data")
    assert states["status"] == "FAILED"
    train_state = states["states"]["Train"]
    assert train_state["status"] == "failed"
    assert (train_state["attempts"], train_state["retries"]) == (3, 2)
    assert [error["error"] for error in train_state["errors"]][-1] == "States.TaskFailed"
    assert "max_depth must be" in train_state["errors"][-1]["cause"]
    assert train_state["caught_to"] == "DescribeFailure"
    assert states["states"]["BuildImage"]["status"] == "not entered"


def test_the_graph_svg_keeps_drawing_elements_only() -> None:
    """Given an SVG with a script, an event handler, a link and a foreignObject, when sanitized, then only the
    drawing remains, its texts escaped, and a link's tooltip becomes a title."""
    hostile = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="9" height="9">'
        '<script>alert(1)</script><g class="node" onclick="alert(2)"><title>&lt;b&gt;</title>'
        '<a xlink:href="javascript:alert(3)" xlink:title="cause &lt;img&gt;"><path d="M0 0"/></a></g>'
        "<foreignObject><div>x</div></foreignObject></svg>"
    )

    clean = sanitize(hostile)

    assert "script" not in clean
    assert "onclick" not in clean
    assert "javascript" not in clean
    assert "foreignObject" not in clean
    assert "<title>&lt;b&gt;</title>" in clean
    assert "<title>cause &lt;img&gt;</title>" in clean
    assert 'width="9"' not in clean


def test_credentials_are_never_shown(client: FlaskClient) -> None:
    """Given the console's own AWS keys and a manual run whose reason quotes them, then no page shows them."""
    for url in ("/runs/run-failed", "/api/runs", "/compare?run=run-failed&run=run-succeeded&all=1"):
        text = page(client, url)
        assert ACCESS_KEY not in text, url
        assert SECRET_KEY not in text, url
    assert REDACTED in page(client, "/runs/run-failed")


def test_compare_shows_the_differing_data_version(client: FlaskClient) -> None:
    """Given two trainings on two data versions, then the comparison's differing rows include the data version."""
    html = page(client, "/compare?run=run-succeeded&run=run-failed")

    row = re.search(r'<tr class="differs" data-field="data\.data_version_id">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "version-one" in row.group(1)
    assert "version-two" in row.group(1)


def test_an_unknown_run_is_a_404_page_not_a_trace(client: FlaskClient) -> None:
    """Given run ids that do not exist, or that try to leave the runs directory, then each is a 404 page."""
    for run_id in ("no-such-run", "..", "%2E%2E%2Frecord", "run-failed%2F..%2F.."):
        html = page(client, f"/runs/{run_id}", 404)
        assert "404" in html
        assert "Traceback" not in html
    assert client.get("/api/runs/no-such-run").status_code == 404


def test_a_host_header_from_elsewhere_is_refused(client: FlaskClient) -> None:
    """Given a request whose Host is another name (DNS rebinding), then the console refuses it."""
    assert client.get("/", headers={"Host": "attacker.example:8765"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200


def test_the_metrics_page_embeds_the_chart_data_and_serves_the_vendored_chart_js(client: FlaskClient) -> None:
    """Given the runs, then the metrics chart's points leave out the skipped run and mark the failed one, and
    Chart.js is served by the console, byte for byte the vendored release."""
    html = page(client, "/metrics")
    chart = embedded_json(html, "chart-data")
    script = client.get("/static/vendor/chartjs/chart.umd.min.js")

    assert [(point["run_id"], point["mark"]) for point in chart["points"]] == [
        ("run-succeeded", "succeeded"),
        ("run-failed", "failed"),
    ]
    assert chart["points"][0]["value"] == pytest.approx(0.956)
    assert hashlib.sha256(script.get_data()).hexdigest() == CHART_JS_SHA256
    assert hashlib.sha256(CHART_JS.read_bytes()).hexdigest() == CHART_JS_SHA256


def test_binding_beyond_loopback_warns_and_serving_answers_on_loopback(state_dir: Path) -> None:
    """Given the hosts a user may pass, then only a non-loopback one warns; served on port 0, the console answers
    on 127.0.0.1 at the port it got."""
    import requests

    assert exposure_warning("127.0.0.1", 8765) is None
    assert exposure_warning("::1", 8765) is None
    warning = exposure_warning("0.0.0.0", 8765)  # noqa: S104 - the case under test
    assert warning is not None
    assert "without authentication" in warning
    assert trusted_hosts("0.0.0.0") is None  # noqa: S104
    with serving(create_app(StateDirRuns(state_dir)), port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert requests.get(server.url + "/runs/run-failed", timeout=10).status_code == 200


def test_bad_console_usage_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Given --local with no runs, or both --local and --stack, then one error line and exit code 2."""
    empty = CliRunner(mix_stderr=False).invoke(main, ["console", "--local", "--state-dir", str(tmp_path)])
    both = CliRunner(mix_stderr=False).invoke(
        main, ["console", "--local", "--stack", "s", "--state-dir", str(tmp_path)]
    )

    for result in (empty, both):
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("error: ")


@pytest.mark.parametrize(
    "text",
    [
        "uploaded with AKIAABCDEFGHIJKLMNOP by ci",
        "clone https://x:ghp_abcdefghijklmnopqrstuvwxyz0123@github.com",
        "token github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "X-Hub-Signature-256: sha256=" + "ab" * 32,
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "DB_PASSWORD=hunter2hunter2",
        '{"webhook_secret": "s3cr3t-value"}',
    ],
)
def test_text_shaped_like_a_credential_is_redacted(text: str) -> None:
    """Given text holding a credential of each shape the redactor knows, then the credential is gone."""
    redacted = Redactor().text(text)

    assert REDACTED in redacted
    for secret in ("ABCDEFGHIJKLMNOP", "abcdefghijklmnop", "ab" * 32, "payload", "MIIEow", "hunter2", "s3cr3t"):
        assert secret not in redacted, redacted


def test_the_metric_history_marks_as_champion_the_run_that_registered_the_registrys_champion() -> None:
    """Given three trained runs, two of which registered a model package, and the registry's champion being the
    older of the two packages,
    When the metric history is drawn with that champion,
    Then exactly the run that registered it is the champion, and without a known champion no run is."""
    from sagepipe.runs.views import metric_points

    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagepipe-models/{}"
    records = [
        {
            "run_id": "r1",
            "status": "SUCCEEDED",
            "started_at": "2026-12-01T08:00:00Z",
            "model_package_arn": arn.format(1),
        },
        {"run_id": "r2", "status": "REJECTED", "started_at": "2026-12-01T09:00:00Z"},
        {
            "run_id": "r3",
            "status": "SUCCEEDED",
            "started_at": "2026-12-01T10:00:00Z",
            "model_package_arn": arn.format(2),
        },
    ]

    marked = [point.run_id for point in metric_points(records, "validation:accuracy", arn.format(1)) if point.champion]
    unknown = [point.run_id for point in metric_points(records, "validation:accuracy", None) if point.champion]

    assert marked == ["r1"]
    assert unknown == []
