"""Where a run's AWS calls go: the embedded local emulator or a real account."""

from __future__ import annotations

from runner.settings import Settings


def account_for(settings: Settings) -> str:
    """The real account id behind the default credential chain; a clear error without credentials."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from runner.cli import UserError

    try:
        session = boto3.Session(profile_name=settings.target.profile, region_name=settings.target.region)
        return session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise UserError(
            f"target=aws: cannot reach AWS with the default credential chain"
            f"{' (profile ' + settings.target.profile + ')' if settings.target.profile else ''}: {exc}. "
            "Configure credentials (aws configure, AWS_PROFILE, or environment variables), "
            "or run on the local target (target=local)."
        ) from None
