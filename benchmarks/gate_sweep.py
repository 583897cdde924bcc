"""The policy gate over a 100-combination sweep: checkov once for all vs once per combination.

    .venv/bin/python benchmarks/gate_sweep.py                  # in-process, naive sampled (≈ 1 min)
    .venv/bin/python benchmarks/gate_sweep.py --naive-sample 100   # naive measured in full (≈ 6 min)
    .venv/bin/python benchmarks/gate_sweep.py --main           # time `main.py -m stage=check ...` too
    .venv/bin/python benchmarks/gate_sweep.py --side-by-side   # issue 15: the sweep vs `checkov -d`, 3 rounds

The sweep is 5 endpoint instance types x 4 autoscaling max capacities x 5 provisioned
concurrencies (100 jobs). Each combination's template differs (scalable target, alias), so no
two share a checkov result.

Measured, in one run:

1. per-job work that does not involve checkov: Hydra compose + ``load_settings`` + stack + cost
   model + the native rules (``policies.gate.evaluate``);
2. **batched**: every template scanned by one warm checkov worker (``run_checkov_batch``), what a
   sweep does when its callback pre-computes the checkov cache;
3. **naive**: the ``checkov`` command once per combination (``run_checkov_cli``), on a sample of
   ``--naive-sample`` combinations, extrapolated to 100 and labelled as such unless the sample is
   all of them.

With ``--main`` it also times ``python main.py -m stage=check ...`` over the same 100
combinations end to end (needs the sweep callback that pre-computes checkov's cache; without it
each job runs its own checkov).

Goal (issue 3): the 100 checks in ≤ 25 s on this 2-core machine. Not a test: numbers depend on
the machine and on what else runs; compare the ratio.

``--side-by-side`` (issue 15) times, in each of ``--rounds`` rounds, ``python main.py -m
stage=check`` over the 100 combinations and then the ``checkov`` command scanning the 100
templates that sweep rendered in one ``-d`` run (offline, sagegate's custom checks and their
policy values), and prints the ratio of the medians (goal ≤ 0.6). ``--repo DIR`` runs another
checkout's main.py (e.g. ``git archive`` of the commit before) with this checkout's checkov.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bytecode import compile_sagegate  # noqa: E402
from policies.checkov.runner import render_template, run_checkov_batch, run_checkov_cli, template_key  # noqa: E402
from policies.gate import evaluate  # noqa: E402
from runner.app.compose import compose_config  # noqa: E402
from runner.core.settings import load_settings  # noqa: E402
from runner.stack.build import build_stack  # noqa: E402

INSTANCE_TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge", "ml.c5.2xlarge"]
MAX_CAPACITIES = [1, 2, 3, 4]
PROVISIONED = [0, 1, 2, 3, 4]


def combinations() -> list[tuple[str, ...]]:
    return [(f"endpoint.variants.AllTraffic.instance_type={i}", f"autoscaling.max_capacity={m}", f"function.provisioned_concurrency={p}")
            for i, m, p in itertools.product(INSTANCE_TYPES, MAX_CAPACITIES, PROVISIONED)]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def prepare(combos: list[tuple[str, ...]]) -> tuple[list, dict[str, float]]:
    times = {"compose": 0.0, "load_settings": 0.0, "stack+cost": 0.0}
    jobs = []
    for overrides in combos:
        cfg, t_compose = timed(compose_config, overrides)
        settings, t_load = timed(load_settings, cfg)
        start = time.perf_counter()
        stack = build_stack(settings)
        costs = stack.cost(settings.pricing)
        times["compose"] += t_compose
        times["load_settings"] += t_load
        times["stack+cost"] += time.perf_counter() - start
        jobs.append((settings, stack, costs, render_template(settings, stack)))
    return jobs, times


def run_main(combos_count: int) -> tuple[float, int]:
    args = [sys.executable, "main.py", "-m", "stage=check",
            "endpoint.variants.AllTraffic.instance_type=" + ",".join(INSTANCE_TYPES),
            "autoscaling.max_capacity=" + ",".join(map(str, MAX_CAPACITIES)),
            "function.provisioned_concurrency=" + ",".join(map(str, PROVISIONED)),
            "hydra.sweep.dir=" + str(Path(os.environ.get("TMPDIR", "/tmp")) / f"gate-sweep-{os.getpid()}")]
    start = time.perf_counter()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode


def side_by_side(rounds: int, repo: Path) -> None:
    import json
    import shutil
    import statistics
    import tempfile

    from policies.checkov.process import CHECKOV_VENV, CHECKS_DIR, PARAMS_ENV, checkov_environment
    from policies.checkov.runner import checkov_params

    compile_sagegate(repo)
    params = checkov_params(load_settings(compose_config(["stage=check"])).policy)
    env = checkov_environment()
    env[PARAMS_ENV] = json.dumps(params)
    ours, theirs = [], []
    for i in range(rounds):
        with tempfile.TemporaryDirectory(prefix="gate-sweep-") as tmp:
            sweep = Path(tmp, "sweep")
            args = [sys.executable, "main.py", "-m", "stage=check",
                    "endpoint.variants.AllTraffic.instance_type=" + ",".join(INSTANCE_TYPES),
                    "autoscaling.max_capacity=" + ",".join(map(str, MAX_CAPACITIES)),
                    "function.provisioned_concurrency=" + ",".join(map(str, PROVISIONED)), f"hydra.sweep.dir={sweep}"]
            start = time.perf_counter()
            done = subprocess.run(args, cwd=repo, capture_output=True, text=True)
            t_sweep = time.perf_counter() - start
            if done.returncode not in (0, 1):
                sys.exit(f"the sweep exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
            templates = Path(tmp, "templates")
            templates.mkdir()
            for job in range(len(combinations())):
                template = json.loads((sweep / str(job) / "template.json").read_text())
                template.setdefault("Metadata", {})["sagegate"] = {"checkov_params": params}
                (templates / f"template-{job}.json").write_text(json.dumps(template, indent=1))
            shutil.rmtree(sweep)
            command = [str(CHECKOV_VENV / "bin" / "checkov"), "-d", str(templates), "--framework", "cloudformation",
                       "--skip-download", "-o", "json", "--external-checks-dir", str(CHECKS_DIR)]
            start = time.perf_counter()
            checked = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            t_checkov = time.perf_counter() - start
            if checked.returncode not in (0, 1):
                sys.exit(f"checkov exited {checked.returncode}: {checked.stderr[-2000:]}")
        ours.append(t_sweep)
        theirs.append(t_checkov)
        print(f"round {i + 1}: main.py -m stage=check (100 jobs) {t_sweep:.1f} s (exit {done.returncode}), "
              f"checkov -d (100 templates) {t_checkov:.1f} s, ratio {t_sweep / t_checkov:.2f}  "
              f"load={os.getloadavg()[0]:.2f}", flush=True)
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"median: sweep {m_ours:.1f} s, checkov -d {m_theirs:.1f} s; ratio of medians {m_ours / m_theirs:.2f} "
          f"(goal <= 0.6)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--naive-sample", type=int, default=5,
                        help="combinations to run the checkov command on (100 = all, no extrapolation)")
    parser.add_argument("--main", action="store_true", help="also time `main.py -m stage=check` over the sweep")
    parser.add_argument("--side-by-side", action="store_true",
                        help="only: the sweep vs the checkov command on its 100 templates, --rounds times")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose main.py runs the sweep")
    args = parser.parse_args()
    if args.side_by_side:
        print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} repo={args.repo}")
        side_by_side(args.rounds, args.repo.resolve())
        return
    combos = combinations()
    print(f"sweep: {len(combos)} combinations ({len(INSTANCE_TYPES)} instance types x {len(MAX_CAPACITIES)} max "
          f"capacities x {len(PROVISIONED)} provisioned concurrencies); cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.2f}")

    jobs, prep = prepare(combos)
    templates = {template_key(t): t for *_, t in jobs}
    print(f"distinct templates: {len(templates)}")
    per_job = sum(prep.values())
    print(f"per-job work outside checkov, all {len(jobs)} jobs: compose {prep['compose']:.1f} s, "
          f"load_settings {prep['load_settings']:.1f} s, stack+cost {prep['stack+cost']:.1f} s")

    batch, t_batch = timed(run_checkov_batch, templates, 600)
    start = time.perf_counter()
    verdicts = [evaluate(s, st, c, batch[template_key(t)]).verdict for s, st, c, t in jobs]
    t_eval = time.perf_counter() - start
    print(f"batched checkov (one warm worker, {len(templates)} templates): {t_batch:.1f} s "
          f"({t_batch / len(templates) * 1000:.0f} ms per template including startup)")
    print(f"native rules + suppressions for {len(jobs)} jobs: {t_eval:.2f} s; "
          f"verdicts: {verdicts.count('pass')} pass, {verdicts.count('fail')} fail")

    sample = combos[:: max(1, len(combos) // max(1, args.naive_sample))][: args.naive_sample]
    sample_templates = [jobs[combos.index(c)][3] for c in sample]
    start = time.perf_counter()
    for template in sample_templates:
        run_checkov_cli(template, 600)
    t_sample = time.perf_counter() - start
    t_naive = t_sample / len(sample) * len(combos)
    label = "measured" if len(sample) == len(combos) else f"EXTRAPOLATED from {len(sample)} runs"
    print(f"naive checkov (the checkov command once per combination): {t_naive:.1f} s for {len(combos)} "
          f"({t_sample / len(sample):.2f} s per run; {label})")

    batched_total = t_batch + t_eval
    naive_total = t_naive + t_eval
    print(f"\ngate checks for {len(combos)} combinations, checkov + rules (excluding compose/settings):")
    print(f"  naive   {naive_total:7.1f} s")
    print(f"  batched {batched_total:7.1f} s")
    print(f"  ratio   {naive_total / batched_total:7.1f}x faster batched")
    print(f"with the per-job compose/settings/stack work a Hydra sweep pays anyway: "
          f"naive {naive_total + per_job:.1f} s, batched {batched_total + per_job:.1f} s (goal <= 25 s)")

    if args.main:
        elapsed, code = run_main(len(combos))
        print(f"\n`main.py -m stage=check` over {len(combos)} combinations: {elapsed:.1f} s (exit {code})")


if __name__ == "__main__":
    main()
