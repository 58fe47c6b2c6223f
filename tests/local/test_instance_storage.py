"""Training volumes: encrypted with the pipeline key, except where SageMaker refuses a key (local storage).

SageMaker answers a CreateTrainingJob whose ResourceConfig has a VolumeKmsKeyId and whose instance type has
instance store volumes (ml.g5, ml.p4d, ml.m5d, ...) with a ValidationException (botocore's SageMaker model,
`ResourceConfig.VolumeKmsKeyId`). The local SageMaker refuses it the same way, deciding "local storage" from
the emulator's EC2 catalogue, independently of the pipeline's own rule (common.instance_storage).
"""

from pathlib import Path

import pytest

from sagepipe.local.runner import LocalPipeline
from tests.local.conftest import TrainingRepository, create_training_job_request, run_through_events

pytestmark = pytest.mark.e2e


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_an_instance_type_without_local_storage_gets_the_pipeline_key_on_its_volume(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given the default ml.m5.large (EBS only), when a run trains, then the volume is encrypted with the pipeline
    key (VolumeKmsKeyId sent) and the run succeeds."""
    _, run = run_through_events(pipeline, commit=repository.head, data=training_data)

    assert run.status == "SUCCEEDED", run.cause
    resource_config = create_training_job_request(run)["ResourceConfig"]
    assert resource_config["InstanceType"] == "ml.m5.large"
    assert resource_config["VolumeKmsKeyId"] == pipeline.stack.attribute("PipelineKey", "Arn")


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
@pytest.mark.parametrize("stack_parameters", [{"TrainingInstanceType": "ml.g5.xlarge"}])
def test_an_instance_type_with_local_storage_trains_without_a_volume_key(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given ml.g5.xlarge (local NVMe storage), when a run trains, then Train leaves VolumeKmsKeyId out, which
    SageMaker would refuse, and the run succeeds."""
    _, run = run_through_events(pipeline, commit=repository.head, data=training_data)

    assert run.status == "SUCCEEDED", run.cause
    resource_config = create_training_job_request(run)["ResourceConfig"]
    assert resource_config["InstanceType"] == "ml.g5.xlarge"
    assert "VolumeKmsKeyId" not in resource_config
    assert resource_config["VolumeSizeInGB"] == 30


def test_the_local_sagemaker_refuses_a_volume_key_with_local_storage_as_sagemaker_does(
    pipeline: LocalPipeline,
) -> None:
    """Given the local SageMaker, when a training job asks for a volume key on ml.g5.xlarge, then it fails with
    SageMaker's ValidationException before any job exists; on ml.m5.large the same request is accepted."""
    from sagepipe.local.sagemaker import adapter as sagemaker_sync

    with pytest.raises(Exception, match="VolumeKmsKeyId") as refused:
        sagemaker_sync.refuse_volume_key_with_local_storage(
            {"InstanceType": "ml.g5.xlarge", "VolumeKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/x"}
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"  # type: ignore[attr-defined]

    sagemaker_sync.refuse_volume_key_with_local_storage(
        {"InstanceType": "ml.m5.large", "VolumeKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/x"}
    )
    sagemaker_sync.refuse_volume_key_with_local_storage({"InstanceType": "ml.g5.xlarge"})
