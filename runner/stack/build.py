"""``build_stack``: the desired state of one configuration, composed from one builder per family."""

from __future__ import annotations

from runner.core.names import LOCAL_ACCOUNT
from runner.core.settings import Settings
from runner.stack.autoscaling import build_autoscaling
from runner.stack.endpoint import build_endpoint
from runner.stack.function import build_function
from runner.stack.jobs import build_jobs
from runner.stack.model import Stack
from runner.stack.needs import build_needs
from runner.stack.notebook import build_notebook
from runner.stack.parts import StackParts
from runner.stack.roles import build_instance_profile, build_roles


def build_stack(settings: Settings, account: str = LOCAL_ACCOUNT, model_data_url: str | None = None,
                run_id: str = "plan") -> Stack:
    """The desired state of one configuration.

    ``model_data_url`` is the trained artifact's S3 URI; before training it is where the deploy
    stage will upload it. ``run_id`` names this run's jobs (job names are unique in an account).
    """
    parts = StackParts.for_settings(settings, account)
    model_data_url = model_data_url or parts.names.s3_uri("artifacts/model.tar.gz")
    resources = [
        *build_roles(parts),  # first: the other builders refer to the roles' logical ids
        *build_endpoint(parts, model_data_url),
        *build_autoscaling(parts),
        *build_function(parts),
        *build_notebook(parts),
        *build_instance_profile(parts),
    ]
    return Stack(settings.name, account, parts.region, parts.names, resources, build_jobs(parts, run_id),
                 model_data_url, build_needs(parts))
