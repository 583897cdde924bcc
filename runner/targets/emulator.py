"""The embedded AWS emulator: moto's server (with ``moto_gaps``) on loopback, in this process."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from typing import Any

LOOPBACK = "127.0.0.1"


def configure_moto() -> None:
    """Process-wide moto settings, before any backend exists.

    AWS-managed policy ARNs must be attachable (roles may list them), and Lambda must not look
    for a Docker daemon: the local function runtime runs the handler instead. RunInstances refuses
    an AMI the region does not have (InvalidAMIID.NotFound), as EC2 does; moto checks it only when
    asked (its ENABLE_AMI_VALIDATION setting, read at each call).
    """
    from moto import settings as moto_settings
    from moto.core.config import default_user_config

    default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True
    default_user_config.setdefault("lambda", {})["use_docker"] = False
    moto_settings.ENABLE_AMI_VALIDATION = True


def _quiet_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        """No access log line per call: a deploy makes hundreds."""

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    return QuietHandler


class Emulator:
    """moto's Werkzeug app behind ``GapFiller``, served by a thread on 127.0.0.1:<port>.

    ``iam_propagation_s``: seconds before a role or role-policy change reaches the services
    (runner/targets/iam_propagation.py); by default the ``SAGEGATE_IAM_PROPAGATION_S`` environment
    variable, else 0. It can be changed while the emulator runs (``gaps.iam.delay_s``, or POST
    ``{"delay_s": N}`` to ``/_sagegate/iam-propagation``).
    """

    def __init__(self, port: int = 0, iam_propagation_s: float | None = None):
        from runner.targets.iam_propagation import DELAY_ENV

        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.iam_propagation_s = (float(os.environ.get(DELAY_ENV) or 0.0) if iam_propagation_s is None
                                  else iam_propagation_s)
        self.gaps: Any = None  # the GapFiller, once started
        self.authorizer: Any = None  # the RoleCallAuthorizer in front of it

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        configure_moto()
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        from runner.targets.iam_enforcement import RoleCallAuthorizer
        from runner.targets.moto_gaps import GapFiller

        self.gaps = GapFiller(DomainDispatcherApplication(create_backend_app), self.iam_propagation_s)
        # In front of everything: calls made as a role are authorised on the role as the services
        # see it, a change still propagating not yet in force (runner/targets/iam_propagation.py).
        app = self.authorizer = RoleCallAuthorizer(self.gaps, documents_of=self._propagated_documents)
        self.authorizer.denied = self.gaps.access_denied  # one record, served at /_sagegate/access-denied
        self._server = make_server(LOOPBACK, self._port, app, threaded=True,
                                   request_handler=_quiet_handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="sagegate-emulator",
                                        daemon=True)
        self._thread.start()
        return self

    def _propagated_documents(self, account: str, role_arn: str) -> list[Any] | None:
        view = self.gaps.role_view(account, role_arn)
        return None if view is None else list(view.documents)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def emulator_is_running(url: str, timeout_s: float = 2.0) -> bool:
    """True if a moto server (ours or a plain one) answers at ``url``."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/moto-api/config", timeout=timeout_s) as answer:  # noqa: S310
            json.loads(answer.read() or b"{}")
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def set_iam_propagation(url: str, delay_s: float) -> float:
    """Set the delay of the emulator at ``url`` before IAM changes reach the services; returns the
    delay it had."""
    path = f"{url.rstrip('/')}/_sagegate/iam-propagation"
    with urllib.request.urlopen(path, timeout=10) as answer:  # noqa: S310 (loopback)
        previous = float(json.loads(answer.read())["delay_s"])
    request = urllib.request.Request(path, data=json.dumps({"delay_s": delay_s}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (loopback)
        pass
    return previous


def access_denied(url: str) -> list[dict[str, str]]:
    """The calls the emulator at ``url`` refused a role so far, oldest first ({role, action, resource})."""
    from runner.targets.moto_gaps import ACCESS_DENIED_PATH

    with urllib.request.urlopen(f"{url.rstrip('/')}{ACCESS_DENIED_PATH}", timeout=10) as answer:  # noqa: S310
        return list(json.loads(answer.read())["denied"])


def refused_calls(url: str, since: int, roles: set[str] | tuple[str, ...]) -> list[str]:
    """What the emulator refused these roles after its ``since``-th refusal, one line each."""
    return [f"role {d['role']} may not {d['action']} on {d['resource']}"
            for d in access_denied(url)[since:] if d["role"] in roles]


def reset(url: str) -> None:
    """Wipe every backend of the emulator at ``url``."""
    request = urllib.request.Request(f"{url.rstrip('/')}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 (loopback)
        pass
