"""README's rules table is generated from the rules' metadata and lists every id the gate can emit."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from docs_helpers import REPO_ROOT, Ran, run_command

SCRIPT = REPO_ROOT / "scripts" / "rules_table.py"
README = REPO_ROOT / "README.md"


def _script():
    spec = importlib.util.spec_from_file_location("rules_table", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


rules_table = _script()


def _table_ids() -> set[str]:
    text = README.read_text()
    start, end = text.index(rules_table.START), text.index(rules_table.END)
    return rules_table.table_ids(text[start:end])


def test_the_check_passes_on_the_committed_readme(tmp_path: Path) -> None:
    ran = run_command([sys.executable, str(SCRIPT), "--check"], tmp_path)
    assert ran.returncode == 0, ran.explain()


def test_the_check_fails_on_a_stale_table(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text().replace("| `SG-IAM-001` | high |", "| `SG-IAM-001` | low |"))
    assert rules_table.main(["--check", "--readme", str(stale)]) == 1
    assert rules_table.main(["--readme", str(stale)]) == 0  # rewrites it
    assert stale.read_text() == README.read_text()
    assert rules_table.main(["--check", "--readme", str(stale)]) == 0


def test_the_check_fails_without_the_markers(tmp_path: Path) -> None:
    bare = tmp_path / "README.md"
    bare.write_text("# a README without a rules table\n")
    assert rules_table.main(["--check", "--readme", str(bare)]) == 1


def test_every_native_rule_and_gate_finding_is_listed() -> None:
    from policies.gate import POLICY_RULES
    from policies.iam_analyzer import RULE_IDS
    from policies.rules.registry import all_rules

    ids = _table_ids()
    native = {rule.id for rule in all_rules()} | set(POLICY_RULES) | set(RULE_IDS)
    assert native - ids == set()
    listed_native = {i for i in ids if i.startswith("SG-")}
    assert listed_native == native, "the table lists only rules that exist"


def test_every_custom_and_curated_checkov_check_is_listed() -> None:
    from policies.checkov.runner import CUSTOM_CHECK_IDS
    from policies.checkov.severity import CHECKS
    from policies.gate import TWINS

    ids = _table_ids()
    assert set(CUSTOM_CHECK_IDS) | set(TWINS) | set(CHECKS) <= ids
    assert {i for i in ids if i.startswith("CKV")} == set(CHECKS), "checkov rows come from severity.py"


def test_the_custom_checks_are_read_from_their_source() -> None:
    """The script reads ids and names with ast (checkov is not importable here); cross-check."""
    from policies.checkov.runner import CHECKS_DIR, CUSTOM_CHECK_IDS

    found = rules_table.custom_checks(CHECKS_DIR)
    assert set(found) == set(CUSTOM_CHECK_IDS)
    for path in CHECKS_DIR.glob("*.py"):
        ast.parse(path.read_text())  # the script would fail loudly on a syntax error too
    assert all(name.startswith("Ensure ") for name in found.values())


@pytest.fixture(scope="module")
def reference_gate_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The gate's JSON report for the preset that declares the most resources and jobs."""
    tmp = tmp_path_factory.mktemp("reference-gate")
    run_dir = tmp / "run"
    ran: Ran = run_command([sys.executable, "main.py", "stage=check", "experiment=reference_2023",
                            "notebook.subnet_id=subnet-0123456789abcdef0",
                            "notebook.security_group_ids=[sg-0123456789abcdef0]",
                            f"hydra.run.dir={run_dir}", f"workdir={tmp / 'work'}"], tmp)
    assert ran.returncode == 0, ran.explain()
    return json.loads((run_dir / "policy" / "report.json").read_text())


def test_every_rule_a_real_gate_run_reports_is_listed(reference_gate_report: dict) -> None:
    ids = _table_ids()
    reported = {rule["id"] for rule in reference_gate_report["rules"]}
    reported |= {f["rule_id"] for f in reference_gate_report["findings"] + reference_gate_report["suppressed_findings"]}
    assert reference_gate_report["checkov"]["ran"]
    missing = reported - ids
    assert not missing, f"the gate reports rules the README's table does not list: {sorted(missing)}"


def test_every_checkov_check_evaluated_on_the_stack_has_a_row(reference_gate_report: dict) -> None:
    ids = _table_ids()
    evaluated = {rule["id"] for rule in reference_gate_report["rules"] if rule["engine"] == "checkov"}
    assert evaluated - ids == set()
