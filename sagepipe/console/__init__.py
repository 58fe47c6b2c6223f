"""`sagepipe console`: the runs in a browser, as the Step Functions console shows executions, with the ML run beside.

- sources: where runs are read from (a stack through boto3, local or deployed, or a local state directory);
- app: the Flask application (pages, their JSON for live updates, security headers), templates/ and static/;
- views: what each page shows, built on sagepipe.runs.views (the CLI's tables and sections come from there too);
- graph_svg: graph.py's execution picture as SVG safe to put in a page;
- redact: what is never shown (credentials, secrets);
- server: serving it on 127.0.0.1 (or a chosen host, with a warning).

Read-only, offline (every script and style ships in the package), and bound to loopback by default.
"""
