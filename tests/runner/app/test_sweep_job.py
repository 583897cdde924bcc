"""The sweeper's run_job (hydra_plugins/sagegate_sweeper/job.py) does what Hydra's own does: the
same .hydra/ files byte for byte, the same config, HydraConfig and working directory inside the
task, the same JobReturn, the same job log, the same state after the job; for a job that fails,
that changes directory, sets environment variables, and whose values YAML must quote."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus, run_job, setup_globals
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.sagegate_sweeper import job
from runner.app.compose import CONF_DIR

JOBS = [
    ["stage=check", "autoscaling.max_capacity=3", "function.provisioned_concurrency=2"],
    # Values YAML must quote or escape: a string that reads as a bool, an int, a float; unicode; ': '.
    ["stage=plan", "+note.flag='true'", "+note.int='1'", "+note.float='1.0'", "+note.text='é: ü # x'",
     "+note.list=[a,'2',null]"],
    ["stage=check", "hydra.job.chdir=true", "+hydra.job.env_set.SAGEGATE_TEST_VAR=set-by-job"],
    ["stage=check", "+note.fail=true"],  # the task raises
]


def task(cfg: DictConfig) -> dict[str, Any]:
    """What a job's task can see; raises when asked to."""
    logging.getLogger("task").info("job %s in %s", HydraConfig.get().job.num, os.getcwd())
    seen = {"cfg": OmegaConf.to_yaml(cfg), "hydra": OmegaConf.to_yaml(HydraConfig.get()), "cwd": os.getcwd(),
            "env": os.environ.get("SAGEGATE_TEST_VAR"), "output_dir": HydraConfig.get().runtime.output_dir,
            "resolved": cfg.name}
    if OmegaConf.select(cfg, "note.fail"):
        raise ValueError("asked to fail")
    return seen


@pytest.fixture(scope="module")
def loader_and_master(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweep") / "multirun"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", [f"hydra.sweep.dir={sweep_dir}"], run_mode=RunMode.MULTIRUN)
        yield loader, master


def _run(runner: Any, loader: Any, master: DictConfig, idx: int, overrides: list[str]) -> dict[str, Any]:
    """Run one job with ``runner`` as Hydra's joblib launcher would; what it left behind."""
    setup_globals()
    HydraConfig.instance().cfg = None
    config = loader.load_sweep_config(master, list(overrides))
    with open_dict(config):
        config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
        config.hydra.job.num = idx
    cwd = os.getcwd()
    ret = runner(hydra_context=HydraContext(config_loader=loader, callbacks=_Callbacks()), task_function=task,
                 config=config, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    after = {"cwd_after": os.getcwd(), "hydra_after": HydraConfig.instance().cfg, "env_after": os.environ.get("SAGEGATE_TEST_VAR")}
    os.chdir(cwd)
    output_dir = Path(config.hydra.runtime.output_dir)
    files = {p.relative_to(output_dir).as_posix(): p.read_bytes() for p in sorted(output_dir.rglob("*")) if p.is_file()}
    for name in [n for n in files if n.endswith(".log")]:  # the log lines, without their time stamps
        files[name] = re.sub(rb"^\[[^]]*\]", b"", files[name], flags=re.M)
    shutil.rmtree(output_dir)
    value = ret._return_value  # the property raises a failed job's exception
    return {"files": files, "status": ret.status, "return_value": repr(value) if isinstance(value, Exception) else value,
            "cfg": OmegaConf.to_yaml(ret.cfg), "hydra_cfg": OmegaConf.to_yaml(ret.hydra_cfg), "overrides": ret.overrides,
            "working_dir": ret.working_dir, "task_name": ret.task_name, "callbacks": _Callbacks.calls[:],
            **after}


class _Callbacks:
    """Hydra's callbacks object, recording what each job told it."""

    calls: list[str] = []

    def on_job_start(self, config: DictConfig, task_function: Any) -> None:
        _Callbacks.calls.append(f"start {config.hydra.job.num} {config.hydra.runtime.output_dir}")

    def on_job_end(self, config: DictConfig, job_return: Any) -> None:
        _Callbacks.calls.append(f"end {config.hydra.job.num} {job_return.status}")


@pytest.mark.parametrize("idx", range(len(JOBS)))
def test_a_job_runs_as_hydra_runs_it(loader_and_master, idx: int):
    loader, master = loader_and_master
    _Callbacks.calls.clear()
    theirs = _run(run_job, loader, master, idx, JOBS[idx])
    _Callbacks.calls.clear()
    ours = _run(job.run_job, loader, master, idx, JOBS[idx])
    assert set(ours["files"]) == set(theirs["files"]) >= {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"}
    for name, content in theirs["files"].items():
        assert ours["files"][name] == content, name
    assert ours == theirs


def test_the_failing_job_failed_and_the_others_saw_their_own_settings(loader_and_master):
    loader, master = loader_and_master
    ran = [_run(job.run_job, loader, master, idx, overrides) for idx, overrides in enumerate(JOBS)]
    assert [r["status"] for r in ran] == [JobStatus.COMPLETED] * 3 + [JobStatus.FAILED]
    assert ran[3]["return_value"] == "ValueError('asked to fail')"
    assert ran[2]["return_value"]["env"] == "set-by-job" and ran[2]["env_after"] is None
    assert ran[2]["return_value"]["cwd"] == ran[2]["return_value"]["output_dir"]  # hydra.job.chdir=true
    assert ran[0]["return_value"]["cwd"] == ran[0]["cwd_after"] != ran[0]["return_value"]["output_dir"]
    assert b"'true'" in ran[1]["files"][".hydra/config.yaml"] and b"'1.0'" in ran[1]["files"][".hydra/config.yaml"]


def test_copy_config_is_a_deep_copy(loader_and_master):
    loader, master = loader_and_master
    config = loader.load_sweep_config(master, ["stage=check"])
    copied = job.copy_config(config)
    assert OmegaConf.to_yaml(copied) == OmegaConf.to_yaml(config)
    assert OmegaConf.is_struct(copied) and OmegaConf.is_readonly(copied.hydra) == OmegaConf.is_readonly(config.hydra)
    with open_dict(copied):
        copied.autoscaling.max_capacity = 9
    assert config.autoscaling.max_capacity != 9
