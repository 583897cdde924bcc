"""One policy gate end to end against checkov alone, side by side on the same template.

    .venv/bin/python benchmarks/gate_single.py              # 3 rounds (≈ 30 s)
    .venv/bin/python benchmarks/gate_single.py --rounds 5 -- target=local endpoint=...

Each round times, one after the other on the same machine:

1. ``python main.py stage=check [OVERRIDES]``: compose, validate, build the stack, the native rules
   and checkov on the rendered template, the reports (what CI runs on every pull request);
2. the ``checkov`` command a user would run on that run's ``template.json`` (with sagegate's custom
   checks and their policy values, offline, JSON output): ``checkov -f template.json --framework
   cloudformation --skip-download -o json --external-checks-dir policies/checkov/checks``.

It prints each round and the medians, and the ratio sagegate / checkov (goal, issue 15: ≤ 1.0).
Not a test: numbers depend on the machine and its load; compare the ratio of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bytecode import compile_sagegate  # noqa: E402
from policies.checkov.process import CHECKOV_VENV, CHECKS_DIR, PARAMS_ENV, checkov_environment  # noqa: E402


def time_main(overrides: list[str], run_dir: Path) -> tuple[float, int]:
    args = [sys.executable, "main.py", "stage=check", *overrides, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    done = subprocess.run(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"main.py exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, done.returncode


def checkov_template(run_dir: Path, work: Path, overrides: list[str]) -> tuple[Path, dict[str, str]]:
    """The run's template.json with the policy values sagegate's custom checks read, as the gate
    gives them (Metadata.sagegate.checkov_params), and checkov's environment."""
    from policies.checkov.runner import checkov_params
    from runner.app.compose import compose_settings

    template = json.loads((run_dir / "template.json").read_text())
    params = checkov_params(compose_settings(["stage=check", *overrides]).policy)
    template.setdefault("Metadata", {})["sagegate"] = {"checkov_params": params}
    env = checkov_environment()
    env[PARAMS_ENV] = json.dumps(params)
    path = work / "template.json"
    path.write_text(json.dumps(template, indent=1))
    return path, env


def time_checkov(template: Path, env: dict[str, str]) -> tuple[float, int]:
    command = [str(CHECKOV_VENV / "bin" / "checkov"), "-f", str(template), "--framework", "cloudformation",
               "--skip-download", "-o", "json", "--external-checks-dir", str(CHECKS_DIR)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=template.parent, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"checkov exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="extra overrides for main.py (after --)")
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
    compile_sagegate(REPO)
    with tempfile.TemporaryDirectory(prefix="gate-single-") as tmp:
        # One untimed run of each: file caches warm, the template to give checkov.
        warm_dir = Path(tmp, "warm")
        time_main(args.overrides, warm_dir)
        template, env = checkov_template(warm_dir, Path(tmp), args.overrides)
        time_checkov(template, env)
        ours, theirs = [], []
        for i in range(args.rounds):
            t_main, code = time_main(args.overrides, Path(tmp, f"run-{i}"))
            t_checkov, checkov_code = time_checkov(template, env)
            ours.append(t_main)
            theirs.append(t_checkov)
            print(f"round {i + 1}: main.py stage=check {t_main:.2f} s (exit {code}), checkov {t_checkov:.2f} s "
                  f"(exit {checkov_code}), ratio {t_main / t_checkov:.2f}  load={os.getloadavg()[0]:.2f}")
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(f"median: main.py stage=check {m_ours:.2f} s, checkov {m_theirs:.2f} s; ratio of medians "
          f"{m_ours / m_theirs:.2f}, median ratio {statistics.median(ratios):.2f} (goal ≤ 1.0)")


if __name__ == "__main__":
    main()
