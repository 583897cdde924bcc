"""checkov as a separate process, from its own virtual environment, offline, failing closed.

Two ways in:

- ``run_checkov_batch`` / ``scan_templates``: many templates in one warm worker process
  (``worker.py``), the fast path for a run and for a whole sweep;
- ``run_checkov_cli``: the ``checkov`` command on one template, exactly as a user would run it
  (the baseline the benchmark compares against, and a cross-check in the tests).

Both parse checkov's ``-o json`` report with ``parse_checkov_report``. Every way checkov can fail
to give an answer (not installed, crashed, timed out, a parse error, a check that came back
UNKNOWN, a template whose resources it did not see) raises ``GateError``: never a pass.

Results can be cached by ``template_key`` (sha256 of the canonical template JSON) in a directory,
so a sweep scans every template once up front (``warm_cache``) and each job reads its result.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policies.checkov.process import (
    CHECKOV_VENV,
    CHECKS_DIR,
    CUSTOM_CHECK_IDS,
    PARAMS_ENV,
    REPO_ROOT,
    WORKER,
    WorkerProcess,
    checkov_environment,
    take_prestarted,
)
from policies.checkov.resources import Unsupported, plan_batch, split_results
from policies.checkov.severity import remediation_for, severity_for
from policies.model import Finding, GateError

if TYPE_CHECKING:
    from runner.core.settings import Settings
    from runner.stack.model import Stack

__all__ = ["CHECKOV_VENV", "CHECKS_DIR", "CUSTOM_CHECK_IDS", "PARAMS_ENV", "REPO_ROOT", "WORKER",
           "checkov_environment"]
# Which resource types each custom check must report on (a missing result there means UNKNOWN).
CUSTOM_CHECK_TYPES = {
    "CKV_SG_001": ("AWS::Lambda::Function",),
    "CKV_SG_002": ("AWS::SageMaker::EndpointConfig", "AWS::SageMaker::NotebookInstance"),
}
CACHE_FORMAT = 1


@dataclass
class CheckovScan:
    """checkov's answer for one template."""

    findings: list[Finding]  # failed checks
    passed: list[tuple[str, str]] = field(default_factory=list)  # (check id, logical id)
    checkov_version: str = ""
    titles: dict[str, str] = field(default_factory=dict)  # check id -> check name, for the report

    def to_json(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "checkov_version": self.checkov_version, "titles": self.titles,
                "findings": [f.as_dict() for f in self.findings], "passed": [list(p) for p in self.passed]}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> CheckovScan:
        if value.get("format") != CACHE_FORMAT:
            raise ValueError("unknown cache format")
        return cls([Finding(**f) for f in value["findings"]], [(p[0], p[1]) for p in value["passed"]],
                   value.get("checkov_version", ""), dict(value.get("titles", {})))


def template_key(template: dict[str, Any]) -> str:
    """The cache key of a template: sha256 of its canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def checkov_params(policy: Any) -> dict[str, Any]:
    """The policy values sagegate's custom checks need, from ``settings.policy``."""
    return {
        "max_reserved_concurrency": policy.max_reserved_concurrency,
        "allowed_instance_types": {"hosting": list(policy.allowed_instance_types.hosting),
                                   "notebook": list(policy.allowed_instance_types.notebook)},
    }


def render_template(settings: Settings, stack: Stack) -> dict[str, Any]:
    """The template checkov scans: the stack's own template plus, in ``Metadata.sagegate``, the
    policy values the custom checks read. The key of this template covers both."""
    template = stack.template()
    metadata = dict(template.get("Metadata") or {})
    metadata["sagegate"] = {"checkov_params": checkov_params(settings.policy)}
    return {**template, "Metadata": metadata}


def _python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        raise GateError(f"checkov is not installed ({python} is missing): run `make env` to build "
                        f"{venv.name}, or set policy.checkov.enabled=false to run the native rules alone")
    return python


def _check_custom_dir(checks_dir: Path) -> None:
    if not (checks_dir / "__init__.py").is_file():
        raise GateError(f"custom checkov checks missing: {checks_dir}/__init__.py not found")


# ---- parsing -----------------------------------------------------------------------------------

def logical_id(checkov_resource: str) -> str:
    """``AWS::Lambda::Function.InvokeFunction`` -> ``InvokeFunction``."""
    return checkov_resource.rsplit(".", 1)[-1]


def check_titles(report: dict[str, Any] | list[Any]) -> dict[str, str]:
    """check id -> check name, for every check in a report."""
    titles: dict[str, str] = {}
    for body in report if isinstance(report, list) else [report]:
        for section in (body.get("results") or {}).values() if isinstance(body, dict) else []:
            for record in section if isinstance(section, list) else []:
                if isinstance(record, dict) and record.get("check_id"):
                    titles.setdefault(record["check_id"], record.get("check_name") or record["check_id"])
    return titles


def parse_checkov_report(report: dict[str, Any] | list[Any]) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Failed checks as findings, and the (check id, logical id) pairs that passed, from checkov's
    ``-o json`` output (one report, or a list of them when several frameworks ran)."""
    reports = report if isinstance(report, list) else [report]
    findings: list[Finding] = []
    passed: list[tuple[str, str]] = []
    for body in reports:
        if not isinstance(body, dict):
            raise GateError(f"unexpected checkov report: {str(body)[:200]}")
        if body.get("check_type", "cloudformation") != "cloudformation":
            continue
        results = body.get("results", {})
        summary = body.get("summary", {})
        if summary.get("parsing_errors") or results.get("parsing_errors"):
            raise GateError(f"checkov could not parse: {results.get('parsing_errors') or summary}")
        for record in results.get("failed_checks", []):
            check_id = record["check_id"]
            name = record.get("check_name") or check_id
            keys = (record.get("check_result") or {}).get("evaluated_keys") or []
            message = name + (f" (evaluated: {', '.join(map(str, keys))})" if keys else "")
            findings.append(Finding(
                rule_id=check_id, engine="checkov", severity=severity_for(check_id, record.get("severity")),
                resource=logical_id(record.get("resource", "?")), config_key="", message=message,
                remediation=remediation_for(check_id, name), title=name,
            ))
        for record in results.get("passed_checks", []):
            passed.append((record["check_id"], logical_id(record.get("resource", "?"))))
    return findings, passed


def _resource_types(template: dict[str, Any]) -> dict[str, str]:
    return {name: body.get("Type", "") for name, body in (template.get("Resources") or {}).items()
            if isinstance(body, dict)}


def _require_custom_results(key: str, template: dict[str, Any], findings: list[Finding],
                            passed: list[tuple[str, str]]) -> None:
    """checkov drops UNKNOWN results from its report: a custom check with no result on a resource
    it covers came back UNKNOWN (or did not run)."""
    seen = {(f.rule_id, f.resource) for f in findings} | set(passed)
    for check_id, types in CUSTOM_CHECK_TYPES.items():
        for name, resource_type in _resource_types(template).items():
            if resource_type in types and (check_id, name) not in seen:
                raise GateError(f"checkov gave no result for {check_id} on {name} (template {key[:12]}): "
                                "the check came back UNKNOWN or did not load")


# ---- the warm worker ---------------------------------------------------------------------------

def _chunks(items: list[tuple[str, dict]], count: int) -> list[list[tuple[str, dict]]]:
    return [chunk for chunk in (items[i::count] for i in range(count)) if chunk]


def default_workers(template_count: int) -> int:
    """One worker. Measured on the 2-core machines: a second worker pays its own ~1 s of imports
    and, with other processes on the cores, made a 100-template batch slower (13-16 s vs 8-11 s)."""
    return 1


def scan_templates(templates: dict[str, dict[str, Any]], timeout_s: float, *, workers: int | None = None,
                   venv: Path = CHECKOV_VENV, checks_dir: Path = CHECKS_DIR) -> dict[str, CheckovScan]:
    """Scan every template with checkov in ``workers`` warm processes; results per key."""
    if not templates:
        return {}
    python = _python(venv)
    _check_custom_dir(checks_dir)
    chunks = _chunks(list(templates.items()), max(1, workers or default_workers(len(templates))))
    deadline = time.monotonic() + timeout_s
    prestarted = take_prestarted(venv, checks_dir) if len(chunks) == 1 else None
    if prestarted is not None:  # started by main.py, checkov (being) loaded already
        try:
            prestarted.send(templates)
            try:
                returncode, response, stderr = prestarted.wait(timeout_s)
            except subprocess.TimeoutExpired:
                raise GateError(f"checkov timed out after {timeout_s:g} s "
                                f"({len(templates)} template(s); policy.checkov.timeout_s)") from None
            return _collect(templates, [_read_response(returncode, response, stderr)])
        finally:
            prestarted.discard()
    responses: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sagegate-gate-") as tmp:
        processes = []
        try:
            for i, chunk in enumerate(chunks):
                request, response = Path(tmp, f"request-{i}.json"), Path(tmp, f"response-{i}.json")
                request.write_text(json.dumps({"external_checks_dir": str(checks_dir),
                                               "expected_checks": list(CUSTOM_CHECK_IDS),
                                               "templates": dict(chunk)}, default=str))
                process = subprocess.Popen(
                    [str(python), "-I", str(WORKER), str(request), str(response)], cwd=tmp,
                    env=checkov_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, text=True)
                processes.append((process, response))
            for process, response in processes:
                try:
                    _, stderr = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise GateError(f"checkov timed out after {timeout_s:g} s "
                                    f"({len(templates)} template(s); policy.checkov.timeout_s)") from None
                responses.append(_read_response(process.returncode, response, stderr))
        finally:
            for process, _ in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return _collect(templates, responses)


def _read_response(returncode: int, response: Path, stderr: str) -> dict[str, Any]:
    tail = "\n".join(stderr.strip().splitlines()[-8:])
    try:
        body = json.loads(response.read_text())
    except (OSError, json.JSONDecodeError):
        raise GateError(f"checkov crashed (exit {returncode}) without a report: {tail or 'no output'}") from None
    if "fatal" in body:
        raise GateError(f"checkov could not start: {body['fatal']}")
    if returncode != 0:
        raise GateError(f"checkov exited {returncode}: {tail}")
    return body


def _collect(templates: dict[str, dict[str, Any]], responses: list[dict[str, Any]]) -> dict[str, CheckovScan]:
    merged: dict[str, Any] = {}
    version = ""
    for body in responses:
        merged.update(body["results"])
        version = body.get("checkov_version", version)
    scans: dict[str, CheckovScan] = {}
    problems: list[str] = []
    for key, template in templates.items():
        result = merged.get(key)
        if result is None:
            problems.append(f"{key[:12]}: no result")
            continue
        if "error" in result:
            problems.append(f"{key[:12]}: checkov failed: {result['error'].strip().splitlines()[-1]}")
            continue
        if result["unknown"]:
            which = ", ".join(f"{u['check_id']} on {u['resource']}" for u in result["unknown"][:5])
            problems.append(f"{key[:12]}: UNKNOWN results ({which})")
            continue
        if result["parsing_errors"]:
            problems.append(f"{key[:12]}: parse error")
            continue
        if _resource_types(template) and not result["resource_count"]:
            problems.append(f"{key[:12]}: checkov saw none of the template's resources")
            continue
        try:
            findings, passed = parse_checkov_report(result["report"])
            _require_custom_results(key, template, findings, passed)
        except GateError as exc:
            problems.append(str(exc))
            continue
        scans[key] = CheckovScan(findings, passed, version, check_titles(result["report"]))
    if problems:
        raise GateError("checkov gave no usable answer: " + "; ".join(problems[:5])
                        + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    return scans


def scan_by_resource(templates: dict[str, dict[str, Any]], timeout_s: float, *, venv: Path = CHECKOV_VENV,
                     checks_dir: Path = CHECKS_DIR, stats: dict[str, int] | None = None) -> dict[str, CheckovScan]:
    """Every template's answer, scanning each distinct resource view once (policies/checkov/
    resources.py): the parts of the templates that hold the views go to one warm worker in one
    batch, and each template gets its resources' results. Same answers as ``scan_templates``;
    a template or a result the views do not model makes it scan whole templates instead.
    ``stats`` (if given) gets the templates, parts and resources scanned."""
    return start_scan_by_resource(templates, timeout_s, venv=venv, checks_dir=checks_dir, stats=stats)()


def start_scan_by_resource(templates: dict[str, dict[str, Any]], timeout_s: float, *, venv: Path = CHECKOV_VENV,
                           checks_dir: Path = CHECKS_DIR,
                           stats: dict[str, int] | None = None) -> Callable[[], dict[str, CheckovScan]]:
    """``scan_by_resource``, in two steps: this call hands the batch to the worker (waiting only
    for checkov to be loaded) and returns at once; calling what it returns waits for the answer.
    The caller does its own work while checkov scans. What is returned must be called (it also
    stops the worker), at most once."""
    if not templates:
        return dict  # nothing to scan: finishing gives {}
    python = _python(venv)
    _check_custom_dir(checks_dir)
    deadline = time.monotonic() + timeout_s
    worker = take_prestarted(venv, checks_dir)
    if worker is None:
        if not python.exists():  # pragma: no cover - _python raised already
            raise GateError(f"checkov is not installed ({python})")
        worker = WorkerProcess(venv, checks_dir)
    try:
        ready = worker.ready(deadline - time.monotonic())
        batch = None
        if ready is not None:
            try:
                batch = plan_batch(templates, ready["connection_types"])
            except Unsupported:
                batch = None
        worker.send(batch.synthetic if batch is not None else templates)
    except BaseException:
        worker.discard()
        raise

    def finish() -> dict[str, CheckovScan]:
        try:
            try:
                returncode, response, stderr = worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise GateError(f"checkov timed out after {timeout_s:g} s "
                                f"({len(templates)} template(s); policy.checkov.timeout_s)") from None
            if ready is None and returncode != 0 and not response.exists():
                raise GateError(f"checkov timed out after {timeout_s:g} s or crashed while loading: "
                                f"{stderr.strip()[-500:] or 'no output'}")
            body = _read_response(returncode, response, stderr)
        finally:
            worker.discard()
        if batch is None:
            return _collect(templates, [body])
        parts = _collect(batch.synthetic, [body])
        if stats is not None:
            stats.update(templates=len(templates), parts=len(batch.synthetic), resources=batch.resources_scanned,
                         template_resources=sum(len(v) for v in batch.template_views.values()))
        try:
            return _assemble(templates, batch, parts)
        except Unsupported:  # a result on something other than a resource: scan the templates whole
            return scan_templates(templates, max(1.0, deadline - time.monotonic()), venv=venv, checks_dir=checks_dir)

    return finish


def _assemble(templates: dict[str, dict[str, Any]], batch: Any,
              parts: dict[str, CheckovScan]) -> dict[str, CheckovScan]:
    per_part = {name: split_results(scan.findings, scan.passed, batch.synthetic[name]["Resources"])
                for name, scan in parts.items()}
    titles: dict[str, str] = {}
    version = ""
    for scan in parts.values():
        titles.update(scan.titles)
        version = scan.checkov_version or version
    scans: dict[str, CheckovScan] = {}
    for key, template in templates.items():
        findings: list[Finding] = []
        passed: list[tuple[str, str]] = []
        for rid, view in batch.template_views[key].items():
            name, part_id = batch.covered_by[view]
            assert part_id == rid  # a view holds the logical id
            failed, ok = per_part[name][rid]
            findings += [Finding(**f.as_dict()) for f in failed]
            passed += ok
        _require_custom_results(key, template, findings, passed)
        used = {f.rule_id for f in findings} | {c for c, _ in passed}
        scans[key] = CheckovScan(findings, passed, version, {c: t for c, t in titles.items() if c in used})
    return scans


def run_checkov_batch(templates: dict[str, dict[str, Any]], timeout_s: float, *,
                      workers: int | None = None) -> dict[str, list[Finding]]:
    """Many templates (key -> template) in one warm checkov process (or ``workers`` of them);
    the failed checks per key. Raises ``GateError`` when checkov gives no usable answer."""
    return {key: scan.findings for key, scan in scan_templates(templates, timeout_s, workers=workers).items()}


# ---- the cache a sweep shares --------------------------------------------------------------------

def cache_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}.json"


def load_cached(cache_dir: Path, template: dict[str, Any]) -> CheckovScan | None:
    path = cache_path(cache_dir, template_key(template))
    try:
        return CheckovScan.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_cached(cache_dir: Path, key: str, scan: CheckovScan) -> Path:
    path = cache_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(scan.to_json()))
    partial.replace(path)  # atomic: a reader sees the whole file or none
    return path


def warm_cache(templates: Iterable[dict[str, Any]], cache_dir: Path, timeout_s: float, *,
               workers: int | None = None, by_resource: bool = True,
               stats: dict[str, int] | None = None) -> dict[str, CheckovScan]:
    """Scan every template not yet in ``cache_dir`` in one batch and store the results, keyed by
    ``template_key``; ``by_resource``: each distinct resource once (``scan_by_resource``). For a
    sweep: render every job's template (``render_template``), call this once (or
    ``start_warm_cache``), then give each job ``checkov_cache_dir``."""
    if not by_resource:
        return _stored(cache_dir, scan_templates(_not_cached(templates, cache_dir), timeout_s, workers=workers))
    return start_warm_cache(templates, cache_dir, timeout_s, stats=stats)()


def start_warm_cache(templates: Iterable[dict[str, Any]], cache_dir: Path, timeout_s: float, *,
                     stats: dict[str, int] | None = None) -> Callable[[], dict[str, CheckovScan]]:
    """``warm_cache`` by resource, in two steps (``start_scan_by_resource``): the batch is handed
    to the worker now; calling what is returned waits for it and stores the results."""
    finish_scan = start_scan_by_resource(_not_cached(templates, cache_dir), timeout_s, stats=stats)
    return lambda: _stored(cache_dir, finish_scan())


def _stored(cache_dir: Path, scans: dict[str, CheckovScan]) -> dict[str, CheckovScan]:
    for key, scan in scans.items():
        store_cached(cache_dir, key, scan)
    return scans


def _not_cached(templates: Iterable[dict[str, Any]], cache_dir: Path) -> dict[str, dict[str, Any]]:
    pending: dict[str, dict[str, Any]] = {}
    for template in templates:
        key = template_key(template)
        if key not in pending and not cache_path(cache_dir, key).exists():
            pending[key] = template
    return pending


# ---- the checkov command, one template at a time ----------------------------------------------------

def run_checkov_cli(template: dict[str, Any], timeout_s: float, *, venv: Path = CHECKOV_VENV,
                    checks_dir: Path = CHECKS_DIR) -> CheckovScan:
    """``checkov -f TEMPLATE --framework cloudformation --skip-download -o json
    --external-checks-dir CHECKS``: one process for one template, as a user runs it."""
    executable = venv / "bin" / "checkov"
    if not executable.exists():
        raise GateError(f"checkov is not installed ({executable} is missing): run `make env`")
    _check_custom_dir(checks_dir)
    env = checkov_environment()
    params = ((template.get("Metadata") or {}).get("sagegate") or {}).get("checkov_params")
    if params is not None:
        env[PARAMS_ENV] = json.dumps(params)
    with tempfile.TemporaryDirectory(prefix="sagegate-checkov-cli-") as tmp:
        path = Path(tmp, "template.json")
        path.write_text(json.dumps(template, indent=1))
        command = [str(executable), "-f", str(path), "--framework", "cloudformation", "--skip-download",
                   "-o", "json", "--external-checks-dir", str(checks_dir)]
        try:
            done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise GateError(f"checkov timed out after {timeout_s:g} s") from None
    if done.returncode not in (0, 1):
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise GateError(f"checkov exited {done.returncode}: {tail}")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise GateError(f"checkov printed no JSON report: {done.stdout[:200]!r}") from None
    findings, passed = parse_checkov_report(report)
    if _resource_types(template) and not findings and not passed:
        raise GateError("checkov saw none of the template's resources")
    _require_custom_results("cli", template, findings, passed)
    version = (report[0] if isinstance(report, list) and report else report).get("summary", {}).get(
        "checkov_version", "") if report else ""
    return CheckovScan(findings, passed, version, check_titles(report))
