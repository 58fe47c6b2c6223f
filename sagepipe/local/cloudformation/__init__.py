"""CloudFormation, locally: the stack the provisioner created is a stack CloudFormation knows.

AWS: `sam deploy` has CloudFormation create the stack, and DescribeStacks / DescribeStackResources answer
its parameters, outputs and resources. Locally: the provisioner (sagepipe.local.provisioner) creates each
resource through its service's API, because moto's CloudFormation cannot deploy this template, then
registers the stack with moto's CloudFormation (`stacks.register`). Differences: the stack cannot be
updated or deleted through CloudFormation, and it has no events beyond its creation.
"""

from __future__ import annotations

from sagepipe.local.cloudformation import stacks


def install() -> None:
    """Install CloudFormation's local patches into moto (idempotent)."""
    stacks.install()
