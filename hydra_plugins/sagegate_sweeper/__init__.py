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
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

EXIT_ERROR = 2  # runner.core.errors.EXIT_BAD_CONFIG (hydra_plugins imports nothing of runner)


class PrevalidatedSweeper(BasicSweeper):
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
        returns: list[Sequence[JobReturn]] = []
        initial_job_idx = 0
        while not self.is_done():
            batch = self.get_job_batch()
            try:
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
