"""The account itself: quotas, Lambda's account concurrency, and CodeConnections connections.

AWS: every account has Service Quotas (Lambda concurrent executions, CodeBuild concurrent builds per
environment, SageMaker training instances per type), Lambda's GetAccountSettings, and connections whose
status (PENDING until the console handshake, AVAILABLE, ERROR) decides whether a build can clone. Locally:
moto 5.2.5 has none of these, so the emulator keeps a `LocalAccount` (state.py) in the runtime context and
answers ListServiceQuotas / ListAWSDefaultServiceQuotas, GetAccountSettings and GetConnection from it; tests
change it to stand for a fresh account. Differences: only the quotas sagepipe needs are listed, SageMaker's
quota codes are derived from their names (AWS assigns its own), and connections are read-only.
"""

from __future__ import annotations

from sagepipe.local.account import code_connections, lambda_settings, service_quotas


def install() -> None:
    """Install the account's local services into moto (idempotent)."""
    for adapter in (lambda_settings, service_quotas, code_connections):
        adapter.install()
