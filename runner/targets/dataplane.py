"""The local target's data plane: the endpoint server on the artifact and the function's runtime.

``start_data_plane`` reads what was deployed (the function's configuration, reserved and
provisioned concurrency, its code package in S3) from the target, starts ``handlers/serve.py`` on
the model artifact and a ``LambdaRuntime`` whose workers get the function's environment plus
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` pointing at that server, and registers the runtime with the
emulator so ``lambda.invoke`` runs the real handler too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.server_process import ServerProcess, spawn_server
from runner.core.errors import UserError
from runner.core.settings import Settings
from runner.stack.model import Stack
from runner.targets import Target, environ_without_aws, service_calls
from runner.targets.emulator import access_denied, refused_calls
from runner.targets.lambda_runtime import FunctionSpec, LambdaRuntime
from runner.targets.moto_gaps import RUNTIME_REGISTRY_PATH

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT_READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class DeployedEndpoint:
    """What the local endpoint server needs of a deployed endpoint: its model's container
    environment and its production variants with their weights."""

    model_environment: dict[str, str]
    variants: list[tuple[str, float]]
    # Where the model's artifact is and the role the endpoint reads it as.
    model_data_url: str = ""
    role_arn: str = ""
    image: str = ""


def deployed_endpoint(target: Target, endpoint_name: str) -> DeployedEndpoint:
    sm = target.client("sagemaker")
    config_name = sm.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
    variants = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    # Every variant serves the same artifact here: the first one's model gives the environment.
    model = sm.describe_model(ModelName=variants[0]["ModelName"])
    container = model.get("PrimaryContainer", {})
    return DeployedEndpoint(dict(container.get("Environment", {})),
                            [(v["VariantName"], float(v.get("InitialVariantWeight", 1.0))) for v in variants],
                            str(container.get("ModelDataUrl", "")), str(model.get("ExecutionRoleArn", "")),
                            str(container.get("Image", "")))


def check_artifact_readable(target: Target, endpoint_name: str, deployed: DeployedEndpoint) -> None:
    """SageMaker reads the model's artifact as the model's execution role when the endpoint starts:
    the local endpoint does too, so a role that may not read it fails here, as on AWS."""
    from botocore.exceptions import ClientError

    if not deployed.model_data_url.startswith("s3://") or not deployed.role_arn:
        return
    bucket, _, key = deployed.model_data_url[len("s3://"):].partition("/")
    s3 = target.role_client("s3", deployed.role_arn, f"SageMaker-{endpoint_name}")
    try:
        # GetObject, as SageMaker does (HEAD's 403 has no body, so no error code to report).
        s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")["Body"].close()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise UserError(f"endpoint {endpoint_name} cannot start: its role {deployed.role_arn} cannot read "
                        f"{deployed.model_data_url} ({code or exc}; s3:GetObject on "
                        f"arn:aws:s3:::{bucket}/{key})") from None


def start_endpoint(artifact: Path, endpoint_name: str, log_path: Path | None = None,
                   timeout_s: float = ENDPOINT_READY_TIMEOUT_S,
                   model_environment: dict[str, str] | None = None,
                   variants: list[tuple[str, float]] | None = None, region: str | None = None) -> ServerProcess:
    """Start the local endpoint server and wait (with a deadline) for its ready line."""
    env = {**environ_without_aws(), **(model_environment or {}), "PYTHONPATH": str(PROJECT_ROOT)}
    where = f" (log: {log_path})" if log_path else ""
    with log_path.open("ab") if log_path else contextlib.nullcontext(subprocess.DEVNULL) as log:
        try:
            return spawn_server(str(artifact), endpoint_name=endpoint_name, env=env, stderr=log,
                                ready_timeout_s=timeout_s, variants=variants, region=region)
        except TimeoutError:
            raise UserError(f"the local endpoint server was not ready after {timeout_s:.0f} s{where}") from None
        except RuntimeError as exc:
            raise UserError(f"the local endpoint server stopped before it was ready: {exc}{where}") from None


@dataclass
class DataPlane:
    endpoint_url: str
    function_url: str
    endpoint: ServerProcess
    runtime: LambdaRuntime
    function_name: str
    _on_stop: list[Any] = field(default_factory=list, repr=False)
    # What the emulator refused before this plane started, and the roles its parts run as.
    _emulator_url: str | None = None
    _denied_before: int = 0
    _roles: tuple[str, ...] = ()

    def refused(self) -> list[str]:
        """Run-time calls of the endpoint's and the function's roles the local target refused since
        the plane started (AccessDenied), once what Lambda ships in the background has been sent."""
        if self.runtime.platform is not None:
            self.runtime.platform.flush()
        if not self._emulator_url:
            return []
        return refused_calls(self._emulator_url, self._denied_before, self._roles)

    def stop(self) -> None:
        while self._on_stop:
            with contextlib.suppress(Exception):
                self._on_stop.pop()()
        self.runtime.stop()
        self.endpoint.stop()

    def __enter__(self) -> DataPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def deployed_function(target: Target, function_name: str, alias: str, code_dir: Path,
                      code: dict[str, str] | None = None) -> FunctionSpec:
    """The function as deployed (through its alias), its code package unpacked into ``code_dir``.

    ``code`` ({"S3Bucket", "S3Key"}) is where the package was uploaded from; without it, the code
    location Lambda reports is fetched (on AWS a presigned URL; the emulator's is not reachable).
    """
    lam = target.client("lambda")
    try:
        config = lam.get_function_configuration(FunctionName=function_name, Qualifier=alias)
        location = lam.get_function(FunctionName=function_name, Qualifier=alias)["Code"].get("Location", "")
    except lam.exceptions.ResourceNotFoundException:
        raise UserError(f"function {function_name}:{alias} is not deployed: run stage=deploy first") from None
    reserved = lam.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions")
    try:
        provisioned = lam.get_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier=alias)["RequestedProvisionedConcurrentExecutions"]
    except lam.exceptions.ProvisionedConcurrencyConfigNotFoundException:
        provisioned = 0
    package = _code_package(target, function_name, location, code)
    digest = base64.b64encode(hashlib.sha256(package).digest()).decode()
    if config.get("CodeSha256") and digest != config["CodeSha256"]:
        raise UserError(f"the code package of {function_name} in S3 is not the deployed one: deploy again")
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        archive.extractall(code_dir)
    return FunctionSpec(
        name=function_name, code_dir=code_dir, handler=config["Handler"],
        environment=dict(config.get("Environment", {}).get("Variables", {})),
        timeout_s=float(config["Timeout"]), memory_mb=int(config["MemorySize"]), reserved=reserved,
        provisioned=int(provisioned), version=config.get("Version", "$LATEST"), arn=config["FunctionArn"])


def _code_package(target: Target, function_name: str, location: str, code: dict[str, str] | None) -> bytes:
    if code is not None:
        return target.client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()
    if location.startswith("https://") and target.kind == "aws":
        with urllib.request.urlopen(location, timeout=30) as answer:  # noqa: S310 (a presigned code URL)
            return answer.read()
    raise UserError(f"cannot fetch the code of {function_name} from {location!r}")


def register_runtime(emulator_url: str, function_name: str, runtime_url: str | None) -> None:
    """Tell the emulator which local runtime runs ``function_name`` (None: none any more)."""
    _register(emulator_url, {"function_name": function_name, "url": runtime_url})


def register_endpoint(emulator_url: str, endpoint_name: str, server_url: str | None) -> None:
    """Tell the emulator which local server serves ``endpoint_name``, so InvokeEndpoint on the
    emulator's own URL reaches it, as on AWS's one regional URL (None: none any more)."""
    _register(emulator_url, {"endpoint_name": endpoint_name, "url": server_url})


def _register(emulator_url: str, entry: dict[str, str | None]) -> None:
    body = json.dumps(entry).encode()
    request = urllib.request.Request(f"{emulator_url.rstrip('/')}{RUNTIME_REGISTRY_PATH}", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (loopback)
        pass


def registered_runtimes(emulator_url: str) -> dict[str, str]:
    """Function name -> runtime URL, as the emulator knows them (e.g. from ``python -m runner.local``)."""
    request = urllib.request.Request(f"{emulator_url.rstrip('/')}{RUNTIME_REGISTRY_PATH}")
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
        return json.loads(answer.read()).get("runtimes", {})


def start_data_plane_for(target: Target, *, function_name: str, alias: str, endpoint_name: str,
                         artifact_path: str | Path, code: dict[str, str] | None = None,
                         log_dir: Path | None = None) -> DataPlane:
    """The endpoint server on the artifact and the deployed function's runtime (target=local)."""
    if target.kind != "local":
        raise UserError("the local data plane runs on target=local only")
    log_dir = Path(log_dir) if log_dir else None
    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
    # Refusals from here on are this plane's (the emulator may have served other runs before).
    denied_before = len(access_denied(target.endpoint_url)) if target.endpoint_url else 0
    code_dir = Path(tempfile.mkdtemp(prefix="sagegate-function-"))
    try:
        spec = deployed_function(target, function_name, alias, code_dir, code)
        deployed = deployed_endpoint(target, endpoint_name)
        if deployed.role_arn and deployed.image:
            service_calls.pull_image(target, endpoint_name, deployed.role_arn, deployed.image)
        check_artifact_readable(target, endpoint_name, deployed)
        endpoint = start_endpoint(Path(artifact_path), endpoint_name, log_dir / "endpoint.log" if log_dir else None,
                                  model_environment=deployed.model_environment, variants=deployed.variants,
                                  region=target.region)
        if deployed.role_arn:
            service_calls.endpoint_started(target, endpoint_name, deployed.role_arn, deployed.variants[0][0],
                                           [f"model server ready at {endpoint.url}"])
    except BaseException:
        shutil.rmtree(code_dir, ignore_errors=True)
        raise
    # The function runs as its role and calls InvokeEndpoint on the emulator's one URL, as on AWS,
    # where the authoriser checks it; Lambda's own calls (logs, traces) are made as the role too.
    spec.environment["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = target.endpoint_url or endpoint.url
    config = target.client("lambda").get_function_configuration(FunctionName=function_name, Qualifier=alias)
    try:
        platform = service_calls.FunctionPlatform(target, function_name, spec.version, config["Role"],
                                                  config.get("TracingConfig", {}).get("Mode") == "Active")
        runtime = LambdaRuntime(spec, base_env={**environ_without_aws(),
                                                **target.role_environment(config["Role"], function_name)},
                                log_path=log_dir / "function.log" if log_dir else None, platform=platform).start()
    except BaseException:
        endpoint.stop()
        shutil.rmtree(code_dir, ignore_errors=True)
        raise
    plane = DataPlane(endpoint.url, runtime.url + "/", endpoint, runtime, spec.name, _emulator_url=target.endpoint_url,
                      _denied_before=denied_before, _roles=(deployed.role_arn, config["Role"]))
    plane._on_stop.append(lambda: shutil.rmtree(code_dir, ignore_errors=True))
    if target.endpoint_url:
        emulator = target.endpoint_url
        register_runtime(emulator, spec.name, runtime.url)
        register_endpoint(emulator, endpoint_name, endpoint.url)
        plane._on_stop.append(lambda: register_runtime(emulator, spec.name, None))
        plane._on_stop.append(lambda: register_endpoint(emulator, endpoint_name, None))
    return plane


def start_data_plane(settings: Settings, target: Target, stack: Stack, artifact_path: str | Path,
                     log_dir: Path | None = None) -> DataPlane:
    """Start the endpoint server and the function runtime for a deployed stack (target=local)."""
    alias = stack.find("AWS::Lambda::Alias")[0].properties["Name"]
    code = stack.find("AWS::Lambda::Function")[0].properties["Code"]
    return start_data_plane_for(target, function_name=stack.names.function_name, alias=alias,
                                endpoint_name=stack.names.endpoint_name, artifact_path=artifact_path,
                                code=code, log_dir=log_dir)
