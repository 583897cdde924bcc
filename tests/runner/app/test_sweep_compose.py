"""The sweeper's config loader (hydra_plugins/sagegate_sweeper ComposeOnce): each distinct set of
group choices is composed once and a job's value overrides applied to a copy, giving exactly the
config Hydra's own loader composes for the job (values, hydra.overrides.task, override_dirname,
choices), and Hydra's error for an override it refuses."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

import hydra_plugins.sagegate_sweeper as sweeper
from runner.app.compose import CONF_DIR

REPO = Path(__file__).resolve().parents[3]

JOBS = [
    ["stage=check", "endpoint=realtime", "autoscaling.max_capacity=1", "function.provisioned_concurrency=0"],
    ["stage=check", "endpoint=realtime", "autoscaling.max_capacity=3", "function.provisioned_concurrency=2"],
    ["stage=check", "endpoint=ab_test", "autoscaling.max_capacity=2", "++name=other"],
    ["autoscaling.max_capacity=4", "stage=plan", "endpoint=ab_test", "~slo", "hydra.job.chdir=false"],
    ["stage=check", "endpoint.variants={AllTraffic:{instance_type:ml.c5.large,initial_instance_count:1,weight:1.0}}"],
]


@pytest.fixture(scope="module")
def loader_and_master():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["hydra.job.config.override_dirname.exclude_keys=[stage]"],
                                           run_mode=RunMode.MULTIRUN)
        yield loader, master


def test_each_job_gets_the_config_hydra_composes(loader_and_master):
    loader, master = loader_and_master
    once = sweeper.ComposeOnce(loader)
    for job in JOBS:
        expected = loader.load_sweep_config(master, list(job))
        got = once.load_sweep_config(master, list(job))
        assert OmegaConf.to_container(got) == OmegaConf.to_container(expected), job
        assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(expected)
        assert OmegaConf.is_struct(got) == OmegaConf.is_struct(expected)
    # Two group choices (realtime, ab_test) x their hydra overrides: composed once each, not per job.
    assert len([key for key in sweeper._BASES if key[0] == once._token]) == 4


def test_a_refused_override_is_hydras_error(loader_and_master):
    loader, master = loader_and_master
    once = sweeper.ComposeOnce(loader)
    with pytest.raises(ConfigCompositionException):
        loader.load_sweep_config(master, ["stage=check", "autoscaling.no_such_key=1"])
    with pytest.raises(ConfigCompositionException):
        once.load_sweep_config(master, ["stage=check", "autoscaling.no_such_key=1"])


def test_it_pickles_for_the_launchers_worker_processes(loader_and_master):
    loader, master = loader_and_master
    once = pickle.loads(pickle.dumps(sweeper.ComposeOnce(loader)))
    config = once.load_sweep_config(master, list(JOBS[0]))
    assert config.autoscaling.max_capacity == 1 and list(config.hydra.overrides.task) == JOBS[0]


class JoblibLauncher:  # named as Hydra's: the sweeper reads only its joblib settings
    def __init__(self, **joblib) -> None:
        self.joblib = joblib


@pytest.mark.parametrize(("settings", "workers"), [
    ({"n_jobs": -1, "backend": None, "prefer": "processes"}, os.cpu_count() or 1),
    ({"n_jobs": 3, "prefer": "processes"}, 3),
    ({"n_jobs": 1}, 1),  # in this process, one job after the other
    ({"n_jobs": 2, "backend": "threading"}, None),  # the user's joblib backend: the launcher runs it
    ({"n_jobs": 2, "timeout": 10}, None),
    ({"n_jobs": 2, "prefer": "threads"}, None),
])
def test_the_joblib_launchers_jobs_run_in_forked_processes(settings, workers):
    """A sweep's jobs run in processes forked after the sweep's callback (they start with what it
    imported and composed), as many as the joblib launcher's n_jobs; unless its settings ask for
    something else joblib does."""
    sweeper_ = sweeper.PrevalidatedSweeper(max_batch_size=None)
    sweeper_.launcher = JoblibLauncher(**settings)
    assert sweeper_._forked_workers() == workers


def test_another_launcher_launches_its_jobs():
    sweeper_ = sweeper.PrevalidatedSweeper(max_batch_size=None)
    sweeper_.launcher = object()
    assert sweeper_._forked_workers() is None


def test_hydras_plugin_scan_loads_the_package_once():
    """Hydra's scanner executes a plugin package before it registers it in sys.modules: a package
    that imported its own module at import time was then imported twice, and the copy its parent
    named was not the one in sys.modules (its classes stopped pickling). In a fresh process the
    scan comes first, as in a run."""
    code = ("import sys, pickle; from hydra.core.plugins import Plugins; Plugins.instance(); "
            "import hydra_plugins.sagegate_sweeper as s; "
            "assert s is sys.modules['hydra_plugins.sagegate_sweeper'], 'two copies'; "
            "pickle.dumps(s.record_failure); print('once')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "once", done.stderr[-2000:]
