"""The local data plane end to end: a deployed stack, the real handler, the real endpoint server."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request

import pytest
from runner_helpers import settings_for

from runner.core.errors import UserError
from runner.deploy import apply, ensure_bucket, upload_artifact
from runner.stack.build import build_stack
from runner.targets.dataplane import start_data_plane


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_function_url_and_invoke_reach_the_endpoint(local_target, stack_name, artifact, tmp_path):
    """Deployed config -> runtime: provisioned workers warm, reserved cap, the handler calls the endpoint."""
    settings = settings_for(stack_name)
    names = build_stack(settings).names
    ensure_bucket(local_target, names)
    stack = build_stack(settings, model_data_url=upload_artifact(local_target, names, artifact))
    apply(stack, local_target)

    with start_data_plane(settings, local_target, stack, artifact, log_dir=tmp_path / "logs") as plane:
        assert plane.runtime.warm_workers == settings.function.provisioned_concurrency
        assert plane.runtime.limit == settings.function.reserved_concurrency
        request = urllib.request.Request(plane.function_url, data=_png(), method="POST",
                                         headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            body = json.loads(answer.read())
        assert answer.status == 200, body
        predictions = body["predictions"][0]
        assert {p["label"] for p in predictions} <= {"cat", "dog", "bird"} and len(predictions) >= 1

        lam = local_target.client("lambda")
        event = {"image": base64.b64encode(_png()).decode(), "content_type": "image/png"}
        answer = lam.invoke(FunctionName=stack.names.function_name, Qualifier="live",
                            Payload=json.dumps(event).encode())
        payload = json.loads(answer["Payload"].read())
        assert payload["statusCode"] == 200, payload
        assert json.loads(payload["body"])["predictions"]


def test_runner_local_finds_what_was_deployed(local_target, stack_name, artifact, tmp_path):
    """`python -m runner.local` starts a data plane from the emulator's state alone: the pieces it reads."""
    from runner.app.local import DataPlanes, find_deployments

    settings = settings_for(stack_name)
    names = build_stack(settings).names
    ensure_bucket(local_target, names)
    stack = build_stack(settings, model_data_url=upload_artifact(local_target, names, artifact))
    apply(stack, local_target)

    (deployment,) = [d for d in find_deployments(local_target) if d.stack == stack_name]
    assert (deployment.endpoint_name, deployment.function_name, deployment.alias) == (
        names.endpoint_name, names.function_name, "live")
    assert deployment.model_data_url == stack.model_data_url
    planes = DataPlanes(local_target, tmp_path)
    assert planes._artifact(deployment).read_bytes() == artifact.read_bytes()
    assert planes._code(deployment, names.bucket) == stack.resource("InvokeFunction").properties["Code"]


def test_the_local_endpoint_serves_every_deployed_variant(local_target, stack_name, artifact, tmp_path):
    """endpoint=ab_test: the runtime API answers as one of the two variants, and a request that
    targets a variant (X-Amzn-SageMaker-Target-Variant) is answered by that one."""
    settings = settings_for(stack_name, "endpoint=ab_test")
    names = build_stack(settings).names
    ensure_bucket(local_target, names)
    stack = build_stack(settings, model_data_url=upload_artifact(local_target, names, artifact))
    apply(stack, local_target)

    with start_data_plane(settings, local_target, stack, artifact, log_dir=tmp_path / "logs") as plane:
        import boto3

        runtime = boto3.client("sagemaker-runtime", endpoint_url=plane.endpoint_url, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        seen = {runtime.invoke_endpoint(EndpointName=names.endpoint_name, Body=_png(),
                                        ContentType="image/png")["InvokedProductionVariant"] for _ in range(12)}
        assert seen <= {"AllTraffic", "Candidate"} and seen
        targeted = runtime.invoke_endpoint(EndpointName=names.endpoint_name, Body=_png(), ContentType="image/png",
                                           TargetVariant="Candidate")
        assert targeted["InvokedProductionVariant"] == "Candidate"


def test_invoke_endpoint_on_the_emulators_one_url(local_target, stack_name, artifact, tmp_path):
    """Like AWS's one regional URL: sagemaker-runtime InvokeEndpoint sent to the emulator reaches the
    endpoint's local server; an unknown endpoint is AWS's ValidationError."""
    from botocore.exceptions import ClientError

    settings = settings_for(stack_name)
    names = build_stack(settings).names
    ensure_bucket(local_target, names)
    stack = build_stack(settings, model_data_url=upload_artifact(local_target, names, artifact))
    apply(stack, local_target)
    runtime = local_target.client("sagemaker-runtime")  # the emulator's URL, not the server's port
    assert runtime.meta.endpoint_url == local_target.endpoint_url

    with start_data_plane(settings, local_target, stack, artifact, log_dir=tmp_path / "logs"):
        answer = runtime.invoke_endpoint(EndpointName=names.endpoint_name, Body=_png(), ContentType="image/png",
                                         Accept="application/json")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        assert json.loads(answer["Body"].read())["predictions"][0]
        with pytest.raises(ClientError) as unknown:
            runtime.invoke_endpoint(EndpointName=f"{stack_name}-nope", Body=_png(), ContentType="image/png")
        assert unknown.value.response["Error"]["Code"] == "ValidationError"
        assert unknown.value.response["Error"]["Message"] == (
            f"Endpoint {stack_name}-nope of account {local_target.account} not found.")


NO_ARTIFACT_READ = ("iam.roles.sagemaker_execution.scopes=[{service:s3,actions:[GetObject],resources:[data]},"
                    "{service:s3,actions:[ListBucket],resources:[bucket]},"
                    "{service:ecr,actions:[BatchGetImage,GetDownloadUrlForLayer,BatchCheckLayerAvailability],"
                    "resources:[dlc_repositories]},{service:ecr,actions:[GetAuthorizationToken],resources:['*']}]")


def test_an_endpoint_whose_role_may_not_read_its_artifact_does_not_start(local_target, stack_name, artifact,
                                                                          tmp_path):
    settings = settings_for(stack_name, NO_ARTIFACT_READ)
    names = build_stack(settings).names
    ensure_bucket(local_target, names)
    uri = upload_artifact(local_target, names, artifact)
    stack = build_stack(settings, model_data_url=uri)
    apply(stack, local_target)
    with pytest.raises(UserError, match=rf"endpoint {stack.names.endpoint_name} cannot start: its role .* cannot "
                                        rf"read {uri} \(AccessDenied; s3:GetObject on arn:aws:s3:::"):
        start_data_plane(settings, local_target, stack, artifact, log_dir=tmp_path / "logs")
