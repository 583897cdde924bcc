"""Scan many CloudFormation templates with checkov in one process.

Run by checkov's own interpreter (``.venv-checkov/bin/python -I worker.py REQUEST RESPONSE``),
never imported by sagegate: checkov's pinned dependencies stay in their environment. Importing
only the CloudFormation runner (not checkov's CLI, which imports every framework) and scanning
each template with a fresh runner in a loop costs about a second of startup plus a few
hundredths of a second per template, against about three seconds per template for one
``checkov`` process each.

REQUEST (JSON): ``{"external_checks_dir": DIR, "expected_checks": [ID...],
"templates": {KEY: TEMPLATE}}``.

Started early (``worker.py --serve CHECKS_DIR EXPECTED_IDS RESPONSE``): checkov is imported and
the custom checks loaded at once, then the worker prints one line (``{"ready": true,
"checkov_version", "connection_types"}``: see ``_connection_types``) and waits for the request on stdin (only
``{"templates": ...}`` is read from it) while sagegate composes, validates and builds the stack
beside it (``policies/checkov/process.py``). EOF with no request: it exits without a scan. Each template's ``Metadata.sagegate.checkov_params`` becomes
``SAGEGATE_CHECKOV_PARAMS`` while it is scanned (the custom checks read their policy values there).

RESPONSE (JSON): ``{"checkov_version", "results": {KEY: {"report": <checkov -o json report>,
"unknown": [...], "resource_count": N, "parsing_errors": [...]} | {"error": TEXT}}}``, or
``{"fatal": TEXT}`` when nothing could be scanned. The caller decides what is a gate error.

Fail closed: checkov swallows an exception inside a check as an UNKNOWN result and leaves it out of
its report; this worker records every UNKNOWN so the gate can refuse to pass.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from typing import Any

PARAMS_ENV = "SAGEGATE_CHECKOV_PARAMS"


def _write(path: str, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, default=str)


def _load_checkov(external_checks_dir: str, expected: list[str]) -> tuple[Any, ...]:
    from checkov.cloudformation.checks.resource.registry import cfn_registry
    from checkov.cloudformation.runner import Runner
    from checkov.common.checks.base_check_registry import BaseCheckRegistry
    from checkov.common.models.enums import CheckResult
    from checkov.runner_filter import RunnerFilter
    from checkov.version import version

    if not os.path.isfile(os.path.join(external_checks_dir, "__init__.py")):
        raise RuntimeError(f"custom check directory {external_checks_dir} is missing or has no __init__.py")
    cfn_registry.load_external_checks(external_checks_dir)
    registered = {check.id for checks in cfn_registry.checks.values() for check in checks}
    missing = sorted(set(expected) - registered)
    if missing:
        raise RuntimeError(f"custom checks did not load from {external_checks_dir}: {', '.join(missing)}")
    return Runner, RunnerFilter, BaseCheckRegistry, CheckResult, version


def _connection_types() -> Any:
    """The (resource type, connected type) pairs checkov's CloudFormation graph checks join with a
    connection condition, or "*" when a connection joins any type: what makes one resource's
    result depend on another that points at it (policies/checkov/resources.py)."""
    from checkov.common.checks_infra.registry import get_graph_checks_registry
    from checkov.common.graph.checks_infra.enums import SolverType

    registry = get_graph_checks_registry("cloudformation")
    registry.load_checks()
    pairs: set[tuple[str, str]] = set()
    pending = list(registry.checks)
    while pending:
        check = pending.pop()
        pending += list(check.sub_checks or [])
        connected = list(check.connected_resources_types or [])
        if check.type == SolverType.CONNECTION or connected:
            types = list(check.resource_types or [])
            if not types or not connected or "all" in types + connected:
                return "*"
            pairs |= {(a, b) for a in types for b in connected}
    return sorted(pairs)


def main(argv: list[str]) -> int:
    os.environ.pop("BC_API_KEY", None)
    # One small template at a time: checkov's fork-per-parse costs more than it saves here.
    os.environ.setdefault("CHECKOV_PARALLELIZATION_TYPE", "none")
    serve = len(argv) > 1 and argv[1] == "--serve"
    if serve:  # load now, read the templates from stdin when the caller has them
        checks_dir, expected, response_path = argv[2], [c for c in argv[3].split(",") if c], argv[4]
        request: dict[str, Any] = {}
    else:
        request_path, response_path = argv[1], argv[2]
        with open(request_path, encoding="utf-8") as handle:
            request = json.load(handle)
        checks_dir, expected = request["external_checks_dir"], request.get("expected_checks", [])
    try:
        Runner, RunnerFilter, BaseCheckRegistry, CheckResult, version = _load_checkov(checks_dir, expected)
    except Exception as exc:  # noqa: BLE001 - reported to the caller as a fatal gate error
        _write(response_path, {"fatal": f"{type(exc).__name__}: {exc}"})
        return 3
    if serve:  # ready: say so (with what the caller needs to plan a batch), then wait for it
        try:
            ready = {"ready": True, "checkov_version": version, "connection_types": _connection_types()}
        except Exception as exc:  # noqa: BLE001 - the caller then treats every type as connected
            ready = {"ready": True, "checkov_version": version, "connection_types": "*",
                     "warning": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        text = sys.stdin.read()
        if not text.strip():
            return 0  # not needed after all (e.g. the config was invalid): no scan
        request = json.loads(text)

    unknown: list[dict[str, str]] = []
    original_run_check = BaseCheckRegistry.run_check

    def recording_run_check(self, check, entity_configuration, entity_name, entity_type, scanned_file, skip_info):
        result = original_run_check(self, check, entity_configuration, entity_name, entity_type, scanned_file,
                                    skip_info)
        if result.get("result") == CheckResult.UNKNOWN:
            unknown.append({"check_id": check.id, "resource": f"{entity_type}.{entity_name}"})
        return result

    BaseCheckRegistry.run_check = recording_run_check

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sagegate-checkov-") as tmp:
        for index, (key, template) in enumerate(request["templates"].items()):
            path = os.path.join(tmp, f"template-{index}.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(template, handle, indent=1)
            params = ((template.get("Metadata") or {}).get("sagegate") or {}).get("checkov_params") \
                if isinstance(template, dict) else None
            if params is None:
                os.environ.pop(PARAMS_ENV, None)
            else:
                os.environ[PARAMS_ENV] = json.dumps(params)
            unknown.clear()
            try:
                report = Runner().run(root_folder=None, files=[path],
                                      runner_filter=RunnerFilter(framework=["cloudformation"],
                                                                 show_progress_bar=False))
                if isinstance(report, list):
                    report = report[0]
                body = report.get_dict()
                for section in ("passed_checks", "failed_checks", "skipped_checks"):
                    for record in body["results"].get(section, []):
                        record.pop("code_block", None)
                results[key] = {
                    "report": body,
                    "unknown": list(unknown),
                    "resource_count": len(report.resources),
                    "parsing_errors": list(report.parsing_errors),
                }
            except Exception:  # noqa: BLE001 - one template's failure is reported for that template
                results[key] = {"error": traceback.format_exc(limit=4)}
    _write(response_path, {"checkov_version": version, "results": results})
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    # The response is written and closed: skip the interpreter's teardown of checkov's modules and
    # exit handlers (≈ 0.45 s on this 2-core machine), which the gate would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
