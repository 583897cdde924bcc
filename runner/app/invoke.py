"""The smoke test and `stage=invoke`: images through the deployed function, predictions back.

On the local target the function is reached at its Function-URL-style address (the local Lambda
runtime turns the request into a real Function URL event for handlers/lambda_function.py, which
calls the endpoint server through boto3's sagemaker-runtime client). On AWS the function's alias
is invoked with a direct-invoke event. Either way the path is function → endpoint → model.
"""

from __future__ import annotations

import base64
import contextlib
import json
import mimetypes
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.table import Table

from runner.app.context import RunContext
from runner.core.errors import EXIT_VIOLATIONS, UserError
from runner.core.names import ResourceNames
from runner.core.settings import Settings
from runner.stack.model import Stack
from runner.targets import Target
from runner.targets.dataplane import DataPlane

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
HTTP_TIMEOUT_S = 60


class SmokeTestFailed(UserError):
    exit_code = EXIT_VIOLATIONS


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    content_type: str
    true_label: str | None


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    latency_ms: float


Caller = Callable[[Sample], Answer]


def _content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed if guessed and guessed.startswith("image/") else "application/x-image"


def samples(context: RunContext, data_dir: Callable[[], Path] | None) -> list[Sample]:
    """The user's `image=PATH`, or `invoke.samples` held-out test images of different classes."""
    settings = context.settings
    if settings.image is not None:
        path = Path(settings.image).expanduser()
        if not path.is_file():
            raise UserError(f"image: {path} is not a file")
        return [Sample(path.name, path.read_bytes(), _content_type(path), None)]
    if data_dir is None:
        raise UserError("image: give an image to classify (image=PATH)")
    test = data_dir() / "test"
    classes = sorted(p for p in test.iterdir() if p.is_dir()) if test.is_dir() else []
    if not classes:
        raise UserError(f"data.source: no test split with class folders in {test.parent}; pass image=PATH")
    count = min(settings.invoke.samples, len(classes))
    chosen = [classes[i * len(classes) // count] for i in range(count)]
    picked = []
    for folder in chosen:
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            picked.append(Sample(f"{folder.name}/{images[0].name}", images[0].read_bytes(),
                                 _content_type(images[0]), folder.name))
    if not picked:
        # A smoke test that sends nothing proves nothing.
        raise UserError(f"data.source: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the test split's "
                        f"class folders under {test}; pass image=PATH")
    return picked


def _http_caller(function_url: str) -> Caller:
    def call(sample: Sample) -> Answer:
        request = urllib.request.Request(function_url, data=sample.data, method="POST",
                                         headers={"Content-Type": sample.content_type})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 (loopback)
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except urllib.error.URLError as error:
            raise UserError(f"the local function at {function_url} did not answer: {error.reason}") from None
        return Answer(status, _json(raw), (time.perf_counter() - started) * 1000)

    return call


def _lambda_caller(target: Target, function_name: str, alias: str) -> Caller:
    client = target.client("lambda")

    def call(sample: Sample) -> Answer:
        event = {"image": base64.b64encode(sample.data).decode(), "content_type": sample.content_type}
        started = time.perf_counter()
        response = client.invoke(FunctionName=function_name, Qualifier=alias, Payload=json.dumps(event).encode())
        proxy = _json(response["Payload"].read())
        latency = (time.perf_counter() - started) * 1000
        if response.get("FunctionError"):
            return Answer(502, {"error": "FunctionError", "message": str(proxy)[:300]}, latency)
        return Answer(int(proxy.get("statusCode", 502)), _json(proxy.get("body", "{}")), latency)

    return call


def _json(raw: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        return {"error": "not JSON", "message": str(raw)[:300]}
    return value if isinstance(value, dict) else {"value": value}


def function_caller(settings: Settings, target: Target, plane: DataPlane | None = None) -> Caller:
    names = ResourceNames.for_settings(settings, target.account)
    if not target.serves_data_plane:
        return _lambda_caller(target, names.function_name, settings.function.alias)
    if plane is not None:
        return _http_caller(plane.function_url)
    from runner.targets.dataplane import registered_runtimes

    assert target.endpoint_url is not None  # a target that serves the data plane is an emulator
    runtimes = registered_runtimes(target.endpoint_url)
    if names.function_name not in runtimes:
        raise UserError(
            f"no local runtime runs {names.function_name}: deploy it to an emulator started with "
            "`python -m runner.local` and pass target.endpoint_url, or run the whole job with serve=true"
        )
    return _http_caller(runtimes[names.function_name].rstrip("/") + "/")


def refusals_from_now(settings: Settings, target: Target) -> Callable[[], list[str]] | None:
    """Calls of this stack's roles the emulator refuses from now on (a data plane started elsewhere,
    e.g. by ``python -m runner.local``); None on AWS, where IAM answers the callers themselves."""
    if not target.serves_data_plane or not target.endpoint_url:
        return None
    from runner.targets.emulator import access_denied, refused_calls

    url = target.endpoint_url
    names = ResourceNames.for_settings(settings, target.account)
    roles = {names.role_arn(key) for key in settings.iam.roles}
    before = len(access_denied(url))
    return lambda: refused_calls(url, before, roles)


def _top_predictions(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The first image's top-k of a handler's 200 body ({"predictions": [[{label, score}, ...]]})."""
    predictions = body.get("predictions")
    if isinstance(predictions, list) and predictions and isinstance(predictions[0], list) and predictions[0] \
            and all(isinstance(p, dict) and "label" in p and "score" in p for p in predictions[0]):
        return predictions[0]
    return None


def run(context: RunContext, caller: Caller, batch: list[Sample],
        refused: Callable[[], list[str]] | None = None) -> list[dict[str, Any]]:
    """Send every sample, print a table, return the records; a failed call fails the smoke test, and
    so does a run-time call of the stack's roles the local target refused (``refused``: e.g. the
    function's logs, which Lambda would drop on AWS while the function still answers)."""
    records = []
    for sample in batch:
        answer = caller(sample)
        record: dict[str, Any] = {"image": sample.name, "true_label": sample.true_label, "status": answer.status,
                                  "latency_ms": round(answer.latency_ms, 1)}
        top = _top_predictions(answer.body) if answer.status == 200 else None
        if top:
            record["predictions"] = top
            record["label"], record["score"] = top[0]["label"], top[0]["score"]
        else:
            # Not an answer the handler gives: a failed call, or a 200 without predictions.
            record["status"] = answer.status if answer.status != 200 else "200 without predictions"
            record["error"] = answer.body
        records.append(record)
    _print(context, records)
    denied = refused() if refused is not None else []
    if denied:
        context.result["access_denied"] = denied
    failed = [r for r in records if r["status"] != 200]
    problems = []
    if failed:
        first = failed[0]
        problems.append(f"the function answered {first['status']} for {first['image']}: "
                        f"{json.dumps(first['error'])[:300]}")
    if denied:
        problems.append("the local target refused run-time calls of the stack's roles (AccessDenied, as IAM "
                        "would on AWS): " + "; ".join(denied[:5]) + (f"; and {len(denied) - 5} more"
                                                                      if len(denied) > 5 else ""))
    if problems:
        raise SmokeTestFailed("invoke: " + "\n  ".join(problems))
    return records


def _print(context: RunContext, records: list[dict[str, Any]]) -> None:
    table = Table(title="predictions through the function")
    for column in ("image", "true label", "predicted", "score", "top-k", "latency"):
        table.add_column(column)
    for r in records:
        if r["status"] != 200:
            table.add_row(r["image"], r["true_label"] or "", f"[red]HTTP {r['status']}[/]", "", "", "")
            continue
        mark = "" if r["true_label"] is None else (" [green]✓[/]" if r["label"] == r["true_label"] else " [red]✗[/]")
        others = ", ".join(f"{p['label']} {p['score']:.2f}" for p in r["predictions"][1:])
        table.add_row(r["image"], r["true_label"] or "", f"{r['label']}{mark}", f"{r['score']:.3f}", others,
                      f"{r['latency_ms']:.0f} ms")
    context.console.print(table)


@contextlib.contextmanager
def data_plane(context: RunContext, target: Target, stack: Stack, artifact: Path) -> Iterator[Any]:
    """The local endpoint server and function runtime (target=local); nothing to start on AWS."""
    if not target.serves_data_plane:
        yield None
        return
    from runner.targets.dataplane import start_data_plane

    with context.console.status("starting the local endpoint server and function runtime"):
        plane = start_data_plane(context.settings, target, stack, artifact, log_dir=context.run_dir)
    try:
        yield plane
    finally:
        plane.stop()


def serve_forever(context: RunContext, target: Target, stack: Stack, artifact: Path, plane: DataPlane | None = None) -> None:
    """serve=true: keep the emulator, endpoint and function up until Ctrl-C."""
    with contextlib.ExitStack() as stack_of_things:
        if plane is None:
            plane = stack_of_things.enter_context(data_plane(context, target, stack, artifact))
        console = context.console
        if plane is not None:
            console.print(f"[bold]serving[/] (Ctrl-C to stop)\n"
                          f"  function (Function URL): curl -s -X POST --data-binary @digit.png "
                          f"-H 'Content-Type: image/png' {plane.function_url}\n"
                          f"  endpoint (runtime API):  {plane.endpoint_url}/endpoints/{stack.names.endpoint_name}/invocations\n"
                          f"  emulator: {target.endpoint_url}  →  python main.py stage=invoke image=PATH "
                          f"target.endpoint_url={target.endpoint_url}", soft_wrap=True)
        # `kill` stops it as cleanly as Ctrl-C: the endpoint server and workers are shut down.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping")
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
