"""The EC2 training instance's user data: a bash script that trains, uploads and shuts down.

It runs the shared training package from the same source bundle SageMaker gets, reads the data
set from S3 with the package's own sync (training/s3sync.py), packs the model directory exactly
as SageMaker packs /opt/ml/model (training/archive.py, pack_directory), uploads model.tar.gz with
the instance profile's credentials (boto3 finds them in the instance metadata), and shuts the
instance down, which terminates it (InstanceInitiatedShutdownBehavior=terminate). A hard limit
(``shutdown -h +N``) and an EXIT trap (``shutdown -h now``) stop it whatever happens.

Only the DLAMI's PyTorch python is used (it has boto3); no AWS CLI. ``SAGEGATE_ROOT`` and
``SAGEGATE_PYTHON`` name where the script works and which interpreter it runs; on the instance
they are unset and default to /opt/sagegate and the DLAMI's python, and the local target's
stand-in instance sets them to a scratch directory and this machine's python: same steps, same
meaning, another place.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from runner.stack.ec2_image import DLAMI_PYTHON

DEFAULT_ROOT = "/opt/sagegate"
ROOT_VARIABLE = "SAGEGATE_ROOT"
PYTHON_VARIABLE = "SAGEGATE_PYTHON"
ARTIFACT_VARIABLE = "ARTIFACT_URI"
# The one-line bootstrap: the bundle must be fetched before its own s3sync exists here.
_FETCH = ('import sys, boto3; bucket, key = sys.argv[1][5:].split("/", 1); '
          'boto3.client("s3").download_file(bucket, key, sys.argv[2])')


def render_user_data(*, source_uri: str, data_uri: str, artifact_uri: str, region: str,
                     hyperparameters: Mapping[str, str], max_runtime_s: int, checkpointing: bool) -> str:
    q = shlex.quote
    minutes = max(1, max_runtime_s // 60)
    args = " ".join(f"--{k} {q(v)}" for k, v in sorted(hyperparameters.items()))
    checkpoints = '--checkpoint_dir "$ROOT/checkpoints"' if checkpointing else "--checkpoint_dir none"
    lines = [
        "#!/bin/bash",
        "# sagegate: train the shared training package, upload model.tar.gz, shut down (terminates).",
        "set -euxo pipefail",
        f'ROOT="${{{ROOT_VARIABLE}:-{DEFAULT_ROOT}}}"',
        f'PYTHON="${{{PYTHON_VARIABLE}:-{DLAMI_PYTHON}}}"',
        f"SOURCE_URI={q(source_uri)}",
        f"DATA_URI={q(data_uri)}",
        f"{ARTIFACT_VARIABLE}={q(artifact_uri)}",
        f"export AWS_REGION={q(region)} AWS_DEFAULT_REGION={q(region)}",
        "# Hard time limit (training.max_runtime), and a shutdown however the script ends.",
        f"shutdown -h +{minutes}",
        "trap 'shutdown -h now' EXIT",
        'mkdir -p "$ROOT/code" "$ROOT/data" "$ROOT/model" "$ROOT/output" "$ROOT/checkpoints"',
        f'"$PYTHON" -c {q(_FETCH)} "$SOURCE_URI" "$ROOT/sourcedir.tar.gz"',
        'tar -xzf "$ROOT/sourcedir.tar.gz" -C "$ROOT/code"',
        'cd "$ROOT/code"',
        f'"$PYTHON" train.py {args} --data_dir "$DATA_URI" --cache_dir "$ROOT/data" '
        f'--model_dir "$ROOT/model" --output_dir "$ROOT/output" {checkpoints}',
        '"$PYTHON" -m training.archive pack "$ROOT/model" "$ROOT/model.tar.gz"',
        f'"$PYTHON" -m training.s3sync put "$ROOT/model.tar.gz" "${ARTIFACT_VARIABLE}"',
    ]
    return "\n".join(lines) + "\n"


def _assignment(user_data: str, name: str) -> str | None:
    for line in user_data.splitlines():
        if line.startswith(f"{name}="):
            words = shlex.split(line[len(name) + 1:])
            return words[0] if words else None
    return None


def artifact_uri_of(user_data: str) -> str | None:
    """Where the user data uploads model.tar.gz (its ``ARTIFACT_URI=`` line)."""
    return _assignment(user_data, ARTIFACT_VARIABLE)


def time_limit_minutes_of(user_data: str) -> int | None:
    """The hard limit the user data schedules (``shutdown -h +N``), in minutes."""
    for line in user_data.splitlines():
        words = line.split()
        if words[:2] == ["shutdown", "-h"] and len(words) == 3 and words[2].startswith("+"):
            return int(words[2][1:])
    return None


def hyperparameters_of(user_data: str) -> dict[str, str]:
    """The ``--name value`` hyperparameters the user data passes to train.py (paths excluded)."""
    for line in user_data.splitlines():
        words = shlex.split(line)
        if len(words) > 1 and words[1] == "train.py":
            rest = words[2:]
            pairs = {rest[i][2:]: rest[i + 1] for i in range(0, len(rest) - 1, 2) if rest[i].startswith("--")}
            return {k: v for k, v in pairs.items() if not k.endswith("_dir")}
    return {}
