"""The pipeline's table of training instance types with local storage agrees with EC2's own answer.

EC2's DescribeInstanceTypes says which types have instance store volumes (`InstanceStorageSupported`). moto
ships a snapshot of it; botocore's SageMaker model lists every training instance type. Together they check
common.instance_storage for every type a user can choose, without calling AWS.
"""

import gzip
import json
from importlib.resources import files
from typing import Any

import botocore.session
import pytest

from common.instance_storage import has_local_storage, instance_family


def training_instance_types() -> list[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape: Any = model.shape_for("TrainingInstanceType")  # a StringShape: its enum is not on Shape's stub
    return list(shape.enum)


def ec2_catalogue() -> dict[str, Any]:
    data = files("moto").joinpath("ec2/resources/instance_types.json.gz").read_bytes()
    catalogue: dict[str, Any] = json.loads(gzip.decompress(data))
    return catalogue


def test_every_training_instance_type_ec2_knows_is_classified_as_ec2_classifies_it() -> None:
    """Given every SageMaker training instance type that EC2's catalogue lists, then has_local_storage says what
    EC2's InstanceStorageSupported says, for all of them."""
    catalogue = ec2_catalogue()
    checked = {
        instance_type: bool(catalogue[instance_type[3:]]["InstanceStorageSupported"])
        for instance_type in training_instance_types()
        if instance_type[3:] in catalogue
    }
    assert len(checked) > 150, "the catalogue should cover most training instance types"
    wrong = {name: ec2 for name, ec2 in checked.items() if has_local_storage(name) != ec2}
    assert not wrong, f"instance types whose local storage EC2 reports differently: {wrong}"


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.m5.large", False),
        ("ml.m5d.large", True),
        ("ml.c5d.xlarge", True),
        ("ml.r5d.large", True),
        ("ml.g4dn.xlarge", True),
        ("ml.g5.xlarge", True),
        ("ml.p3.2xlarge", False),
        ("ml.p3dn.24xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.trn1.2xlarge", True),
        ("ml.p6-b200.48xlarge", True),
        ("ml.m7i-flex.large", False),
        ("ml.m6id.large", True),
        ("ml.c7gd.large", True),
    ],
)
def test_the_issue_s_examples_and_future_families_follow_ec2_naming(instance_type: str, local: bool) -> None:
    """Given a type named in SageMaker's docs, or a family the table does not list (m6id, c7gd), then the EC2
    naming rule (a `d` attribute means instance store) or the table decides."""
    assert has_local_storage(instance_type) is local


@pytest.mark.parametrize("bad", ["m5.large", "ml.m5", "ml..large", "ML.M5.LARGE", ""])
def test_a_string_that_is_not_an_instance_type_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a SageMaker instance type"):
        instance_family(bad)
