"""``python -m runner.local``: the embedded AWS emulator in the foreground, state kept between runs.

    python -m runner.local [--port 4566]
    python main.py target.endpoint_url=http://127.0.0.1:4566 stage=deploy   # in another shell

Once a stack is deployed to it, its endpoint server (handlers/serve.py on the model artifact) and
its function runtime start here too, and restart when a deploy changes them; ``lambda.invoke``
on the emulator then runs the real handler. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.core.names import STACK_TAG
from runner.targets import Target

POLL_S = 2.0


@dataclass(frozen=True)
class Deployment:
    """What a running data plane was started from; a change restarts it."""

    stack: str
    endpoint_name: str
    model_data_url: str
    function_name: str
    alias: str
    function_version: str


def find_deployments(target: Target) -> list[Deployment]:
    """Stacks on the emulator with an InService endpoint and a function alias."""
    sm, lam = target.client("sagemaker"), target.client("lambda")
    found = []
    for page in sm.get_paginator("list_endpoints").paginate():
        for item in page["Endpoints"]:
            if item["EndpointStatus"] != "InService":
                continue
            endpoint = sm.describe_endpoint(EndpointName=item["EndpointName"])
            tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
            stack = tags.get(STACK_TAG)
            if not stack:
                continue
            config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
            function_name = f"{stack}-invoke"
            try:
                aliases = lam.list_aliases(FunctionName=function_name)["Aliases"]
            except lam.exceptions.ResourceNotFoundException:
                continue
            if not aliases:
                continue
            alias = aliases[0]
            found.append(Deployment(stack, item["EndpointName"], model["PrimaryContainer"]["ModelDataUrl"],
                                    function_name, alias["Name"], alias["FunctionVersion"]))
    return found


class DataPlanes:
    """Keeps one data plane per deployed stack in step with the emulator's state."""

    def __init__(self, target: Target, work_dir: Path, say: Callable[[str], object] = print):
        self.target = target
        self.work_dir = work_dir
        self.say = say
        self.running: dict[str, tuple[Deployment, Any]] = {}

    def sync(self) -> None:
        from runner.targets.dataplane import start_data_plane_for

        current = {d.stack: d for d in find_deployments(self.target)}
        for stack in list(self.running):
            if stack not in current or current[stack] != self.running[stack][0]:
                self.running.pop(stack)[1].stop()
                self.say(f"[{stack}] data plane stopped")
        for stack, deployment in current.items():
            if stack in self.running:
                continue
            artifact = self._artifact(deployment)
            if artifact is None:
                continue
            bucket = f"{stack}-{self.target.account}-{self.target.region}"  # runner.iam.ResourceNames.bucket
            code = self._code(deployment, bucket)
            try:
                plane = start_data_plane_for(self.target, function_name=deployment.function_name,
                                             alias=deployment.alias, endpoint_name=deployment.endpoint_name,
                                             artifact_path=artifact, code=code, log_dir=self.work_dir / stack)
            except Exception as exc:  # keep serving the emulator; say why this stack has no data plane
                self.say(f"[{stack}] data plane not started: {exc}")
                self.running[stack] = (deployment, _Nothing())
                continue
            self.running[stack] = (deployment, plane)
            self.say(f"[{stack}] endpoint {deployment.endpoint_name}: {plane.endpoint_url} "
                     f"(sagemaker-runtime endpoint_url)")
            self.say(f"[{stack}] function {deployment.function_name}:{deployment.alias}: {plane.function_url} "
                     f"(curl --data-binary @image.png -H 'Content-Type: image/png' {plane.function_url})")

    def _artifact(self, deployment: Deployment) -> Path | None:
        if not deployment.model_data_url.startswith("s3://"):
            return None
        bucket, _, key = deployment.model_data_url[5:].partition("/")
        path = self.work_dir / deployment.stack / "model.tar.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.target.client("s3").download_file(bucket, key, str(path))
        except Exception:
            return None  # the artifact is not uploaded (yet)
        return path

    def _code(self, deployment: Deployment, bucket: str) -> dict[str, str] | None:
        lam = self.target.client("lambda")
        location = lam.get_function(FunctionName=deployment.function_name, Qualifier=deployment.alias)["Code"]
        key = location.get("Location", "").split("amazonaws.com/", 1)[-1]
        return {"S3Bucket": bucket, "S3Key": key} if key.startswith("code/") else None

    def stop(self) -> None:
        for _, plane in self.running.values():
            with contextlib.suppress(Exception):
                plane.stop()
        self.running.clear()


class _Nothing:
    def stop(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--no-data-plane", action="store_true", help="the emulator only")
    parser.add_argument("--iam-propagation-s", type=float, default=None, metavar="S",
                        help="seconds before a role or role-policy change reaches Lambda and SageMaker, as on AWS "
                             "(default: $SAGEGATE_IAM_PROPAGATION_S, else 0)")
    args = parser.parse_args(argv)

    from runner.targets import local_target
    from runner.targets.emulator import Emulator

    try:
        emulator = Emulator(args.port, iam_propagation_s=args.iam_propagation_s).start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"sagegate local AWS emulator on {emulator.url}", flush=True)
    print(f"  use it: python main.py target.endpoint_url={emulator.url} stage=deploy", flush=True)
    print("  Ctrl-C stops it (its state goes with it)", flush=True)
    target = local_target(emulator.url, args.region)
    with tempfile.TemporaryDirectory(prefix="sagegate-local-") as work:
        planes = DataPlanes(target, Path(work), say=lambda m: print(m, flush=True))
        try:
            while not stop.is_set():
                if not args.no_data_plane:
                    try:
                        planes.sync()
                    except Exception as exc:  # a half-finished deploy: look again next time
                        print(f"(data plane check: {exc})", file=sys.stderr, flush=True)
                stop.wait(POLL_S)
        finally:
            planes.stop()
            target.close()
            emulator.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
