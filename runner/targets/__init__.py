"""Where a run's AWS calls go: the embedded local emulator or a real account.

``open_target(settings)`` yields a ``Target`` whose clients all go to one place with botocore's
adaptive retries (throttling is retried, never an error): on ``target=local`` the embedded moto
server (started here, or the one named by ``target.endpoint_url``), on ``target=aws`` the
default credential chain. There is no fallback from one to the other.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runner.core.names import LOCAL_ACCOUNT
from runner.core.settings import Settings

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
RETRIES = {"mode": "adaptive", "max_attempts": 8}


def _no_credentials(settings: Settings, detail: str = "") -> Exception:
    from runner.core.errors import UserError

    profile = f" (profile {settings.target.profile})" if settings.target.profile else ""
    return UserError(
        f"target=aws: no usable AWS credentials from the default credential chain{profile}"
        f"{': ' + detail if detail else ''}. Configure credentials (aws configure, AWS_PROFILE, or "
        "environment variables), or run on the local target (target=local)."
    )


def _aws_session(settings: Settings) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session(profile_name=settings.target.profile, region_name=settings.target.region)
    except BotoCoreError as exc:
        raise _no_credentials(settings, str(exc)) from None
    if session.get_credentials() is None:
        raise _no_credentials(settings)
    return session


def account_of(settings: Settings) -> str:
    """The account a stack is built for, without opening the target (the emulator's is fixed)."""
    return account_for(settings) if settings.target.kind == "aws" else LOCAL_ACCOUNT


def starts_empty(settings: Settings) -> bool:
    """True when the target is an emulator this run starts: nothing is deployed there yet."""
    return settings.target.kind == "local" and not settings.target.endpoint_url


def account_for(settings: Settings) -> str:
    """The real account id behind the default credential chain; a clear error without credentials."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _aws_session(settings).client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise _no_credentials(settings, str(exc)) from None


@dataclass
class Target:
    """One place AWS calls go to. Clients are cached per service and share event hooks."""

    kind: str  # local | aws
    account: str
    region: str
    session: Any  # boto3.Session
    endpoint_url: str | None = None
    profile: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _hooks: list[tuple[str, Callable[..., Any], str, bool]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _on_close: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def client(self, service: str) -> Any:
        from botocore.config import Config

        with self._lock:
            if service not in self._clients:
                config = Config(retries=dict(RETRIES), connect_timeout=10, read_timeout=120,
                                user_agent_extra="sagegate")
                kwargs: dict[str, Any] = {"config": config, "region_name": self.region}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                client = self.session.client(service, **kwargs)
                # Every request is checked against the service model before it is sent, on both
                # targets: the emulator must refuse what AWS refuses (max, enum, pattern).
                from runner.targets.request_validation import install  # botocore models: only with a client

                install(client)
                for event, handler, unique_id, last in self._hooks:
                    _register(client, event, handler, unique_id, last)
                self._clients[service] = client
            return self._clients[service]

    def register(self, event: str, handler: Callable[..., Any], *, last: bool = False) -> Callable[[], None]:
        """Register a botocore event handler on every client, now and later; returns its remover.
        ``last``: after every other handler of the event (e.g. after the request check)."""
        unique_id = f"sagegate-{id(handler)}-{len(self._hooks)}"
        with self._lock:
            self._hooks.append((event, handler, unique_id, last))
            clients = list(self._clients.values())
        for client in clients:
            _register(client, event, handler, unique_id, last)

        def remove() -> None:
            with self._lock:
                self._hooks[:] = [h for h in self._hooks if h[2] != unique_id]
                current = list(self._clients.values())
            for client in current:
                client.meta.events.unregister(event, unique_id=unique_id)

        return remove

    @property
    def jobs_run_here(self) -> bool:
        """True when jobs sent to this target are only recorded (the emulator boots nothing and
        runs no container): launchers then run the same bundle in local processes."""
        return self.kind == "local"

    @property
    def serves_data_plane(self) -> bool:
        """True when endpoints and functions of this target are served by local processes
        (``runner.targets.dataplane``) rather than by AWS."""
        return self.kind == "local"

    def child_env(self) -> dict[str, str]:
        """Environment variables that send a child process's AWS SDK calls to this target."""
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.kind == "local":
            env.update({"AWS_ENDPOINT_URL": self.endpoint_url or "",
                        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"]})
        elif self.profile:
            env["AWS_PROFILE"] = self.profile
        return env

    def role_environment(self, role_arn: str, session: str) -> dict[str, str]:
        """``child_env`` for a process that runs as ``role_arn`` (an endpoint, a function, a job):
        temporary credentials from AssumeRole, so the local target authorises its calls against the
        role's policies (runner/targets/iam_enforcement.py), as AWS does."""
        credentials = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session[:64])["Credentials"]
        return {**self.child_env(), "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"]}

    def role_client(self, service: str, role_arn: str, session: str) -> Any:
        """A client of ``service`` acting as ``role_arn`` (the request check installed, as on every client)."""
        from runner.targets.request_validation import install

        env = self.role_environment(role_arn, session)
        client = self.session.client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                     aws_session_token=env["AWS_SESSION_TOKEN"])
        install(client)
        return client

    def on_close(self, callback: Callable[[], None]) -> None:
        self._on_close.append(callback)

    def close(self) -> None:
        while self._on_close:
            callback = self._on_close.pop()
            with contextlib.suppress(Exception):
                callback()
        with self._lock:
            for client in self._clients.values():
                with contextlib.suppress(Exception):
                    client.close()
            self._clients.clear()


def _register(client: Any, event: str, handler: Callable[..., Any], unique_id: str, last: bool) -> None:
    if last:
        client.meta.events.register_last(event, handler, unique_id=unique_id)
    else:
        client.meta.events.register(event, handler, unique_id=unique_id)


def local_target(endpoint_url: str, region: str = "us-east-1") -> Target:
    """A target on the emulator at ``endpoint_url`` (no process is started)."""
    import boto3

    session = boto3.Session(region_name=region, **LOCAL_CREDENTIALS)
    return Target("local", LOCAL_ACCOUNT, region, session, endpoint_url=endpoint_url.rstrip("/"))


def aws_target(settings: Settings) -> Target:
    session = _aws_session(settings)
    account = account_for(settings)
    return Target("aws", account, settings.target.region, session, profile=settings.target.profile)


@contextlib.contextmanager
def open_target(settings: Settings) -> Iterator[Target]:
    """The run's target; the embedded emulator, if this call started it, stops on exit."""
    from runner.core.errors import UserError
    from runner.targets.emulator import Emulator, emulator_is_running

    if settings.target.kind == "aws":
        target = aws_target(settings)
        try:
            yield target
        finally:
            target.close()
        return

    emulator: Emulator | None = None
    url = settings.target.endpoint_url
    if url:
        if not emulator_is_running(url):
            raise UserError(f"target.endpoint_url: no emulator answers at {url}; "
                            "start one with `python -m runner.local` or drop target.endpoint_url")
    else:
        emulator = Emulator(iam_propagation_s=settings.target.iam_propagation_s).start()
        url = emulator.url
    target = local_target(url, settings.target.region)
    try:
        yield target
    finally:
        target.close()
        if emulator is not None:
            emulator.stop()


def environ_without_aws(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without AWS_* variables (children get them from child_env)."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not k.startswith("AWS_")}
