"""``python -m policies scan-iam FILE...``: the least-privilege analyser on any IAM policy.
``python -m policies deployer-policy [OVERRIDES...] [--out FILE] [--account ID]``: the policy of the
identity that deploys the configured stack (policies/deployer_policy.py), checked against the IAM
catalogue (exit 1 if the catalogue refuses a statement).

Accepts, per file (JSON): a policy document (identity or trust policy), the output of
``aws iam get-policy-version`` / ``get-role-policy`` (``PolicyVersion.Document`` /
``PolicyDocument``), or a CloudFormation template (its roles' inline, managed and trust policies,
and its ``AWS::IAM::Policy`` / ``ManagedPolicy`` documents). Exit 0 when nothing is high or
critical, 1 when something is, 2 when a file cannot be read as a policy.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from policies.iam_analyzer import (
    IamIssue,
    PolicyError,
    analyze_managed_policies,
    analyze_permissions,
    analyze_trust_policy,
)
from policies.model import SEVERITY_RANK, Finding
from policies.rules.registry import all_rules

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
PRINCIPAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")


def _document(value: Any) -> Any:
    """A policy document, decoding the URL-encoded JSON that the IAM API returns."""
    if isinstance(value, str):
        text = urllib.parse.unquote(value) if value.lstrip().startswith("%7B") else value
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy document is not JSON: {exc}") from None
    return value


def _is_trust_policy(document: Any) -> bool:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    statements = statements if isinstance(statements, list) else [statements]
    return any(isinstance(s, dict) and ("Principal" in s or "NotPrincipal" in s) for s in statements)


def issues_in(data: Any) -> Iterator[tuple[str | None, IamIssue]]:
    """(logical id or None, issue) for everything the analyser finds in one parsed file."""
    if isinstance(data, dict) and isinstance(data.get("Resources"), dict):
        for name, resource in data["Resources"].items():
            if not isinstance(resource, dict):
                continue
            kind, props = resource.get("Type"), resource.get("Properties") or {}
            if kind in PRINCIPAL_TYPES:
                documents = [_document(p["PolicyDocument"]) for p in props.get("Policies", []) if "PolicyDocument" in p]
                for issue in analyze_permissions(documents):
                    yield name, issue
                if "AssumeRolePolicyDocument" in props:
                    for issue in analyze_trust_policy(_document(props["AssumeRolePolicyDocument"])):
                        yield name, issue
                for issue in analyze_managed_policies(props.get("ManagedPolicyArns", [])):
                    yield name, issue
            elif kind in POLICY_TYPES and "PolicyDocument" in props:
                for issue in analyze_permissions([_document(props["PolicyDocument"])]):
                    yield name, issue
        return
    if isinstance(data, dict) and isinstance(data.get("PolicyVersion"), dict):
        data = data["PolicyVersion"].get("Document")
    elif isinstance(data, dict) and "PolicyDocument" in data and "Statement" not in data:
        data = data["PolicyDocument"]
    document = _document(data)
    if _is_trust_policy(document):
        yield from ((None, issue) for issue in analyze_trust_policy(document))
    else:
        yield from ((None, issue) for issue in analyze_permissions([document]))


def scan_file(path: Path) -> list[Finding]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PolicyError(f"not JSON: {exc}") from None
    rules = {rule.id: rule for rule in all_rules()}
    findings = []
    for logical_id, issue in issues_in(data):
        rule = rules[issue.rule_id]
        findings.append(Finding(
            rule_id=issue.rule_id, engine="sagegate", severity=issue.severity,
            resource=f"{path}#{logical_id}" if logical_id else str(path), config_key=issue.statement or "",
            message=issue.message, remediation=rule.remediation, title=rule.title,
        ))
    return findings


def _print_human(path: Path, findings: list[Finding]) -> None:
    if not findings:
        print(f"{path}: no findings")
        return
    for f in sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.rule_id)):
        print(f"{f.resource}: {f.severity.upper():8} {f.rule_id} {f.title}\n    {f.message}\n    fix: {f.remediation}")


def scan_iam(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies scan-iam",
                                     description="Least-privilege analysis of IAM policy documents.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print findings as a JSON list")
    args = parser.parse_args(argv)
    everything: list[Finding] = []
    unreadable = False
    for path in args.files:
        try:
            findings = scan_file(path)
        except PolicyError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            unreadable = True
            continue
        everything.extend(findings)
        if not args.json:
            _print_human(path, findings)
    if args.json:
        print(json.dumps([{"file": f.resource.split("#", 1)[0], "resource": f.resource, "rule_id": f.rule_id,
                           "severity": f.severity, "title": f.title, "message": f.message,
                           "statement": f.config_key or None, "remediation": f.remediation}
                          for f in everything], indent=2))
    blocking = [f for f in everything if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["high"]]
    if not args.json:
        print(f"{len(everything)} finding(s), {len(blocking)} high or critical")
    if unreadable:
        return EXIT_UNREADABLE
    return EXIT_FINDINGS if blocking else EXIT_CLEAN


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def deployer_policy_command(argv: list[str]) -> int:
    """The deployer's policy for the stack ``python main.py OVERRIDES`` would deploy."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from policies.deployer_policy import deployer_policy, problems
    from runner.core.errors import ConfigError
    from runner.core.names import LOCAL_ACCOUNT
    from runner.core.settings import load_settings
    from runner.stack.build import build_stack

    parser = argparse.ArgumentParser(prog="python -m policies deployer-policy",
                                     description="The least-privilege policy of the identity that runs sagegate.")
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides, as for main.py")
    parser.add_argument("--out", type=Path, help="write the policy to this file (default: print it)")
    parser.add_argument("--account", help="the AWS account id (target=aws; target=local uses the emulator's)")
    args = parser.parse_args(argv)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            settings = load_settings(compose(config_name="config", overrides=list(args.overrides)))
    except (ConfigError, HydraException) as exc:
        print(f"config: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if settings.target.kind == "aws" and not args.account:
        print("target=aws: give the account id (--account 123456789012)", file=sys.stderr)
        return EXIT_UNREADABLE
    stack = build_stack(settings, account=args.account or LOCAL_ACCOUNT)
    policy = deployer_policy(stack, delete_artifacts=settings.destroy.delete_artifacts)
    text = json.dumps(policy, indent=2) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"{args.out}: {len(policy['Statement'])} statements for stack {stack.name}", file=sys.stderr)
    else:
        print(text, end="")
    refused = problems(policy)
    for problem in refused:
        print(f"IAM catalogue: {problem}", file=sys.stderr)
    return EXIT_FINDINGS if refused else EXIT_CLEAN


COMMANDS = {"scan-iam": scan_iam, "deployer-policy": deployer_policy_command}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m policies scan-iam FILE... [--json]\n"
              "       python -m policies deployer-policy [OVERRIDE...] [--out FILE] [--account ID]")
        return EXIT_CLEAN if argv else EXIT_UNREADABLE
    if argv[0] not in COMMANDS:
        print(f"unknown command {argv[0]!r}; available: {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_UNREADABLE
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
