"""sagegate's IAM analyser and cloudsplaining on the same corpus (tests/data/iam_corpus).

    python scripts/iam_corpus_compare.py --cloudsplaining /tmp/cs-venv/bin/cloudsplaining

cloudsplaining runs as one process with the python of its own venv (it is not a dependency of this
project), calling what its ``scan-policy-file`` calls: a file counts as flagged by it when
``PolicyDocument(...).allows_privilege_escalation`` is not empty (default exclusions). sagegate: flagged = SG-IAM-006 or SG-IAM-001 critical
(any severity for escalations; high or critical for false alarms), as tests/policies/test_iam_corpus.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies.__main__ import issues_in  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "iam_corpus"


def sagegate(path: Path) -> tuple[bool, bool, bool]:
    """(escalation issue at any severity, at high or critical, any high or critical finding)."""
    found = [i for _, i in issues_in(json.loads(path.read_text()))]
    esc = [i for i in found if i.rule_id == "SG-IAM-006" or (i.rule_id == "SG-IAM-001" and i.severity == "critical")]
    high = ("high", "critical")
    return bool(esc), any(i.severity in high for i in esc), any(i.severity in high for i in found)


CLOUDSPLAINING = """
import json, sys
from cloudsplaining.scan.policy_document import PolicyDocument
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = bool(PolicyDocument(json.load(open(name))).allows_privilege_escalation)
    except Exception as exc:  # noqa: BLE001 - a policy cloudsplaining cannot read: counted, named
        out[name] = None
print(json.dumps(out))
"""


def cloudsplaining_flags(executable: str, files: list[Path]) -> list[bool]:
    python = Path(executable).with_name("python")
    out = subprocess.run([str(python), "-c", CLOUDSPLAINING, *map(str, files)],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    errors = [p.name for p in files if result[str(p)] is None]
    if errors:
        print(f"    cloudsplaining could not read (not flagged): {', '.join(errors)}")
    return [bool(result[str(p)]) for p in files]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cloudsplaining", help="the cloudsplaining executable (or python) of a separate venv")
    args = parser.parse_args()
    for kind in ("escalation", "benign", "named_target"):
        files = sorted((CORPUS / kind).glob("*.json"))
        sg = [sagegate(p) for p in files]
        line = (f"{kind:13} {len(files):3} files | sagegate: escalation issue {sum(a for a, _, _ in sg)}, "
                f"at high+ {sum(b for _, b, _ in sg)}, any high+ finding {sum(c for _, _, c in sg)}")
        if args.cloudsplaining:
            cs = cloudsplaining_flags(args.cloudsplaining, files)
            line += f" | cloudsplaining: PrivilegeEscalation {sum(cs)}"
            if kind != "named_target":
                who = [p.name for p, a, c in zip(files, sg, cs, strict=False) if (kind == "escalation") != c]
                line += f"\n    cloudsplaining {'misses' if kind == 'escalation' else 'false alarms'}: {', '.join(who)}"
        sg_odd = [p.name for p, s in zip(files, sg, strict=False) if (kind == "escalation" and not s[0]) or (kind == "benign" and s[1])]
        if kind != "named_target":
            line += f"\n    sagegate {'misses' if kind == 'escalation' else 'false alarms'}: {', '.join(sg_odd)}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
