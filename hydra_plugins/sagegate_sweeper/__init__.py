"""Hydra's basic sweeper, without its second composition pass and without a traceback for a job
that raised.

Hydra's BasicSweeper composes every job's config once to validate the batch, and the launcher
composes it again to run it. sagegate's sweep callback (runner/app/sweep.py) already composes and
validates every job before the sweeper starts (it needs the configs to scan all templates with
one checkov run, and stops the sweep if any job is invalid), so the sweeper's own pass only
doubles the cost of a sweep (≈0.1 s a job).

BasicSweeper also re-raises the first failed job's exception after its batch, which skips the
sweep's summary and prints a traceback. Here a failed job is recorded instead: its run.json (if
the job did not write one, e.g. it raised before runner/app/cli.py could) holds the error and its
traceback goes to traceback.txt in its directory; the summary callback makes it an error row.
How many jobs run at once is the launcher's (Hydra's joblib launcher, ``hydra.launcher.n_jobs``).
The callback decides it before this sweeper and its launcher are instantiated, from the jobs'
validated settings (a sweep of remote jobs runs ``sweep.max_parallel`` at once, whatever the
cores), and sets it in the config the launcher is instantiated from; this package reads nothing of
runner/, so it leaves that decision to the callback and launches all jobs in one batch.
Hydra loads sweepers only from the hydra_plugins namespace, hence this package.

Hydra's launchers compose every job's config in full (``load_sweep_config``: the defaults list,
every YAML file, ≈ 0.13 s a job). The sweeper hands its launcher a config loader
(``ComposeOnce``) that composes each distinct set of the job's other overrides (group choices,
``hydra.*``) once per process and applies the job's value overrides to a copy of it, with Hydra's
own functions (``Overrides``' rule for what is a value override, ``_apply_overrides_to_config``,
``get_overrides_dirname``): the same config, ``hydra.overrides.task`` and ``override_dirname``;
the sweep's directory layout and each job's ``.hydra/`` files are the launcher's as before. Jobs
of Hydra's joblib launcher run in processes forked from this one once the bases are composed,
each with this package's ``job.run_job`` (Hydra's, at half the cost).

Once set up (launcher, ``multirun.yaml``, the composed bases), and before the first job, the
sweeper calls ``before_jobs(config=...)`` on every Hydra callback of the sweep that has one: work
the jobs need that ran beside the set-up (the callback's checkov batch) is finished there.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import pickle
import sys
import traceback
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

EXIT_ERROR = 2  # runner.core.errors.EXIT_BAD_CONFIG (hydra_plugins imports nothing of runner)


# Composed configs per process, pickled (each job loads its own copy): (the sweep's token, the job's
# non-value overrides) -> config.
_BASES: dict[tuple[str, tuple[str, ...]], bytes] = {}


class ComposeOnce:
    """Hydra's config loader, composing each distinct set of non-value overrides once per process
    (see the module's docstring). Everything but ``load_sweep_config`` is the wrapped loader's;
    pickled to the launcher's worker processes with it."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._token = uuid.uuid4().hex  # this sweep's entries in _BASES

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_loader", "_token"):
            raise AttributeError(name)
        return getattr(self._loader, name)

    def _is_value(self, override: Override) -> bool:
        """A value override, by Hydra's own rule (hydra/_internal/defaults_list.py, Overrides):
        a dict, or a key that is no config group; never a ``hydra.*`` override."""
        if override.is_hydra_override() or override.is_sweep_override():
            return False
        return isinstance(override.value(), dict) or not self._loader.repository.group_exists(override.key_or_group)

    def _base(self, master_config: DictConfig, parsed: list[Override]) -> bytes:
        """The config composed from the non-value overrides of ``parsed``, pickled: unpickling it
        is a copy (flags and all) in half the time of copy.deepcopy."""
        key = (self._token, tuple(o.input_line for o in parsed if not self._is_value(o)))
        if key not in _BASES:
            if len(_BASES) > 64 or any(token != self._token for token, _ in _BASES):
                _BASES.clear()
            _BASES[key] = pickle.dumps(self._loader.load_sweep_config(master_config, list(key[1])))
        return _BASES[key]

    def compose_bases(self, master_config: DictConfig, jobs: Sequence[Sequence[str]]) -> None:
        """Compose the base of each of ``jobs`` now (e.g. before forking: the children share them)."""
        if not OmegaConf.select(master_config, "hydra.searchpath"):
            parser = OverridesParser.create()
            for overrides in jobs:
                self._base(master_config, parser.parse_overrides(list(overrides)))

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        if OmegaConf.select(master_config, "hydra.searchpath"):  # the search path could change the groups
            return self._loader.load_sweep_config(master_config, sweep_overrides)
        parsed = OverridesParser.create().parse_overrides(list(sweep_overrides))
        values = [o for o in parsed if self._is_value(o)]
        config = pickle.loads(self._base(master_config, parsed))
        assert isinstance(config, DictConfig)
        ConfigLoaderImpl._apply_overrides_to_config(values, config)
        app = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(config.hydra):
            config.hydra.overrides.task = [o.input_line for o in app]
            dirname = config.hydra.job.config.override_dirname
            config.hydra.job.override_dirname = get_overrides_dirname(
                overrides=app, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=config)
        return config


class PrevalidatedSweeper(BasicSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        assert self.launcher is not None
        launcher_context = getattr(self.launcher, "hydra_context", None)
        if isinstance(launcher_context, HydraContext):  # Hydra's basic and joblib launchers
            self.launcher.hydra_context = HydraContext(  # type: ignore[attr-defined]
                config_loader=ComposeOnce(launcher_context.config_loader), callbacks=launcher_context.callbacks)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Done by runner.app.sweep.SweepSummary.on_multirun_start for every job of the sweep."""

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params_conf = [*self._parse_config(), *arguments]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params_conf), self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        loader = self.launcher.hydra_context.config_loader  # type: ignore[attr-defined]
        if isinstance(loader, ComposeOnce) and self._forked_workers() is not None:
            # Each group choice composed once, before forking: the job processes share them.
            loader.compose_bases(self.launcher.config, [job for batch in self.overrides for job in batch])  # type: ignore[attr-defined]
        self._before_jobs()
        returns: list[Sequence[JobReturn]] = []
        initial_job_idx = 0
        while not self.is_done():
            batch = self.get_job_batch()
            try:
                workers = self._forked_workers()
                if workers is not None:
                    results = self._launch_forked(batch, initial_job_idx, workers, sweep_dir)
                else:
                    results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
            except Exception as exc:  # noqa: BLE001 - e.g. a worker process killed: its jobs are error rows
                log.error("sweep: jobs %d..%d did not finish: %s: %s", initial_job_idx,
                          initial_job_idx + len(batch) - 1, type(exc).__name__, exc)
                for offset, overrides in enumerate(batch):
                    record_failure(sweep_dir / str(initial_job_idx + offset), list(overrides), exc)
                initial_job_idx += len(batch)
                continue
            for offset, result in enumerate(results):
                if result.status == JobStatus.FAILED:
                    record_failure(_job_dir(result, sweep_dir / str(initial_job_idx + offset)),
                                   list(result.overrides or batch[offset]), result._return_value)
            initial_job_idx += len(batch)
            returns.append(results)
        return returns


    def _before_jobs(self) -> None:
        """Call ``before_jobs(config=...)`` on each of the sweep's Hydra callbacks that has one: work
        every job needs that could overlap the sweeper's set-up (sagegate's SweepSummary waits
        there for the checkov batch it started in ``on_multirun_start``)."""
        assert self.hydra_context is not None
        for callback in getattr(self.hydra_context.callbacks, "callbacks", []):
            before_jobs = getattr(callback, "before_jobs", None)
            if callable(before_jobs):
                before_jobs(config=self.config)

    # ---- the joblib launcher's jobs, in processes forked from this one ------------------------------

    def _forked_workers(self) -> int | None:
        """How many forked processes run the batch (1: this process) in place of Hydra's joblib
        launcher, with its n_jobs; None: the launcher runs it (another launcher, a joblib backend,
        ``prefer``, ``require`` or ``timeout`` set, or no fork on this platform)."""
        launcher = self.launcher
        settings = getattr(launcher, "joblib", None)
        if type(launcher).__name__ != "JoblibLauncher" or not isinstance(settings, dict) or not hasattr(os, "fork"):
            return None
        if (settings.get("backend") not in (None, "loky") or settings.get("prefer", "processes") != "processes"
                or settings.get("require") is not None or settings.get("timeout") is not None):
            return None
        n_jobs = settings.get("n_jobs")
        if not isinstance(n_jobs, int) or n_jobs == 0:
            return None
        return n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)

    def _run_job(self, idx: int, overrides: Sequence[str]) -> JobReturn:
        """One job, as Hydra's launchers run it (hydra_plugins.hydra_joblib_launcher._core.execute_job),
        with the same ``run_job`` made cheaper (job.py)."""
        # Imported here, not with the package: Hydra's plugin scanner executes this package before it
        # registers it in sys.modules, and an import of its own module then would import it twice.
        from hydra_plugins.sagegate_sweeper import job

        launcher: Any = self.launcher
        config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
            config.hydra.job.num = idx
        return job.run_job(hydra_context=launcher.hydra_context, task_function=launcher.task_function, config=config,
                           job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")

    def _launch_forked(self, batch: Sequence[Sequence[str]], initial_job_idx: int, workers: int,
                       sweep_dir: Path) -> list[JobReturn]:
        """Run the batch in ``workers`` processes forked from this one (or here, for one): they
        start with everything this process imported and composed (no re-import, no pickling of the
        config per job, as joblib's loky workers pay). A failed job is recorded by its process
        (``record_failure``); a process that dies leaves its unfinished jobs as error rows."""
        launcher: Any = self.launcher
        setup_globals()
        configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
        jobs = list(enumerate(batch, start=initial_job_idx))
        workers = max(1, min(workers, len(jobs)))
        log.info(f"Launching {len(jobs)} jobs in {workers} process(es), sweep output dir : {sweep_dir}")
        for idx, overrides in jobs:  # here, as Hydra's launchers do: a job's process logs to its job's log
            log.info(f"\t#{idx} : {' '.join(overrides)}")
        if workers == 1:
            results = []
            for idx, overrides in jobs:
                results.append(self._run_job(idx, overrides))
                configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
            return results
        sys.stdout.flush()
        sys.stderr.flush()
        # What this process made is never garbage in the children: frozen, their full collections
        # skip it (a 100-job sweep's full collections took 60-70 ms each instead of 30).
        gc.freeze()
        children: dict[int, list[tuple[int, Sequence[str]]]] = {}
        for worker in range(workers):
            share = jobs[worker::workers]
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child's coverage is not collected
                code = 0
                try:
                    for idx, overrides in share:
                        result = self._run_job(idx, overrides)
                        if result.status == JobStatus.FAILED:
                            record_failure(_job_dir(result, sweep_dir / str(idx)), list(result.overrides or overrides),
                                           result._return_value)
                except BaseException:  # noqa: BLE001 - the parent turns its unfinished jobs into error rows
                    traceback.print_exc()
                    code = 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            children[pid] = share
        results = []
        gc.unfreeze()  # here, after the fork: collected as before
        for pid, share in children.items():
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            for idx, overrides in share:
                job_dir = sweep_dir / str(idx)
                if code != 0 and not (job_dir / "run.json").exists():
                    record_failure(job_dir, list(overrides), RuntimeError(f"its process exited {code}"))
                results.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED))
        return results


def _job_dir(result: JobReturn, default: Path) -> Path:
    try:
        return Path(result.hydra_cfg.hydra.runtime.output_dir)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a job that failed before Hydra set its directory
        return default


def record_failure(job_dir: Path, overrides: list[str], exc: BaseException | None) -> None:
    """A job that raised: its traceback in traceback.txt, and a run.json with the error unless the
    job wrote its own."""
    job_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(exc, BaseException):
        (job_dir / "traceback.txt").write_text("".join(traceback.format_exception(exc)))
    run_json = job_dir / "run.json"
    if run_json.exists():
        return
    message = f"{type(exc).__name__}: {exc}" if exc is not None else "the job failed"
    run_json.write_text(json.dumps({"overrides": overrides, "exit_code": EXIT_ERROR,
                                    "error": f"error: {message} (traceback in {job_dir / 'traceback.txt'})"},
                                   indent=2) + "\n")
