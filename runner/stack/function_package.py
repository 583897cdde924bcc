"""The Lambda function's deployment package: a deterministic zip of handlers/lambda_function.py.

Deterministic (fixed timestamps and permissions) so that its SHA-256 changes only when the code
does: the stack names the package by that hash and the applier publishes a new version only then.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HANDLER_SOURCE = Path(__file__).resolve().parents[2] / "handlers" / "lambda_function.py"
HANDLER = "lambda_function.lambda_handler"
_FIXED_DATE = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class FunctionPackage:
    zip_bytes: bytes
    sha256_hex: str

    @property
    def code_sha256_b64(self) -> str:
        """The form Lambda reports as CodeSha256."""
        return base64.b64encode(hashlib.sha256(self.zip_bytes).digest()).decode()


def build_function_package(source: Path = HANDLER_SOURCE) -> FunctionPackage:
    stat = source.stat()
    # Every stack of a sweep packages the same file: build it once per version of the file.
    return _package(source, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _package(source: Path, mtime_ns: int, size: int) -> FunctionPackage:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("lambda_function.py", date_time=_FIXED_DATE)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, source.read_bytes())
    data = buffer.getvalue()
    return FunctionPackage(data, hashlib.sha256(data).hexdigest())
