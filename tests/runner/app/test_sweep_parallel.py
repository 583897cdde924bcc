"""How many jobs of a sweep run at once (runner/app/sweep.py): remote sweeps (target=aws, work
that waits on AWS) run min(sweep.max_parallel, jobs) at once whatever the cores; others one per
core; sweep.max_parallel is one value per sweep. One real multirun proves the overlap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from runner.app.sweep import SweepSummary, check_jobs, job_overrides, parallelism, remote_work
from runner.core.errors import RunExit

REPO = Path(__file__).resolve().parents[3]
NO_CHECKOV = "policy.checkov.enabled=false"  # nothing to scan: no checkov, no account lookup


def _jobs(*overrides: str) -> list[Any]:
    jobs = check_jobs(job_overrides([NO_CHECKOV, *overrides]))
    assert [j.error for j in jobs] == [None] * len(jobs)
    return jobs


# ---- which jobs are remote ---------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "remote"), [
    (["target=aws", "stage=deploy"], "stage=deploy"),
    (["target=aws", "stage=invoke"], "stage=invoke"),
    (["target=aws", "stage=destroy"], "stage=destroy"),
    (["target=aws", "stage=train", "training=sagemaker"], "stage=train training.launcher=sagemaker"),
    (["target=aws", "stage=train", "training=sagemaker_multi"], "stage=train training.launcher=sagemaker"),
    (["target=aws", "stage=train", "training=ec2"], "stage=train training.launcher=ec2"),
    (["target=aws", "stage=train", "training=sagemaker", "hpo=sagemaker_tuner"], "stage=train hpo=sagemaker_tuner"),
    (["target=aws", "stage=all", "training=sagemaker"], "stage=all training.launcher=sagemaker"),
    # Work on this machine: checkov, local training, everything on the local target.
    (["target=aws", "stage=check"], None),
    (["target=aws", "stage=plan"], None),
    (["target=aws", "stage=train", "training=local"], None),
    (["target=aws", "stage=all", "training=local"], None),
    (["target=local", "stage=deploy"], None),
    (["target=local", "stage=train", "training=sagemaker"], None),
])
def test_remote_work(overrides: list[str], remote: str | None):
    [job] = _jobs(*overrides)
    assert remote_work(job.settings) == remote


# ---- how many at once --------------------------------------------------------------------------------

JOBLIB = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": -1}


def test_a_remote_sweep_runs_max_parallel_at_once_whatever_the_cores():
    jobs = _jobs("target=aws", "stage=deploy", "name=sg-a,sg-b,sg-c,sg-d,sg-e,sg-f", "sweep.max_parallel=5")
    decided = parallelism(jobs, JOBLIB, explicit=False, cpus=2)
    assert decided.n_jobs == 5
    assert decided.line == "sweep: 6 jobs run remotely (target=aws, stage=deploy), 5 at once (sweep.max_parallel=5)"


def test_a_remote_sweep_smaller_than_max_parallel_runs_every_job_at_once():
    jobs = _jobs("target=aws", "stage=train", "training=sagemaker", "training.learning_rate=0.1,0.01")
    decided = parallelism(jobs, JOBLIB, explicit=False, cpus=64)
    assert decided.n_jobs == 2
    assert decided.line == ("sweep: 2 jobs run remotely (target=aws, stage=train training.launcher=sagemaker), "
                            "2 at once (sweep.max_parallel=4)")


def test_a_local_sweep_keeps_one_job_per_core():
    jobs = _jobs("stage=plan", "autoscaling.max_capacity=2,3,4")
    decided = parallelism(jobs, JOBLIB, explicit=False, cpus=2)
    assert decided.n_jobs is None  # the launcher's own n_jobs=-1
    assert decided.line == ("sweep: 3 jobs run on this machine, 2 at once "
                            "(one per core; hydra.launcher.n_jobs to change it)")


def test_a_mixed_sweep_counts_as_local():
    jobs = _jobs("target=aws", "stage=train", "training=sagemaker,local")
    decided = parallelism(jobs, JOBLIB, explicit=False, cpus=1)
    assert decided.n_jobs is None
    assert decided.line.startswith("sweep: 1 of 2 jobs run remotely and 1 on this machine: all run as local jobs, "
                                   "1 at once")


def test_the_users_n_jobs_wins():
    jobs = _jobs("target=aws", "stage=deploy", "name=sg-a,sg-b,sg-c")
    decided = parallelism(jobs, {**JOBLIB, "n_jobs": 2}, explicit=True, cpus=8)
    assert decided.n_jobs is None
    assert decided.line == "sweep: 3 jobs, 2 at once (hydra.launcher.n_jobs=2)"


def test_jobs_changing_the_same_stack_on_aws_run_one_at_a_time():
    jobs = _jobs("target=aws", "stage=deploy", "endpoint.variants.AllTraffic.instance_type=ml.m5.large,ml.c5.xlarge")
    decided = parallelism(jobs, JOBLIB, explicit=False, cpus=8)
    assert decided.n_jobs == 1
    assert decided.line == ("sweep: 2 jobs change the same stack on AWS (name=sagegate-demo): "
                            "1 at a time (jobs of one stack never run at once)")
    # Invoking one stack from several jobs changes nothing: they run together.
    assert parallelism(_jobs("target=aws", "stage=invoke", "invoke.samples=1,2"), JOBLIB, False, 8).n_jobs == 2


def test_another_launcher_is_left_alone():
    jobs = _jobs("target=aws", "stage=deploy", "name=sg-a,sg-b")
    basic = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    assert parallelism(jobs, basic, explicit=False, cpus=8).line == "sweep: 2 jobs, one at a time"
    assert parallelism(jobs, basic, explicit=False, cpus=8).n_jobs is None


def _config(sweep_dir: Path, task: list[str], hydra_overrides: list[str] | None = None,
            n_jobs: int = -1) -> Any:
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "launcher": {**JOBLIB, "n_jobs": n_jobs},
                                       "overrides": {"task": task, "hydra": hydra_overrides or []}}})


def test_the_callback_sets_the_launchers_n_jobs_and_says_why(tmp_path: Path, capsys):
    config = _config(tmp_path, [NO_CHECKOV, "target=aws", "stage=destroy", "name=sg-a,sg-b,sg-c", "sweep.max_parallel=2"])
    SweepSummary().on_multirun_start(config)
    assert config.hydra.launcher.n_jobs == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "sweep: 3 jobs run remotely (target=aws, stage=destroy), 2 at once (sweep.max_parallel=2)" in out


@pytest.mark.parametrize(("hydra_overrides", "n_jobs"), [(["hydra.launcher.n_jobs=1"], 1), ([], 3)])
def test_the_callback_keeps_an_n_jobs_the_user_set(tmp_path: Path, capsys, hydra_overrides, n_jobs):
    config = _config(tmp_path, [NO_CHECKOV, "target=aws", "stage=destroy", "name=sg-a,sg-b,sg-c"],
                     hydra_overrides, n_jobs=n_jobs)  # on the command line, or in a config file
    SweepSummary().on_multirun_start(config)
    assert config.hydra.launcher.n_jobs == n_jobs
    assert f"sweep: 3 jobs, {n_jobs} at once (hydra.launcher.n_jobs={n_jobs})" in capsys.readouterr().out


def test_a_sweep_over_max_parallel_is_refused_before_anything_runs(tmp_path: Path, capsys):
    sweep = tmp_path / "sweep"
    config = _config(sweep, [NO_CHECKOV, "target=aws", "stage=deploy", "name=sg-a,sg-b", "sweep.max_parallel=2,3"])
    with pytest.raises(RunExit) as exited:
        SweepSummary().on_multirun_start(config)
    assert exited.value.code == 2
    assert config.hydra.launcher.n_jobs == -1
    out = " ".join(capsys.readouterr().out.split())
    assert "sweep not started: 4 of 4 jobs have an invalid config; no job ran" in out
    assert "job 1 (" in out and ("target=aws stage=deploy name=sg-a sweep.max_parallel=3): "
                                 "config error: sweep.max_parallel: 3 here, but the sweep's jobs give 2, 3: it is one value for the "
            "whole sweep") in out
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    assert [r["verdict"] for r in rows] == ["error"] * 4
    assert all(r["top_finding"].startswith("config error: sweep.max_parallel:") for r in rows)
    assert sorted(p.name for p in sweep.iterdir()) == ["sweep_summary.csv", "sweep_summary.json"]


def test_one_max_parallel_for_every_job_is_fine(tmp_path: Path):
    config = _config(tmp_path, [NO_CHECKOV, "stage=plan", "sweep.max_parallel=2", "autoscaling.max_capacity=2,3"])
    SweepSummary().on_multirun_start(config)  # does not raise


# ---- a real multirun: the jobs overlap, max_parallel at most ---------------------------------------

# Loaded by the sweep and by each job's process: stage=deploy is replaced by a job that waits on
# "AWS" (no AWS call is made). Each job marks itself running, and holds until it has seen WANT jobs
# running at once (or any job has); a job that never sees it gives up after 20 s and the test fails.
HOOK = '''
import os, time
from pathlib import Path
import runner.app.stages as stages

def waits_on_aws(context):
    shared = Path(os.environ["SWEEP_OVERLAP_DIR"])
    want = int(os.environ["SWEEP_OVERLAP_WANT"])
    running, reached = shared / "running", shared / "reached"
    me = running / context.settings.name
    start = time.time()
    me.touch()
    seen, deadline = 0, time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = max(seen, len(list(running.iterdir())))
        if seen >= want:
            reached.touch()
        if reached.exists():
            break
        time.sleep(0.05)
    seen = max(seen, len(list(running.iterdir())))
    context.result["overlap"] = {"pid": os.getpid(), "start": start, "end": time.time(), "seen_running": seen}
    me.unlink()
    return 0

stages.STAGES["deploy"] = waits_on_aws
'''


def _peak(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an end before a start at the same instant)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = open_now = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_a_remote_sweep_runs_more_jobs_at_once_than_cores(tmp_path: Path):
    hook, shared, sweep = tmp_path / "hook", tmp_path / "shared", tmp_path / "sweep"
    hook.mkdir()
    (shared / "running").mkdir(parents=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    max_parallel = 3  # more than this machine's 2 cores (the launcher's default, one per core)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(COLUMNS="200", PYTHONPATH=os.pathsep.join([str(hook), str(REPO)]),
               SWEEP_OVERLAP_DIR=str(shared), SWEEP_OVERLAP_WANT=str(max_parallel))
    names = ",".join(f"sg-par-{i}" for i in range(4))
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "-m", "target=aws", "stage=deploy", NO_CHECKOV,
                             f"name={names}", f"sweep.max_parallel={max_parallel}", f"workdir={tmp_path / 'work'}",
                             f"hydra.sweep.dir={sweep}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sweep: 4 jobs run remotely (target=aws, stage=deploy), 3 at once (sweep.max_parallel=3)" in result.stdout
    overlap = [json.loads((sweep / str(job) / "run.json").read_text())["overlap"] for job in range(4)]
    # Measured in the jobs: 3 ran at once (more than one per core), never 4.
    assert max(o["seen_running"] for o in overlap) == max_parallel
    assert _peak([(o["start"], o["end"]) for o in overlap]) == max_parallel
    assert len({o["pid"] for o in overlap}) <= max_parallel  # at most 3 worker processes
    assert "n_jobs: 3" in (sweep / "multirun.yaml").read_text()
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    assert [r["verdict"] for r in rows] == ["pass"] * 4
