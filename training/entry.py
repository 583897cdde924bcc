"""The training entry: parse the script-mode contract, train, write the model directory.

``python -m training`` and the bundle's ``train.py`` both call ``main``. Exit codes: 0 done,
2 bad arguments, data or checkpoint (the message names the path or argument), 1 a bug.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from training.config import RunSpec, parse_run_args
from training.errors import ConfigError, TrainingError


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        spec = parse_run_args(argv, env)
        run(spec)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        _write_failure(env, str(exc))
        return 2
    except Exception:
        _write_failure(env, traceback.format_exc(limit=5))
        raise
    return 0


def run(spec: RunSpec) -> dict[str, float | int | bool]:
    """Train as ``spec`` says; returns the metrics written to model.json (on the primary process)."""
    import torch

    from training.artifact import ModelMetadata, runtime_versions, write_model_dir
    from training.data import load_splits
    from training.distributed import barrier, process_group
    from training.loop import fit
    from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model

    hp, paths, place = spec.hyperparameters, spec.paths, spec.place
    torch.set_num_threads(place.threads)

    def say(message: str) -> None:
        if place.is_primary:
            print(message, flush=True)

    def warn(message: str) -> None:
        if place.is_primary:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    with process_group(place):
        splits = load_splits(paths.data, hp, paths.cache_dir, warn)
        say(f"data: {len(splits.train)} train, {len(splits.valid)} valid, {len(splits.test)} test images, "
            f"{len(splits.classes)} classes, {hp.image_size} px, from {splits.train.root.parent}")
        torch.manual_seed(hp.seed)
        try:
            net = build_model(hp.arch, len(splits.classes), hp.head_hidden, hp.weights, hp.freeze_backbone)
        except ValueError as exc:
            raise ConfigError(f"--weights/--arch: {exc}") from exc
        say(f"model: {hp.arch}, {'frozen backbone' if hp.freeze_backbone else 'full fine-tune'}, "
            f"{place.world_size} process(es), {place.threads} thread(s) each")
        result = fit(net, splits, hp, place, paths.checkpoint_dir, say)
        result.extra["skipped_images"] = splits.skipped
        found = result.metrics()
        if place.is_primary:
            metadata = ModelMetadata(
                arch=hp.arch,
                head_hidden=hp.head_hidden,
                num_classes=len(splits.classes),
                classes=list(splits.classes),
                image_size=hp.image_size,
                normalize={"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
                metrics=found,
                hyperparameters=hp.to_dict(),
                versions=runtime_versions(),
            )
            for problem in write_model_dir(paths.model_dir, net.state_dict(), metadata):
                warn(problem)
            if paths.output_dir is not None:
                paths.output_dir.mkdir(parents=True, exist_ok=True)
                (paths.output_dir / "metrics.json").write_text(json.dumps(
                    {"metrics": found, "history": [asdict(r) for r in result.history]}, indent=2) + "\n")
            say(f"model written to {paths.model_dir}")
        barrier(place)
    return found


def _write_failure(env: Mapping[str, str], message: str) -> None:
    """SageMaker shows /opt/ml/output/failure as the job's FailureReason."""
    output_data = env.get("SM_OUTPUT_DATA_DIR")
    if not output_data:
        return
    try:
        failure = Path(output_data).parent / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(message[:1024])
    except OSError:
        pass  # reporting the failure must not hide it
