"""The console's web application (Flask): pages, their JSON for live updates, and the headers that keep it safe.

Read-only: every route is a GET. Every value from a record, an event or a log reaches the page through Jinja's
autoescaping or, in scripts, `textContent`; scripts and styles are files the console serves (a strict
Content-Security-Policy forbids inline ones and anything from another origin); credentials are redacted
(sagepipe.console.redact); Flask's debugger is off and an error is a plain page, never a stack trace.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, Response, abort, jsonify, render_template, request, send_file, url_for
from werkzeug.exceptions import HTTPException, SecurityError

from sagepipe.console.graph_svg import execution_svg
from sagepipe.console.redact import Redactor
from sagepipe.console.sources import LOG_KINDS, Filters, RunNotFoundError, RunSource
from sagepipe.console.views import (
    log_view,
    metrics_of,
    model_fields,
    redacted_record,
    rows_json,
    states_view,
)
from sagepipe.runs.diff import diff_runs, repository_at
from sagepipe.runs.errors import RunsError
from sagepipe.runs.queries import MAX_LIMIT, resolve_commit
from sagepipe.runs.records import links
from sagepipe.runs.views import (
    HEADLINE_METRIC,
    TRIGGER_KINDS,
    diff_rows,
    lacks_text,
    metric_names,
    metric_points,
    record_sections,
    run_headers,
    run_row,
    statuses_for_filter,
)

LOGGER = logging.getLogger("sagepipe.console")

DEFAULT_PAGE: Final = 50
DEFAULT_REFRESH_SECONDS: Final = 2.0
MIN_REFRESH_SECONDS: Final = 0.5
MAX_REFRESH_SECONDS: Final = 60.0
METRIC_RUNS_DEFAULT: Final = 50
SVG_CACHE_SIZE: Final = 64

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_STATUS_WORD: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")


@dataclass
class Console:
    """What one console serves from, kept on its Flask app (no module-level state)."""

    source: RunSource
    redactor: Redactor
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    metric: str = HEADLINE_METRIC
    repository: Path | None = None
    _svgs: OrderedDict[tuple[str, int, str], tuple[str | None, str | None]] = field(default_factory=OrderedDict)
    _lock: Lock = field(default_factory=Lock)

    def svg(self, run_id: str, execution: Any, status: str) -> tuple[str | None, str | None]:
        """The run's graph, laid out once per (run, number of history events, status)."""
        key = (run_id, len(execution.history), status)
        with self._lock:
            if key in self._svgs:
                self._svgs.move_to_end(key)
                return self._svgs[key]
        drawn = execution_svg(execution.definition, execution.history, title=f"sagepipe run {run_id}")
        with self._lock:
            self._svgs[key] = drawn
            while len(self._svgs) > SVG_CACHE_SIZE:
                self._svgs.popitem(last=False)
        return drawn


def _console(app: Flask) -> Console:
    console: Console = app.extensions["sagepipe_console"]
    return console


def _filters(console: Console) -> tuple[Filters, list[str]]:
    """The runs filters from the query string, and what was wrong with them (shown on the page)."""
    problems: list[str] = []
    status = (request.args.get("status") or "").strip().upper() or None
    if status is not None and not set(status) <= _STATUS_WORD:
        problems.append(f"status {status!r} is not a status")
        status = None
    trigger = (request.args.get("trigger") or "").strip().lower() or None
    commit_text = (request.args.get("commit") or "").strip() or None
    commit = None
    if commit_text:
        try:
            commit = resolve_commit(commit_text, console.repository)
        except RunsError as error:
            problems.append(str(error).replace("--commit", "commit"))
    return Filters(status=status, commit=commit, trigger=trigger), problems


def _limit(default: int) -> int:
    try:
        return max(1, min(MAX_LIMIT, int(request.args.get("limit", default))))
    except ValueError:
        return default


def create_app(
    source: RunSource,
    *,
    redactor: Redactor | None = None,
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    metric: str = HEADLINE_METRIC,
    repository: Path | None = None,
    trusted_hosts: list[str] | None = None,
) -> Flask:
    """The console for one source. `trusted_hosts`: the Host headers it answers (DNS rebinding cannot then make a
    web page read it); None answers any (a console bound to every interface)."""
    app = Flask(__name__)
    app.config.update(
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        TRUSTED_HOSTS=trusted_hosts,
        MAX_CONTENT_LENGTH=1024,
        SEND_FILE_MAX_AGE_DEFAULT=300,
    )
    app.extensions["sagepipe_console"] = Console(
        source,
        redactor or Redactor.from_environment(),
        max(MIN_REFRESH_SECONDS, min(MAX_REFRESH_SECONDS, refresh_seconds)),
        metric,
        repository,
    )
    _routes(app)
    return app


def _routes(app: Flask) -> None:  # noqa: PLR0915 - one place lists every route
    @app.after_request
    def secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/") or response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def common() -> dict[str, Any]:
        console = _console(app)
        return {"source_description": console.source.description, "refresh_seconds": console.refresh_seconds}

    # ------------------------------------------------------------------------------------------ runs
    def runs_data() -> dict[str, Any]:
        console = _console(app)
        filters, problems = _filters(console)
        metric = request.args.get("metric") or console.metric
        limit = _limit(DEFAULT_PAGE)
        token = request.args.get("next") or None
        records: list[dict[str, Any]] = []
        next_token = None
        if not problems:
            try:
                page = console.source.list(filters, limit, token)
                records, next_token = page.records, page.next_token
            except RunsError as error:
                problems.append(str(error))
        return {
            "filters": filters,
            "problems": problems,
            "metric": metric,
            "limit": limit,
            "records": records,
            "next_token": next_token,
            "rows": rows_json(records, metric, console.redactor),
        }

    @app.get("/")
    @app.get("/runs")
    def runs() -> str:
        data = runs_data()
        seen = [row["status"] for row in data["rows"]]
        return render_template(
            "runs.html",
            headers=run_headers(data["metric"]),
            rows=data["rows"],
            filters=data["filters"],
            commit_text=request.args.get("commit", ""),
            problems=data["problems"],
            statuses=statuses_for_filter(seen),
            triggers=TRIGGER_KINDS,
            metric=data["metric"],
            limit=data["limit"],
            next_token=data["next_token"],
            # One url_for, not one per row (a thousand rows): the run page is this prefix and the quoted run id.
            run_base=url_for("run", run_id="_").removesuffix("_"),
        )

    @app.get("/api/runs")
    def runs_api() -> Response:
        data = runs_data()
        return jsonify(
            {"rows": data["rows"], "next": data["next_token"], "problems": data["problems"], "metric": data["metric"]}
        )

    # ------------------------------------------------------------------------------------------ one run
    def run_data(run_id: str) -> dict[str, Any]:
        console = _console(app)
        try:
            record = console.source.get(run_id)
        except RunNotFoundError:
            abort(404, description=f"There is no run {run_id!r} in {console.source.description}.")
        except RunsError:
            abort(404, description=f"{run_id!r} is not a run id.")
        execution, execution_problem = console.source.execution(record)
        graph, graph_problem, states = None, execution_problem, None
        if execution is not None:
            states = states_view(execution, console.redactor)
            graph, graph_problem = console.svg(str(record.get("run_id", run_id)), execution, states["status"])
        return {
            "record": record,
            "shown": redacted_record(record, console.redactor),
            "graph": graph,
            "graph_problem": graph_problem,
            "states": states,
        }

    @app.get("/runs/<run_id>")
    def run(run_id: str) -> str:
        console = _console(app)
        data = run_data(run_id)
        record, shown = data["record"], data["shown"]
        logs = [log_view(console.source.log(record, kind), console.redactor) for kind in LOG_KINDS]
        return render_template(
            "run.html",
            run_id=str(record.get("run_id", run_id)),
            metric=console.metric,
            record=shown,
            row=run_row(shown, console.metric),
            sections=record_sections(shown),
            lacks=lacks_text(record),
            metrics=metrics_of(shown),
            model=model_fields(shown),
            links=links(record) if console.source.deployed else {},
            logs=[log for log in logs if log is not None],
            missing_logs=[kind for kind, log in zip(LOG_KINDS, logs, strict=True) if log is None],
            graph=data["graph"],
            graph_problem=data["graph_problem"],
            states=data["states"],
        )

    @app.get("/api/runs/<run_id>")
    def run_api(run_id: str) -> Response:
        data = run_data(run_id)
        return jsonify(
            {
                "run_id": data["shown"].get("run_id"),
                "status": data["shown"].get("status"),
                "states": data["states"],
                "graph": data["graph"],
                "graph_problem": data["graph_problem"],
            }
        )

    @app.get("/runs/<run_id>/logs/<kind>")
    def whole_log(run_id: str, kind: str) -> Response:
        console = _console(app)
        if kind not in LOG_KINDS:
            abort(404, description=f"There is no {kind!r} log.")
        try:
            record = console.source.get(run_id)
        except RunsError:
            abort(404, description=f"There is no run {run_id!r} in {console.source.description}.")
        tail = console.source.log(record, kind)
        if tail is None or tail.local_file is None:
            abort(404, description=f"Run {run_id!r} has no local {kind} log.")
        text = tail.local_file.read_text(encoding="utf-8", errors="replace")
        return Response(console.redactor.text(text), mimetype="text/plain")

    # ------------------------------------------------------------------------------------------ compare
    @app.get("/compare")
    def compare() -> str:
        console = _console(app)
        chosen = [value for value in request.args.getlist("run") if value][:2]
        chosen = chosen or [value for value in (request.args.get("a"), request.args.get("b")) if value]
        show_all = request.args.get("all") == "1"
        if len(chosen) != 2:
            return render_template("compare.html", problem="Choose two runs to compare.", chosen=chosen)
        try:
            first, second = (console.source.get(run_id) for run_id in chosen)
        except RunsError as error:
            abort(404, description=str(error))
        result = diff_runs(
            redacted_record(first, console.redactor),
            redacted_record(second, console.redactor),
            console.repository or repository_at(None),
        )
        return render_template(
            "compare.html",
            problem=None,
            chosen=chosen,
            result=result,
            rows=diff_rows(result, show_all, limit=120),
            same=len(result.rows) - len(result.differences),
            show_all=show_all,
        )

    # ------------------------------------------------------------------------------------------ metrics
    @app.get("/metrics")
    def metrics() -> str:
        console = _console(app)
        last = _limit(METRIC_RUNS_DEFAULT) if "limit" in request.args else METRIC_RUNS_DEFAULT
        metric = request.args.get("metric") or console.metric
        problems: list[str] = []
        records: list[dict[str, Any]] = []
        try:
            records = console.source.list(Filters(), last, None).records
        except RunsError as error:
            problems.append(str(error))
        points = metric_points(records, metric, console.source.champion_package_arn() if records else None)
        names = metric_names(records)
        return render_template(
            "metrics.html",
            metric=metric,
            metric_choices=sorted({*names, metric}),
            last=last,
            points=points,
            chart={"metric": metric, "points": [point.__dict__ for point in points]},
            problems=problems,
        )

    # ------------------------------------------------------------------------------------------ errors
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | Response:
        if isinstance(error, SecurityError):
            # An untrusted Host: no URL can be built for it, so no page either; one plain line.
            return Response(
                "400 Bad Request: this console answers its loopback names only\n", 400, mimetype="text/plain"
            )
        return render_template("error.html", code=error.code, name=error.name, description=error.description), (
            error.code or 500
        )

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[str, int]:
        # The page says what failed, never how (no trace, no message that might quote a request or a secret).
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "error")
            description = f"AWS refused a read: {error.operation_name}: {code}."
        elif isinstance(error, BotoCoreError):
            description = f"AWS could not be reached ({type(error).__name__})."
        else:
            description = "The console failed to build this page; its terminal has the details."
        LOGGER.exception("error serving %s", request.path)
        return render_template("error.html", code=500, name="Error", description=description), 500

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return send_file(Path(app.static_folder or "") / "favicon.svg", mimetype="image/svg+xml")
