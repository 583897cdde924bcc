"""Generate README.md's policy rules table from the rules' own metadata, so it cannot drift.

    .venv/bin/python scripts/rules_table.py           # rewrite the table in README.md
    .venv/bin/python scripts/rules_table.py --check   # exit 1 if README.md's table is stale
    .venv/bin/python scripts/rules_table.py --print   # print the table, change nothing

Sources, all read from the code:

- the native rules (``policies.rules.registry.all_rules()``: id, severity, title, config key,
  remediation), their areas' names (each area package's ``NAME``), and the gate's own findings
  about suppressions (``policies.gate.POLICY_RULES``);
- sagegate's custom checkov checks (``policies/checkov/checks/``): their id and name are read
  from the source with ``ast``, because the checks import checkov, which lives in its own
  environment; severity and remediation come from ``policies/checkov/severity.py``, the native
  rule each one mirrors from ``policies.gate.TWINS``;
- the checkov checks whose severity sagegate curates (``policies.checkov.severity.CHECKS``), and
  the severity of any other failed check (``DEFAULT_SEVERITY``);
- which checkov findings ``policy=default`` suppresses, and why (``conf/policy/default.yaml``).

The table sits in README.md between ``<!-- rules-table:start -->`` and ``<!-- rules-table:end -->``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
CHECKS_DIR = REPO_ROOT / "policies" / "checkov" / "checks"
DEFAULT_POLICY = REPO_ROOT / "conf" / "policy" / "default.yaml"
START = "<!-- rules-table:start -->"
END = "<!-- rules-table:end -->"

# The gate's findings about its own configuration (policy.suppress), after the rule areas.
GATE_AREA = ("POL", "the gate's own configuration")

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


class StaleTable(Exception):
    """README.md has no markers, or they are out of order."""


@dataclass(frozen=True)
class Row:
    rule_id: str
    severity: str
    title: str
    config_key: str
    remediation: str
    note: str = ""


# ---- reading the metadata ---------------------------------------------------------------------

def areas() -> dict[str, str]:
    """Area code -> name, in the report's order: the rule areas, then the gate's own."""
    from policies.rules.registry import AREAS

    return {**{area.CODE: area.NAME for area in AREAS}, GATE_AREA[0]: GATE_AREA[1]}


def native_rows() -> list[Row]:
    """Every native rule, and the gate's findings about ``policy.suppress`` entries."""
    from policies.gate import POLICY_RULES
    from policies.rules.registry import all_rules

    rows = [Row(r.id, r.severity, r.title, r.config_key, r.remediation) for r in all_rules()]
    rows += [Row(i.rule_id, i.severity, i.title, "policy.suppress", i.remediation) for i in POLICY_RULES.values()]
    return rows


def _string(node: ast.expr | None) -> str | None:
    """A string literal, or adjacent literals joined (``"a" "b"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def custom_checks(checks_dir: Path = CHECKS_DIR) -> dict[str, str]:
    """id -> name of every ``BaseResourceCheck`` in the custom checks' sources."""
    found: dict[str, str] = {}
    for path in sorted(checks_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "__init__"):
                continue
            keywords = {k.arg: _string(k.value) for k in node.keywords if k.arg}
            if keywords.get("id") and keywords.get("name"):
                found[keywords["id"]] = keywords["name"]
    return found


def default_suppressions(path: Path = DEFAULT_POLICY) -> dict[str, str]:
    """id -> reason of the suppressions ``policy=default`` ships with (whole-stack ones only)."""
    import yaml

    entries = (yaml.safe_load(path.read_text()) or {}).get("suppress") or []
    return {e["id"]: str(e.get("reason") or "").strip() for e in entries if not e.get("resource")}


def checkov_rows() -> tuple[list[Row], list[Row]]:
    """(sagegate's custom checkov checks, the curated built-in checkov checks)."""
    from policies.checkov.severity import CHECKS
    from policies.gate import TWINS

    names = custom_checks()
    suppressed = default_suppressions()
    custom, builtin = [], []
    for check_id in sorted(set(names) | {c for c in CHECKS if c.startswith("CKV_SG_")}, key=_id_key):
        severity, remediation = CHECKS.get(check_id, ("", ""))
        twin = TWINS.get(check_id)
        note = (f"the template-level twin of {twin}: when both fire on one resource the report keeps "
                f"{twin}'s finding and says checkov agrees") if twin else ""
        custom.append(Row(check_id, severity, names.get(check_id, ""), "", remediation, note))
    for check_id in sorted((c for c in CHECKS if not c.startswith("CKV_SG_")), key=_id_key):
        severity, remediation = CHECKS[check_id]
        note = f"suppressed in `policy=default`: {suppressed[check_id]}" if check_id in suppressed else ""
        builtin.append(Row(check_id, severity, "", "", remediation, note))
    return custom, builtin


def _id_key(rule_id: str) -> tuple[str, int]:
    head, _, number = rule_id.rpartition("_")
    return (head, int(number)) if number.isdigit() else (rule_id, 0)


def table_ids(text: str) -> set[str]:
    """The rule ids a generated table lists (its rows' first cells)."""
    ids = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            ids.add(line.split("`", 2)[1])
    return ids


# ---- rendering ----------------------------------------------------------------------------------

def _cell(text: str) -> str:
    """Plain text for a Markdown table cell: no pipes, no emphasis, no HTML tags."""
    out = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    return out.replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ").strip()


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render() -> str:
    from policies.checkov.severity import DEFAULT_SEVERITY, POLICY_INDEX

    native = native_rows()
    custom, builtin = checkov_rows()
    lines = [
        START,
        "<!-- generated by scripts/rules_table.py from the rules' metadata; edit the rules, then run it -->",
        "",
        f"**sagegate's rules** ({len(native)}): the config key is where a finding points, and where the "
        "SARIF report locates it.",
        "",
    ]
    by_area: dict[str, list[Row]] = {}
    for row in native:
        by_area.setdefault(row.rule_id.split("-")[1], []).append(row)
    names = areas()
    rows = []
    for area in [*names, *sorted(set(by_area) - set(names))]:
        for row in by_area.get(area, []):
            rows.append([_code(row.rule_id), row.severity, names.get(area, area.lower()), _cell(row.title),
                         _code(row.config_key), _cell(row.remediation)])
    lines += _table(["id", "severity", "area", "finds", "config key", "fix"], rows)
    lines += [
        "",
        f"**sagegate's checkov checks** ({len(custom)}), run by checkov on the rendered template "
        "(`policies/checkov/checks/`):",
        "",
    ]
    lines += _table(["id", "severity", "finds", "fix", "note"],
                    [[_code(r.rule_id), r.severity, _cell(r.title), _cell(r.remediation), _cell(r.note)]
                     for r in custom])
    lines += [
        "",
        f"**checkov's built-in checks with a curated severity** ({len(builtin)}; offline, checkov reports "
        f"no severity of its own). Any other failed checkov check is reported as **{DEFAULT_SEVERITY}** "
        f"under its own id and name; see [checkov's policy index]({POLICY_INDEX}).",
        "",
    ]
    lines += _table(["id", "severity", "fix", "note"],
                    [[_code(r.rule_id), r.severity, _cell(r.remediation), _cell(r.note)] for r in builtin])
    lines += ["", END]
    return "\n".join(lines)


def replace_table(readme: str, table: str) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < 0 or end < start:
        raise StaleTable(f"README.md needs the markers {START} and {END} (in that order)")
    return readme[:start] + table + readme[end + len(END):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md's table is stale")
    mode.add_argument("--print", action="store_true", help="print the table, change nothing")
    parser.add_argument("--readme", type=Path, default=README, help="the file to update or check")
    args = parser.parse_args(argv)

    table = render()
    if args.print:
        print(table)
        return 0
    current = args.readme.read_text()
    try:
        updated = replace_table(current, table)
    except StaleTable as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if updated != current:
            print(f"{args.readme}: the rules table is stale; run: .venv/bin/python scripts/rules_table.py",
                  file=sys.stderr)
            return 1
        print(f"{args.readme}: the rules table is current")
        return 0
    if updated != current:
        args.readme.write_text(updated)
        print(f"{args.readme}: rules table updated")
    else:
        print(f"{args.readme}: rules table already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
