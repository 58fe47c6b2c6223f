"""`codebuild:startBuild.sync`: the build really runs, locally, for the requested commit.

The gap
    moto lists CodeBuild among the integrations its Step Functions engine does not support: a
    `codebuild:startBuild.sync` task aborts the execution with `RuntimeError: Unsupported sync callback
    procedure`, which no Catch can handle. moto's CodeBuild itself never builds anything, and its
    `batch_get_builds` reports every build SUCCEEDED, so a failing build could not even be represented.

What this adapter does
    `startBuild` (request-response and .sync) records the build in moto's CodeBuild, then runs it on a
    thread with sagepipe.local.codebuild.executor: the requested commit is checked out from the local git
    repository and buildspec.yml runs as written, its `docker` and `aws` calls answered from the emulator by
    the stubs on the build's PATH (sagepipe.local.codebuild.stubs): the image is pushed into the emulator's
    ECR, and IMAGE_URI and IMAGE_DIGEST are what the buildspec itself exports, as on AWS. The build's phases,
    status, exported variables and log are written into moto's build record, so `batch-get-builds` answers
    with what really happened. `.sync` waits for the build; a build that does not succeed fails the task with
    States.TaskFailed and the build as the cause, as Step Functions does. If the execution stops or the task
    times out, the build is stopped.

How it differs from AWS
    No container is built, so a broken Dockerfile instruction other than SAGEMAKER_PROGRAM and the COPY
    into /opt/ml/code is not detected; the buildspec's runtime-versions are not applied (the venv's Python
    runs the build).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from sagepipe.local.codebuild.logs import build_log
from sagepipe.local.codebuild.provisioning import build_projects
from sagepipe.local.core import context
from sagepipe.local.core.emulator import ACCESS_KEY, SECRET_KEY
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute
from sagepipe.local.images import ImageStore
from sagepipe.local.stepfunctions import fault_injection
from sagepipe.local.stepfunctions.aws_sdk import to_sfn_value
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

ADAPTER = "codebuild_sync"

MOTO_INTERNALS: Final = (
    Internal("moto.codebuild.models:codebuild_backends", why="builds are recorded in moto's CodeBuild"),
    Internal(
        "moto.codebuild.models:CodeBuildBackend.start_build",
        parameters=("self", "project_name", "source_version", "artifact_override"),
    ),
    Internal(
        "moto.codebuild.models:CodeBuildBackend.batch_get_builds",
        parameters=("self", "ids"),
        why="moto flips every build it returns to SUCCEEDED; local builds must keep their real status",
    ),
    Internal("moto.codebuild.models:CodeBuildBackend.stop_build", parameters=("self", "build_id")),
)


class LocalBuilds(JobRegistry):
    """The builds the local runtime is running or ran, by build id (in the runtime context)."""


def local_builds() -> LocalBuilds:
    return context.current().state(LocalBuilds)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="milliseconds") if value else None


def _backend(account: str, region: str) -> Any:
    return Internal("moto.codebuild.models:codebuild_backends").resolve(ADAPTER)[account][region]


def _phase_records(result: Any) -> list[dict[str, Any]]:
    return [
        {
            key: value
            for key, value in {
                "phaseType": phase.phase_type,
                "phaseStatus": phase.phase_status,
                "startTime": _iso(phase.start_time),
                "endTime": _iso(phase.end_time),
                "durationInSeconds": phase.duration_seconds,
                "contexts": [dict(item) for item in phase.contexts],
            }.items()
            if value is not None
        }
        for phase in result.phases
    ]


def _run_build(
    job: LocalJob, build: dict[str, Any], project: Any, environment: dict[str, str], source_version: str
) -> None:
    from sagepipe.local.codebuild.executor import BuildRequest, EmulatorAccess, run_build
    from sagepipe.local.warm_start import WarmStarts

    runtime = context.current()
    if runtime.repository is None:
        raise RuntimeError("the local runtime has no git repository to build from")
    build["currentPhase"] = "PROVISIONING"
    log_path = build_log(runtime.logs_dir, build["id"])
    runtime.job_logs[build["id"]] = log_path
    request = BuildRequest(
        repository=runtime.repository,
        source_version=source_version,
        build_id=build["id"],
        environment=environment,
        work_dir=runtime.work_dir / "builds" / build["id"].split(":")[-1],
        log_path=log_path,
        timeout_seconds=project.timeout_seconds,
        buildspec_path=project.buildspec,
        cancel=job.cancel,
        emulator=EmulatorAccess(
            endpoint_url=runtime.endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            image_store=ImageStore.in_state_dir(runtime.state_dir).root,
        ),
        warm_starts=runtime.resource(WarmStarts),
    )
    result = run_build(request)
    build.update(
        {
            "buildStatus": result.build_status,
            "currentPhase": "COMPLETED",
            "phases": _phase_records(result),
            "endTime": _iso(result.end_time),
            "resolvedSourceVersion": result.resolved_source_version,
            "exportedEnvironmentVariables": [
                {"name": name, "value": value} for name, value in result.exported_variables.items()
            ],
            "buildComplete": True,
        }
    )


def _snapshot(build: dict[str, Any]) -> dict[str, Any]:
    """The build as Step Functions presents it: PascalCase, timestamps in epoch milliseconds."""
    shaped: dict[str, Any] = to_sfn_value(build)
    for key in ("StartTime", "EndTime"):
        if isinstance(shaped.get(key), str):
            shaped[key] = millis(datetime.fromisoformat(shaped[key].replace("Z", "+00:00")))
    return shaped


class CodeBuildTask(LocalSyncTask):
    service_label = "CodeBuild"
    service = "codebuild"
    supported: ClassVar[dict[str, set[str]]] = {
        "startbuild": {
            "ProjectName",
            "SourceVersion",
            "EnvironmentVariablesOverride",
            "BuildspecOverride",
            "TimeoutInMinutesOverride",
            "QueuedTimeoutInMinutesOverride",
            "IdempotencyToken",
        },
        "stopbuild": {"Id"},
        "batchgetbuilds": {"Ids"},
    }

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        action = self.resource.api_action.lower()
        if action != "startbuild":
            response = getattr(context.current().client("codebuild"), self._get_boto_service_action())(
                **{key[:1].lower() + key[1:]: value for key, value in normalised_parameters.items()}
            )
            response.pop("ResponseMetadata", None)
            env.stack.append(to_sfn_value(response))
            return
        runtime = context.current()
        name = normalised_parameters["ProjectName"]
        project = build_projects(runtime).get(name)
        account, region = resource_runtime_part.account, resource_runtime_part.region
        if project is None:
            raise client_error("ResourceNotFoundException", f"Project cannot be found: {name}")
        overrides = {
            item["Name"]: item["Value"] for item in normalised_parameters.get("EnvironmentVariablesOverride", [])
        }
        environment = project.environment | overrides
        build = _backend(account, region).start_build(name, normalised_parameters.get("SourceVersion"), None)
        stream = build["id"].split(":")[-1]
        build["environment"]["environmentVariables"] = [
            {"name": key, "value": value, "type": "PLAINTEXT"} for key, value in environment.items()
        ]
        build["logs"] = {"groupName": f"/aws/codebuild/{name}", "streamName": stream}
        job = local_builds().add(LocalJob(build["id"]))
        # Without a SourceVersion, CodeBuild builds the project's default branch: locally, HEAD.
        source_version = normalised_parameters.get("SourceVersion") or "HEAD"
        job.run_in_background(
            lambda running: _run_build(running, build, project, environment, source_version), f"codebuild-{stream}"
        )
        fault_injection.after_call(self, env)
        env.stack.append({"Build": _snapshot(dict(build))})

    def _stop_abandoned_job(self, normalised_parameters: dict[str, Any], task_output: Any) -> None:
        build_id = ((task_output or {}).get("Build") or {}).get("Id")
        job = local_builds().get(str(build_id))
        if job is not None:
            job.cancel.set()

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> Any:
        submitted = env.stack.pop()
        build_id = submitted["Build"]["Id"]
        job = local_builds().get(build_id)
        if job is None:
            raise RuntimeError(f"the local runtime is not running build {build_id} (was the emulator reset?)")
        backend = _backend(resource_runtime_part.account, resource_runtime_part.region)
        watch_for_abandonment(env, job, lambda: backend.stop_build(build_id))

        def finished() -> Any:
            (build,) = backend.batch_get_builds([build_id])
            if job.error is not None:
                build.update(
                    {
                        "buildStatus": "FAULT",
                        "phases": [
                            *build.get("phases", []),
                            {
                                "phaseType": "FINALIZING",
                                "phaseStatus": "FAULT",
                                "contexts": [{"statusCode": "LOCAL_RUNTIME_ERROR", "message": str(job.error)}],
                            },
                        ],
                    }
                )
            snapshot = {"Build": _snapshot(build)}
            if build["buildStatus"] == "SUCCEEDED":
                return snapshot
            raise task_failed(self, env, snapshot)

        return sync_resolver(job, finished)


def batch_get_builds(self: Any, ids: list[str]) -> list[dict[str, Any]]:
    """moto's batch_get_builds, except that local builds keep their real status instead of SUCCEEDED."""
    runtime = context.current_or_none()
    running = runtime.state(LocalBuilds) if runtime is not None else LocalBuilds()
    local = {build_id for build_id in ids if running.get(build_id) is not None}
    others = [build_id for build_id in ids if build_id not in local]
    found: list[dict[str, Any]] = original_attribute(type(self), "batch_get_builds")(self, others) if others else []
    for history in self.build_metadata_history.values():
        found += [build for build in history if build["id"] in local]
    return found


def stop_build(self: Any, build_id: str) -> dict[str, Any] | None:
    runtime = context.current_or_none()
    job = runtime.state(LocalBuilds).get(build_id) if runtime is not None else None
    if job is None:
        stopped: dict[str, Any] | None = original_attribute(type(self), "stop_build")(self, build_id)
        return stopped
    job.cancel.set()
    job.done.wait(timeout=30)
    # The emulator may have been reset meanwhile (a test moving on): then the build is gone, and so is its record.
    builds = batch_get_builds(self, [build_id])
    return builds[0] if builds else None


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.codebuild.models import CodeBuildBackend

    replace_attribute(CodeBuildBackend, "batch_get_builds", batch_get_builds)
    replace_attribute(CodeBuildBackend, "stop_build", stop_build)
