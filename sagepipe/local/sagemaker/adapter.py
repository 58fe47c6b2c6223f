"""`sagemaker:createTrainingJob.sync`: the training really runs, locally, under SageMaker's contract.

The gap
    moto lists SageMaker among the integrations its Step Functions engine does not support (the execution
    aborts with `Unsupported sync callback procedure`). moto's SageMaker creates jobs already Completed, runs
    nothing, writes nothing to S3, overwrites the job's MetricDefinitions with a fixture, does not refuse a
    reused job name, and has no StopTrainingJob.

What this adapter does
    `createTrainingJob` refuses a name that exists (SageMaker never reuses one: ResourceInUse), records
    the job in moto's SageMaker, InProgress, and runs it on a thread: the TrainingImage is resolved in the
    emulator's ECR to the image the local build registered (the code of the built commit), each S3Prefix
    channel is downloaded from the emulator's S3, and sagepipe.local.sagemaker.training lays out the job's /opt/ml
    and runs the image's own entry point, the sagemaker-training toolkit's `train`, which runs SAGEMAKER_PROGRAM
    with the SM_* variables and hyperparameters as on SageMaker; MaxRuntimeInSeconds, MetricDefinitions and the
    failure file are applied as SageMaker applies them. model.tar.gz (and output.tar.gz) are uploaded to
    `<S3OutputPath>/<job>/output/`, and moto's job record gets the real status, secondary status and
    transitions, FailureReason, FinalMetricDataList, artifacts and times. `.sync` waits for the job and
    returns DescribeTrainingJob as Step Functions does (timestamps in epoch milliseconds); a Failed or
    Stopped job fails the task with States.TaskFailed and the description as the cause. If the execution
    stops or the task times out, the job is stopped.

How it differs from AWS
    The toolkit and the program run with this machine's Python and packages (the venv pins the image's), as a
    process group without network isolation or an instance, and local-only variables keep it from waiting on
    a cluster's DNS, from this machine's instance metadata and from installing into the venv; billable time is
    wall time (no Spot saving: see sagepipe.local.sagemaker.spot); only File mode and S3Prefix channels are
    supported, and anything else fails the job with a clear FailureReason.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all
from sagepipe.local.images import ImageStore, LocalImage
from sagepipe.local.sagemaker.logs import training_log
from sagepipe.local.sagemaker.spot import S3CheckpointStore, refuse_invalid_spot_settings, spot_interruptions
from sagepipe.local.stepfunctions import fault_injection
from sagepipe.local.stepfunctions.sync_task import (
    JobRegistry,
    LocalJob,
    LocalSyncTask,
    client_error,
    millis,
    sync_resolver,
    task_failed,
    watch_for_abandonment,
)

ADAPTER = "sagemaker_sync"

MOTO_INTERNALS: Final = (
    Internal("moto.sagemaker.models:sagemaker_backends", why="training jobs are recorded in moto's SageMaker"),
    Internal(
        "moto.sagemaker.models:FakeTrainingJob.response_object",
        why="DescribeTrainingJob is built from the job's attributes, so setting them changes what it answers",
    ),
    Internal("moto.sagemaker.models:FakeTrainingJob.__init__", parameters=("self", "training_job_name")),
)


class LocalTrainingJobs(JobRegistry):
    """The training jobs the local runtime is running or ran, by job name (in the runtime context)."""


def local_training_jobs() -> LocalTrainingJobs:
    return context.current().state(LocalTrainingJobs)


class TrainingSetupError(RuntimeError):
    """The job could not start (image, channels): reported as the job's FailureReason, like SageMaker."""


def _backend(account: str, region: str) -> Any:
    return Internal("moto.sagemaker.models:sagemaker_backends").resolve(ADAPTER)[account][region]


def resolve_image(image_uri: str) -> LocalImage:
    """The local image behind an ECR image URI (by digest, or by tag through the emulator's ECR)."""
    runtime = context.current()
    repository_uri, _, digest = image_uri.partition("@")
    if not digest:
        repository_uri, _, tag = image_uri.rpartition(":")
        repository = repository_uri.split("/", 1)[-1]
        try:
            details = runtime.client("ecr").describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except Exception as error:
            raise TrainingSetupError(f"ClientError: cannot resolve {image_uri}: {error}") from error
        digest = details["imageDetails"][0]["imageDigest"]
    image = ImageStore.in_state_dir(runtime.state_dir).find(digest)
    if image is None:
        raise TrainingSetupError(
            f"ClientError: image {image_uri} was not built by the local runtime (no local image for {digest})"
        )
    return image


def _download_channels(channels: list[dict[str, Any]], root: Path) -> dict[str, Path]:
    s3 = context.current().client("s3")
    local: dict[str, Path] = {}
    for channel in channels:
        name = channel["ChannelName"]
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise TrainingSetupError(f"ClientError: channel {name}: only S3Prefix S3 channels run locally")
        url = urlparse(source["S3Uri"])
        prefix = url.path.lstrip("/")
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=url.netloc, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", []) if not item["Key"].endswith("/")]
        if not keys:
            raise TrainingSetupError(f"ClientError: no objects under {source['S3Uri']} for channel {name}")
        for key in keys:
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(url.netloc, key, str(destination))
        local[name] = target
    return local


def _upload(archive: Path | None, output_path: str, job_name: str) -> str | None:
    if archive is None:
        return None
    url = urlparse(output_path.rstrip("/"))
    key = "/".join(part for part in (url.path.strip("/"), job_name, "output", archive.name) if part)
    context.current().client("s3").upload_file(str(archive), url.netloc, key)
    return f"s3://{url.netloc}/{key}"


def _finish(record: Any, **attributes: Any) -> None:
    for name, value in attributes.items():
        setattr(record, name, value)
    record.last_modified_time = datetime.now(UTC)


def _run_job(job: LocalJob, record: Any, params: dict[str, Any], job_arn: str) -> None:
    from sagepipe.local.sagemaker.training import TrainingRequest, run_training
    from sagepipe.local.warm_start import WarmStarts

    runtime = context.current()
    name = params["TrainingJobName"]
    work_dir = runtime.work_dir / "training" / name
    log_path = training_log(runtime.logs_dir, name)
    runtime.job_logs[name] = log_path
    started = datetime.now(UTC)
    try:
        image = resolve_image(params["AlgorithmSpecification"]["TrainingImage"])
        channels = _download_channels(params.get("InputDataConfig", []), work_dir / "channels")
    except TrainingSetupError as error:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"{error}\n", encoding="utf-8")
        _finish(
            record,
            training_job_status="Failed",
            secondary_status="Failed",
            failure_reason=str(error)[:1024],
            training_end_time=datetime.now(UTC),
        )
        return
    stopping = params.get("StoppingCondition", {})
    spot = bool(params.get("EnableManagedSpotTraining"))
    checkpoint_config = params.get("CheckpointConfig")
    result = run_training(
        TrainingRequest(
            job_name=name,
            code_dir=image.code_dir,
            image_environment=image.environment,
            hyperparameters=params.get("HyperParameters", {}),
            channels=channels,
            input_data_config=params.get("InputDataConfig", []),
            resource_config=params.get("ResourceConfig", {}),
            max_runtime_seconds=float(stopping.get("MaxRuntimeInSeconds", 86400)),
            max_wait_seconds=float(stopping["MaxWaitTimeInSeconds"]) if spot else None,
            checkpoints=S3CheckpointStore(checkpoint_config["S3Uri"]) if checkpoint_config else None,
            spot_interruptions=spot_interruptions().take() if spot else 0,
            metric_definitions=params["AlgorithmSpecification"].get("MetricDefinitions", []),
            work_dir=work_dir,
            log_path=log_path,
            environment=params.get("Environment", {}),
            cancel=job.cancel,
            job_arn=job_arn,
            warm_starts=runtime.resource(WarmStarts),
        )
    )
    output_path = params["OutputDataConfig"]["S3OutputPath"]
    model_uri = _upload(result.model_archive, output_path, name)
    _upload(result.output_archive, output_path, name)
    seconds = max(1, int((result.end_time - result.start_time).total_seconds()))
    _finish(
        record,
        training_job_status=result.status,
        secondary_status=result.secondary_status,
        failure_reason=result.failure_reason,
        final_metric_data_list=[dict(metric) for metric in result.final_metrics],
        model_artifacts={"S3ModelArtifacts": model_uri} if model_uri else None,
        training_start_time=result.start_time,
        training_end_time=result.end_time,
        training_time_in_seconds=seconds,
        billable_time_in_seconds=seconds,
        secondary_status_transitions=[dict(item) for item in result.secondary_status_transitions],
        creation_time=started,
    )


LOCAL_STORAGE_VOLUME_KEY_MESSAGE: Final = (
    "You can't request a VolumeKmsKeyId when using an instance type with local storage."
)
"""SageMaker's answer to a VolumeKmsKeyId with an instance-store instance type (botocore's SageMaker model,
`ResourceConfig.VolumeKmsKeyId`: "You can't request a VolumeKmsKeyId when using an instance type with local
storage")."""


def refuse_volume_key_with_local_storage(resource_config: dict[str, Any]) -> None:
    """Refuse VolumeKmsKeyId for an instance type with instance store volumes, as SageMaker does.

    Whether a type has them is asked of the emulator's EC2 (DescribeInstanceTypes, InstanceStorageSupported),
    not of sagepipe's own table, so that the pipeline's rule is tested against an independent answer.
    """
    instance_type = str(resource_config.get("InstanceType", ""))
    if not resource_config.get("VolumeKmsKeyId") or not instance_type.startswith("ml."):
        return
    try:
        answer = context.current().client("ec2").describe_instance_types(InstanceTypes=[instance_type[3:]])
    except ClientError:
        return  # a type EC2 does not list (ml.p3.2xlarge): SageMaker's own fleet, nothing to refuse locally
    if any(item.get("InstanceStorageSupported") for item in answer.get("InstanceTypes", [])):
        raise client_error("ValidationException", LOCAL_STORAGE_VOLUME_KEY_MESSAGE)


def describe(name: str) -> dict[str, Any]:
    """DescribeTrainingJob as Step Functions presents it (timestamps in epoch milliseconds)."""
    response = dict(context.current().client("sagemaker").describe_training_job(TrainingJobName=name))
    response.pop("ResponseMetadata", None)

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items()}
        if isinstance(value, list):
            return [shape(item) for item in value]
        return millis(value)

    shaped: dict[str, Any] = shape(response)
    return shaped


class SageMakerTask(LocalSyncTask):
    service_label = "SageMaker"
    service = "sagemaker"
    supported: ClassVar[dict[str, set[str]]] = {
        "createtrainingjob": {
            "AlgorithmSpecification",
            "HyperParameters",
            "ResourceConfig",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "StoppingCondition",
            "TrainingJobName",
            "Tags",
            "VpcConfig",
            "EnableNetworkIsolation",
            "EnableInterContainerTrafficEncryption",
            "EnableManagedSpotTraining",
            "CheckpointConfig",
            "DebugHookConfig",
            "DebugRuleConfigurations",
            "Environment",
            "ExperimentConfig",
            "ProfilerConfig",
            "RetryStrategy",
            "TensorBoardOutputConfig",
        },
    }

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        if self.resource.api_action.lower() != "createtrainingjob":
            raise client_error("ValidationException", f"{self.resource.api_action} is not supported locally")
        params = copy.deepcopy(normalised_parameters)
        name = params["TrainingJobName"]
        refuse_volume_key_with_local_storage(params.get("ResourceConfig", {}))
        refuse_invalid_spot_settings(params)
        backend = _backend(resource_runtime_part.account, resource_runtime_part.region)
        if name in backend.training_jobs:
            raise client_error(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job with "
                f"this name already exists ({backend.training_jobs[name].arn})",
            )
        response = context.current().client("sagemaker").create_training_job(**params)
        record = backend.training_jobs[name]
        # moto creates the job Completed, with made-up metrics and MetricDefinitions: make it what it is.
        _finish(
            record,
            algorithm_specification=copy.deepcopy(params["AlgorithmSpecification"]),
            training_job_status="InProgress",
            secondary_status="Starting",
            final_metric_data_list=None,
            model_artifacts=None,
            training_start_time=None,
            training_end_time=None,
            secondary_status_transitions=None,
        )
        job = local_training_jobs().add(LocalJob(name))
        job.run_in_background(
            lambda running: _run_job(running, record, params, response["TrainingJobArn"]), f"sagemaker-{name}"
        )
        fault_injection.after_call(self, env)
        env.stack.append({"TrainingJobArn": response["TrainingJobArn"]})

    def _stop_abandoned_job(self, normalised_parameters: dict[str, Any], task_output: Any) -> None:
        job = local_training_jobs().get(str(normalised_parameters.get("TrainingJobName")))
        if job is not None:
            job.cancel.set()

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> Any:
        env.stack.pop()
        name = normalised_parameters["TrainingJobName"]
        job = local_training_jobs().get(name)
        if job is None:
            raise RuntimeError(f"the local runtime is not running training job {name} (was the emulator reset?)")
        watch_for_abandonment(env, job, job.cancel.set)

        def finished() -> Any:
            if job.error is not None:
                record = _backend(resource_runtime_part.account, resource_runtime_part.region).training_jobs[name]
                _finish(
                    record,
                    training_job_status="Failed",
                    secondary_status="Failed",
                    failure_reason=f"InternalServerError: the local runtime failed: {job.error}"[:1024],
                )
            description = describe(name)
            if description["TrainingJobStatus"] == "Completed":
                return description
            raise task_failed(self, env, description)

        return sync_resolver(job, finished)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
