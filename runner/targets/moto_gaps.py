"""What moto 5.2.5 lacks for this stack, with the real APIs' request and response shapes.

The embedded emulator is moto's Werkzeug app wrapped by ``GapFiller``: a request for one of the
calls below is answered here (reading and writing moto's own in-process backends), everything else
goes to moto unchanged. So the applier sends the same boto3 calls to the emulator as to AWS:

- SageMaker names are unique in an account and region, and moto takes a second ``CreateModel``,
  ``CreateEndpointConfig``, ``CreateEndpoint``, ``CreateTrainingJob`` or
  ``CreateHyperParameterTuningJob`` of an existing name: refused here with AWS's error (see
  ``UNIQUE_NAMES`` and docs/aws-rules.md).
- AWS's rules between members and between requests (runner/core/aws_rules.py: a notebook without
  direct internet access needs a subnet and security groups that exist; Serverless Inference
  takes one variant, no data capture, no network-isolated or VPC model; a traced function's role
  must write X-Ray traces, a function in a VPC's role must manage network interfaces): a request
  that breaks one is refused with AWS's error code and text, and moto creates nothing
  (``_EmulatorWorld`` answers what the rules look up from moto's backends).
- IAM is eventually consistent (runner/targets/iam_propagation.py): a role or role-policy change
  reaches the services only ``iam_propagation_s`` seconds later. Until then Lambda CreateFunction /
  UpdateFunctionConfiguration and SageMaker CreateModel, CreateTrainingJob,
  CreateHyperParameterTuningJob and CreateNotebookInstance answer that the role cannot be assumed
  (AWS's words), and the rules that read a role's permissions (the X-Ray one) see its policies as
  they were before the change. A role whose trust policy does not name the service is refused
  the same way, at any time. ``/_sagegate/iam-propagation`` reads (GET) or sets (POST
  ``{"delay_s": 2}``) the delay.
- Run-time calls the authoriser refused (runner/targets/iam_enforcement.py): ``GET
  /_sagegate/access-denied`` lists them, oldest first, so a run can report what its roles were
  refused (the emulator may be another process: ``python -m runner.local``).
- SageMaker ``CreateModel`` drops ``EnableNetworkIsolation`` (``DescribeModel`` always says
  false): the request's value is kept on moto's model object after moto creates it.
- S3 ``CreateBucket`` drops ``CreateBucketConfiguration.Tags`` (AWS tags the bucket in the
  creating call): applied to moto's bucket after moto creates it.
- SageMaker ``UpdateEndpoint`` (moto: HTTP 500): points the endpoint at the new config and its
  variants; the endpoint is InService at once, like every moto endpoint.
- Lambda provisioned concurrency ``Put/Get/DeleteProvisionedConcurrencyConfig`` and
  ``ListProvisionedConcurrencyConfigs`` (moto: 404): kept per function and qualifier (an alias or
  a version that exists); a config is READY at once.
- Lambda ``Invoke`` without Docker: when a local function runtime has registered itself for the
  function (``POST /_sagegate/lambda-runtimes``), the invocation is forwarded to it, so
  ``lambda.invoke`` runs the real handler with reserved concurrency honoured (429
  TooManyRequestsException). Otherwise moto answers (its echo backend: Docker is switched off).

- ECR ``GetDownloadUrlForLayer`` (moto: not implemented, HTTP 500): a repository the emulator does
  not hold, such as SageMaker's images in AWS's registries, is ``RepositoryNotFoundException``.

- SageMaker runtime ``InvokeEndpoint`` on the emulator's own URL (moto: a static body for any
  name): forwarded to the local endpoint server registered for the endpoint (``POST
  /_sagegate/lambda-runtimes`` with ``endpoint_name``), so any AWS client configured with the one
  URL works; an unknown endpoint is AWS's ``ValidationError``.

Written against moto 5.2.5 (pinned in pyproject.toml); check these routes again when upgrading.
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from runner.core import aws_rules
from runner.targets.iam_propagation import ROLE_CHANGES, IamPropagation, RoleView, role_name_of, trusts

MOTO_VERSION = "5.2.5"
RUNTIME_REGISTRY_PATH = "/_sagegate/lambda-runtimes"
IAM_PROPAGATION_PATH = "/_sagegate/iam-propagation"
ACCESS_DENIED_PATH = "/_sagegate/access-denied"
INVOKE_PATH = "/_runtime/invoke"  # runner.targets.lambda_runtime serves it

_CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
_CREDENTIAL_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[a-z0-9-]+/([a-z0-9-]+)/aws4_request")
_PROVISIONED = re.compile(r"^/2019-09-30/functions/([^/]+)/provisioned-concurrency/?$")
_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
_INVOKE_ENDPOINT = re.compile(r"^/endpoints/([^/]+)/invocations/?$")
# Request headers of InvokeEndpoint the endpoint server reads (sagemaker-runtime service model).
_RUNTIME_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Target-Variant", "X-Amzn-SageMaker-Custom-Attributes",
                    "X-Amzn-SageMaker-Inference-Id")
_RUNTIME_ERROR_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"
_CREATE_FUNCTION = re.compile(r"^/2015-03-31/functions/?$")
_FUNCTION_CONFIGURATION = re.compile(r"^/2015-03-31/functions/([^/]+)/configuration/?$")

Response = tuple[int, dict[str, str], bytes]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _json(status: int, body: Any, extra_headers: dict[str, str] | None = None) -> Response:
    return status, {"Content-Type": "application/json", **(extra_headers or {})}, json.dumps(body).encode()


def _lambda_error(status: int, code: str, message: str) -> Response:
    return _json(status, {"Type": "User", "message": message}, {"x-amzn-ErrorType": code})


def _sagemaker_error(code: str, message: str) -> Response:
    return _json(400, {"__type": code, "message": message})


# X-Amz-Target -> (request member, moto backend attribute, ARN kind, error code, message) for the
# SageMaker names AWS keeps unique per account and region (a training or tuning job's name forever:
# SageMaker API reference, CreateTrainingJob / CreateHyperParameterTuningJob, ResourceInUse).
UNIQUE_NAMES = {
    "SageMaker.CreateModel": ("ModelName", "_models", "model", "ValidationException",
                              'Cannot create already existing model "{arn}".'),
    "SageMaker.CreateEndpointConfig": ("EndpointConfigName", "endpoint_configs", "endpoint-config",
                                       "ValidationException",
                                       'Cannot create already existing endpoint configuration "{arn}".'),
    "SageMaker.CreateEndpoint": ("EndpointName", "endpoints", "endpoint", "ValidationException",
                                 'Cannot create already existing endpoint "{arn}".'),
    "SageMaker.CreateTrainingJob": ("TrainingJobName", "training_jobs", "training-job", "ResourceInUse",
                                    "Training job names must be unique within an AWS account and region, and a "
                                    "training job with this name already exists ({arn})"),
    "SageMaker.CreateHyperParameterTuningJob": (
        "HyperParameterTuningJobName", "hyper_parameter_tuning_jobs", "hyper-parameter-tuning-job", "ResourceInUse",
        "Hyperparameter tuning job names must be unique within an AWS account and region, and a hyperparameter "
        "tuning job with this name already exists ({arn})"),
}


# service:Operation -> (where the request names the role, the service principal that assumes it,
# the error code, AWS's message). Lambda: InvalidParameterValueException "The role defined for the
# function cannot be assumed by Lambda."; SageMaker: ValidationException "Could not assume role
# <arn>. Please ensure that the role exists and allows principal 'sagemaker.amazonaws.com' to assume
# the role." (sources: docs/aws-rules.md).
_LAMBDA_ASSUME = ("lambda.amazonaws.com", "InvalidParameterValueException",
                  "The role defined for the function cannot be assumed by Lambda.")
_SAGEMAKER_ASSUME = ("sagemaker.amazonaws.com", "ValidationException",
                     "Could not assume role {arn}. Please ensure that the role exists and allows principal "
                     "'sagemaker.amazonaws.com' to assume the role.")
ROLE_USERS: dict[str, tuple[tuple[str, ...], tuple[str, str, str]]] = {
    "lambda:CreateFunction": (("Role",), _LAMBDA_ASSUME),
    "lambda:UpdateFunctionConfiguration": (("Role",), _LAMBDA_ASSUME),
    "sagemaker:CreateModel": (("ExecutionRoleArn",), _SAGEMAKER_ASSUME),
    "sagemaker:CreateTrainingJob": (("RoleArn",), _SAGEMAKER_ASSUME),
    "sagemaker:CreateHyperParameterTuningJob": (("TrainingJobDefinition.RoleArn", "TrainingJobDefinitions.RoleArn"),
                                                _SAGEMAKER_ASSUME),
    "sagemaker:CreateNotebookInstance": (("RoleArn",), _SAGEMAKER_ASSUME),
}


class GapFiller:
    """WSGI middleware in front of moto's ``DomainDispatcherApplication``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], iam_propagation_s: float = 0.0):
        self.app = app
        # When role and role-policy changes reach the services (0: at once).
        self.iam = IamPropagation(delay_s=iam_propagation_s)
        self._iam_lock = threading.Lock()
        self._lock = threading.Lock()
        # (account, region, function name, qualifier) -> (requested, last modified)
        self._provisioned: dict[tuple[str, str, str, str], tuple[int, str]] = {}
        # function name -> base URL of a local runtime that runs it
        self._runtimes: dict[str, str] = {}
        # endpoint name -> base URL of the local endpoint server that serves it
        self._endpoints: dict[str, str] = {}
        # Calls the authoriser in front refused, oldest first: (role ARN, action, resource). The
        # emulator hands this list to its RoleCallAuthorizer, which appends to it.
        self.access_denied: list[tuple[str, str, str]] = []

    # -- WSGI -------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        role_change = self._role_change(environ)
        if role_change is not None:
            return self._change_role(environ, start_response, role_change)
        answer = self._refuse_duplicate(environ) if target in UNIQUE_NAMES else None
        answer = answer or self._refuse_unassumable_role(environ)
        answer = answer or self._refuse_against_aws_rules(environ)
        if answer is None and target == "SageMaker.CreateModel":
            return self._create_model(environ, start_response)
        if answer is None and _is_create_bucket(environ):
            return self._create_bucket(environ, start_response)
        answer = answer or self._route(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        headers = {**headers, "Content-Length": str(len(body))}
        start_response(f"{status} {_REASONS.get(status, 'OK')}", list(headers.items()))
        return [body]

    def _route(self, environ: dict[str, Any]) -> Response | None:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == RUNTIME_REGISTRY_PATH:
            return self._registry(method, environ)
        if path == ACCESS_DENIED_PATH:
            return _json(200, {"denied": [{"role": r, "action": a, "resource": res}
                                          for r, a, res in list(self.access_denied)]})
        if path == IAM_PROPAGATION_PATH:
            if method == "POST":
                self.iam.delay_s = max(0.0, float(json.loads(_read_body(environ) or b"{}").get("delay_s", 0.0)))
            return _json(200, {"delay_s": self.iam.delay_s})
        if path == "/moto-api/reset" and method == "POST":
            with self._lock:
                self._provisioned.clear()
                self._runtimes.clear()
                self._endpoints.clear()
            self.iam.reset()
            return None
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target == "SageMaker.UpdateEndpoint":
            return self._update_endpoint(environ, json.loads(_read_body(environ) or b"{}"))
        if target == "AmazonEC2ContainerRegistry_V20150921.GetDownloadUrlForLayer":
            return self._layer_download_url(environ)
        match = _INVOKE_ENDPOINT.match(path)
        if match and method == "POST":
            return self._invoke_endpoint(environ, unquote(match.group(1)))
        match = _PROVISIONED.match(path)
        if match:
            return self._provisioned_concurrency(environ, method, unquote(match.group(1)))
        match = _INVOKE.match(path)
        if match and method == "POST":
            return self._invoke(environ, unquote(match.group(1)))
        return None

    # -- ECR GetDownloadUrlForLayer (moto: NotImplementedError, an HTTP 500 retried) ---------
    def _layer_download_url(self, environ: dict[str, Any]) -> Response | None:
        """A repository the emulator does not hold (SageMaker's images are in AWS's registries) is
        ECR's RepositoryNotFoundException, as for BatchGetImage; moto answers the rest."""
        from moto.ecr.models import ecr_backends

        body = json.loads(_peek_body(environ) or b"{}")
        registry = str(body.get("registryId") or _account(environ))
        name = str(body.get("repositoryName", ""))
        if name in ecr_backends[registry][_region(environ)].repositories:
            return None
        return _json(400, {"__type": "RepositoryNotFoundException", "message": f"The repository with name '{name}' "
                           f"does not exist in the registry with id '{registry}'"})

    # -- SageMaker names unique per account and region --------------------------------------
    def _refuse_duplicate(self, environ: dict[str, Any]) -> Response | None:
        from moto.sagemaker.models import sagemaker_backends

        body = _peek_body(environ)
        member, attribute, kind, code, message = UNIQUE_NAMES[environ["HTTP_X_AMZ_TARGET"]]
        name = str(json.loads(body or b"{}").get(member, ""))
        account, region = _account(environ), _region(environ)
        if name not in getattr(sagemaker_backends[account][region], attribute):
            return None
        # SageMaker writes names in lower case in its ARNs.
        arn = f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"
        return _sagemaker_error(code, message.format(arn=arn))

    # -- IAM: changes reach the services after a delay ---------------------------------------
    def _role_change(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        """(action, role name) of an IAM request that changes a role or its policies."""
        if environ.get("REQUEST_METHOD") != "POST" or not self._is_iam(environ):
            return None
        form = parse_qs(_peek_body(environ).decode("utf-8", "replace"))
        action, role = (form.get("Action") or [""])[0], (form.get("RoleName") or [""])[0]
        return (action, role) if action in ROLE_CHANGES and role else None

    @staticmethod
    def _is_iam(environ: dict[str, Any]) -> bool:
        match = _CREDENTIAL_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return bool(match and match.group(1) == "iam")

    def _change_role(self, environ: dict[str, Any], start_response: Callable[..., Any],
                     change: tuple[str, str]) -> Iterable[bytes]:
        """Let moto make the change, and record it with the role as it was just before."""
        account, (_action, role) = _account(environ), change
        status: list[str] = []

        def capture(status_line: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status.append(status_line)
            return start_response(status_line, headers, *args)

        with self._iam_lock:  # one change at a time, so "before" is exactly the state it changed
            before = role_as_iam_holds_it(account, role)
            result = self.app(environ, capture)  # moto has handled the request when this returns
            if status and status[0].startswith("200"):
                self.iam.record(account, role, before)
        return result

    def role_view(self, account: str, role: str) -> RoleView | None:
        """The role as the services see it now (None: unknown to them)."""
        name = role_name_of(role)
        return self.iam.view(account, name, lambda: role_as_iam_holds_it(account, name))

    def _refuse_unassumable_role(self, environ: dict[str, Any]) -> Response | None:
        operation = _operation(environ)
        if operation not in ROLE_USERS:
            return None
        paths, (principal, code, message) = ROLE_USERS[operation]
        request = json.loads(_peek_body(environ) or b"{}")
        account = _account(environ)
        for arn in _members(request, paths):
            name = role_name_of(arn)
            if not self.iam.pending(account, name) and role_as_iam_holds_it(account, name) is None:
                continue  # a role this emulator never saw: left to moto, as before
            view = self.role_view(account, arn)
            if view is None or not trusts(view, principal):
                text = message.format(arn=arn)
                if operation.startswith("lambda:"):
                    return _lambda_error(400, code, text)
                return _sagemaker_error(code, text)
        return None

    # -- AWS's cross-member and cross-request rules ------------------------------------------
    def _refuse_against_aws_rules(self, environ: dict[str, Any]) -> Response | None:
        operation = _operation(environ)
        if not aws_rules.rules_for(operation):
            return None
        request = json.loads(_peek_body(environ) or b"{}")
        found = aws_rules.refusal(operation, request, _EmulatorWorld(_account(environ), _region(environ), self))
        if found is None:
            return None
        rule, message = found
        if operation.startswith("lambda:"):
            return _lambda_error(400, rule.error_code, message)
        return _sagemaker_error(rule.error_code, message)

    # -- SageMaker CreateModel: keep EnableNetworkIsolation ---------------------------------
    def _create_model(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from moto.sagemaker.models import sagemaker_backends

        body = _peek_body(environ)
        result = self.app(environ, start_response)  # Flask has handled the request when this returns
        request = json.loads(body or b"{}")
        model = sagemaker_backends[_account(environ)][_region(environ)]._models.get(request.get("ModelName"))
        if model is not None:
            model.enable_network_isolation = bool(request.get("EnableNetworkIsolation", False))
        return result

    # -- S3 CreateBucket: CreateBucketConfiguration.Tags (moto ignores them) ----------------
    def _create_bucket(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """AWS tags a bucket created with ``CreateBucketConfiguration.Tags`` in the creating call
        (API_CreateBucket); moto drops them: applied here once moto has created the bucket."""
        import xmltodict
        from moto.s3.models import s3_backends

        body = _peek_body(environ)
        result = self.app(environ, start_response)
        try:
            configuration = xmltodict.parse(body).get("CreateBucketConfiguration") or {} if body else {}
        except Exception:  # not XML: moto has answered it already
            return result
        tags = (configuration.get("Tags") or {}).get("Tag") or []
        tags = [tags] if isinstance(tags, dict) else tags
        bucket = unquote(environ.get("PATH_INFO", "").strip("/"))
        backend = s3_backends[_account(environ)]["aws"]
        if tags and bucket in backend.buckets:
            backend.put_bucket_tagging(bucket, {str(t["Key"]): str(t.get("Value") or "") for t in tags})
        return result

    # -- SageMaker UpdateEndpoint -----------------------------------------------------------
    def _update_endpoint(self, environ: dict[str, Any], request: dict[str, Any]) -> Response:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[_account(environ)][_region(environ)]
        name, config_name = request.get("EndpointName", ""), request.get("EndpointConfigName", "")
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            return _sagemaker_error("ValidationException", f"Could not find endpoint \"{name}\".")
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            return _sagemaker_error("ValidationException",
                                    f"Could not find endpoint configuration \"{config_name}\".")
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        endpoint.data_capture_config = config.data_capture_config
        endpoint.last_modified_time = datetime.now(UTC).isoformat()  # type: ignore[assignment]  # moto keeps it as text
        return _json(200, {"EndpointArn": endpoint.arn})

    # -- Lambda provisioned concurrency -----------------------------------------------------
    def _provisioned_concurrency(self, environ: dict[str, Any], method: str, function: str) -> Response:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        account, region = _account(environ), _region(environ)
        name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        if method == "GET" and query.get("List"):
            with self._lock:
                configs = [
                    {"FunctionArn": self._function_arn(account, region, name, qualifier),
                     **self._config_body(requested, modified)}
                    for (acc, reg, fn, qualifier), (requested, modified) in sorted(self._provisioned.items())
                    if (acc, reg, fn) == (account, region, name)
                ]
            return _json(200, {"ProvisionedConcurrencyConfigs": configs})
        qualifier = (query.get("Qualifier") or [""])[0]
        missing = self._check_qualifier(account, region, name, qualifier)
        if missing:
            return missing
        key = (account, region, name, qualifier)
        if method == "PUT":
            body = json.loads(_read_body(environ) or b"{}")
            requested = int(body.get("ProvisionedConcurrentExecutions", 0))
            if requested < 1:
                return _lambda_error(400, "InvalidParameterValueException",
                                     "ProvisionedConcurrentExecutions must be at least 1")
            modified = _now()
            with self._lock:
                self._provisioned[key] = (requested, modified)
            return _json(202, {"RequestedProvisionedConcurrentExecutions": requested,
                               "AllocatedProvisionedConcurrentExecutions": 0,
                               "AvailableProvisionedConcurrentExecutions": 0,
                               "Status": "IN_PROGRESS", "LastModified": modified})
        if method == "GET":
            with self._lock:
                found = self._provisioned.get(key)
            if found is None:
                return _lambda_error(404, "ProvisionedConcurrencyConfigNotFoundException",
                                     "No Provisioned Concurrency Config found for this function")
            return _json(200, self._config_body(*found))
        if method == "DELETE":
            with self._lock:
                self._provisioned.pop(key, None)
            return 204, {}, b""
        return _lambda_error(405, "InvalidRequestContentException", f"{method} is not supported")

    @staticmethod
    def _config_body(requested: int, modified: str) -> dict[str, Any]:
        return {"RequestedProvisionedConcurrentExecutions": requested,
                "AllocatedProvisionedConcurrentExecutions": requested,
                "AvailableProvisionedConcurrentExecutions": requested,
                "Status": "READY", "LastModified": modified}

    @staticmethod
    def _function_arn(account: str, region: str, name: str, qualifier: str) -> str:
        return f"arn:aws:lambda:{region}:{account}:function:{name}:{qualifier}"

    def _check_qualifier(self, account: str, region: str, name: str, qualifier: str) -> Response | None:
        from moto.awslambda.utils import get_backend  # the Docker-less backend when use_docker is off

        backend = get_backend(account, region)
        if not qualifier or qualifier == "$LATEST":
            return _lambda_error(400, "InvalidParameterValueException",
                                 "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
        try:
            function = backend.get_function(name, None)
        except Exception:  # moto raises its own not-found types
            function = None
        if function is None:
            with self._lock:  # a deleted function takes its configs with it, as in AWS
                for key in [k for k in self._provisioned if k[:3] == (account, region, name)]:
                    del self._provisioned[key]
            return _lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        try:
            backend.get_function(name, qualifier)
        except Exception:
            return _lambda_error(404, "ResourceNotFoundException",
                                 f"Function not found: {self._function_arn(account, region, name, qualifier)}")
        return None

    # -- Lambda Invoke through a registered local runtime ------------------------------------
    def _registry(self, method: str, environ: dict[str, Any]) -> Response:
        """Local function runtimes ({"function_name", "url"}) and endpoint servers ({"endpoint_name",
        "url"}) register here; a null url unregisters."""
        if method == "POST":
            body = json.loads(_read_body(environ) or b"{}")
            table, key = ((self._endpoints, body["endpoint_name"]) if "endpoint_name" in body
                          else (self._runtimes, body.get("function_name", "")))
            with self._lock:
                if body.get("url"):
                    table[key] = body["url"].rstrip("/")
                else:
                    table.pop(key, None)
        with self._lock:
            return _json(200, {"runtimes": dict(self._runtimes), "endpoints": dict(self._endpoints)})

    def _invoke_endpoint(self, environ: dict[str, Any], name: str) -> Response:
        from moto.sagemaker.models import sagemaker_backends

        account = _account(environ)
        if name not in sagemaker_backends[account][_region(environ)].endpoints:
            return _json(400, {"message": f"Endpoint {name} of account {account} not found."},
                         {"x-amzn-ErrorType": "ValidationError" + _RUNTIME_ERROR_SUFFIX})
        with self._lock:
            url = self._endpoints.get(name)
        if url is None:
            return _json(503, {"message": f"no local endpoint server serves {name}: start the data plane "
                                          "(python -m runner.local, or serve=true)"},
                         {"x-amzn-ErrorType": "ServiceUnavailable" + _RUNTIME_ERROR_SUFFIX})
        headers = {h: environ[f"HTTP_{h.upper().replace('-', '_')}"] for h in _RUNTIME_HEADERS
                   if f"HTTP_{h.upper().replace('-', '_')}" in environ}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        request = urllib.request.Request(f"{url}/endpoints/{name}/invocations", data=_read_body(environ),
                                         method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 (loopback)
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:  # the server's own runtime-API error shapes
            return error.code, dict(error.headers), error.read()
        except OSError as error:
            return _json(503, {"message": f"local endpoint server unreachable: {error}"},
                         {"x-amzn-ErrorType": "ServiceUnavailable" + _RUNTIME_ERROR_SUFFIX})

    def _invoke(self, environ: dict[str, Any], function: str) -> Response | None:
        name = function.split(":")[6] if function.startswith("arn:") else function.split(":")[0]
        with self._lock:
            url = self._runtimes.get(name)
        if url is None:
            return None
        payload = _read_body(environ)
        request = urllib.request.Request(f"{url}{INVOKE_PATH}", data=payload or b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=960) as answer:  # noqa: S310 (loopback)
                status, headers, body = answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, dict(error.headers), error.read()
        except OSError as error:
            return _lambda_error(502, "ServiceException", f"local function runtime unreachable: {error}")
        if status == 429:
            return _lambda_error(429, "TooManyRequestsException", "Rate Exceeded.")
        out = {"X-Amz-Executed-Version": headers.get("X-Amz-Executed-Version", "$LATEST")}
        if headers.get("X-Amz-Function-Error"):
            out["X-Amz-Function-Error"] = headers["X-Amz-Function-Error"]
        return 200, {"Content-Type": "application/json", **out}, body


def role_as_iam_holds_it(account: str, role: str) -> RoleView | None:
    """The role (a name or an ARN) as moto holds it now: its trust policy and its inline and
    attached (default version) policy documents; None when there is no such role."""
    from moto.iam.models import iam_backends

    try:
        found = iam_backends[account]["global"].get_role(role_name_of(role))
    except Exception:  # moto raises its own not-found type
        return None
    documents = list(found.policies.values()) + [
        version.document for policy in found.managed_policies.values()
        for version in policy.versions if version.is_default]
    return RoleView(found.assume_role_policy_document, tuple(documents))


def role_can(account: str, role_arn: str, action: str, view: RoleView | None = None) -> bool | None:
    """Whether the role's policies (inline and attached) allow ``action`` on some resource, with no
    Deny of it: what a service checks of an execution role before it accepts it (None: no such
    role, which the service's own check reports). ``view``: the role as the service sees it (IAM
    changes propagate: runner/targets/iam_propagation.py); by default, as moto holds it."""
    role = view if view is not None else role_as_iam_holds_it(account, role_arn)
    if role is None:
        return None
    return aws_rules.policy_documents_allow(role.documents, action)


class _EmulatorWorld:
    """What AWS's rules look up, read from moto's backends (a role as the services see it now)."""

    def __init__(self, account: str, region: str, gaps: GapFiller | None = None) -> None:
        self.account, self.region, self._gaps = account, region, gaps

    def role_allows(self, role_arn: str, action: str) -> bool | None:
        if self._gaps is None:
            return role_can(self.account, role_arn, action)
        view = self._gaps.role_view(self.account, role_arn)
        return None if view is None else role_can(self.account, role_arn, action, view)

    def model(self, name: str) -> dict[str, Any] | None:
        from moto.sagemaker.models import sagemaker_backends

        model = sagemaker_backends[self.account][self.region]._models.get(name)
        if model is None:
            return None
        return {"EnableNetworkIsolation": bool(getattr(model, "enable_network_isolation", False)),
                "VpcConfig": getattr(model, "vpc_config", None) or None}

    def vpc_of(self, resource_id: str) -> str | None:
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[self.account][self.region]
        try:
            if resource_id.startswith("subnet-"):
                return str(ec2.get_subnet(resource_id).vpc_id)
            if resource_id.startswith("sg-"):
                group = ec2.get_security_group_from_id(resource_id)
                return str(group.vpc_id) if group is not None else ""
        except Exception:  # moto's not-found error for a subnet
            return ""
        return None


def _operation(environ: dict[str, Any]) -> str:
    """``service:Operation`` of a request (the JSON protocols name it in X-Amz-Target; Lambda's
    rest-json CreateFunction is a POST to its functions collection)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("SageMaker."):
        return "sagemaker:" + target.removeprefix("SageMaker.")
    if environ.get("REQUEST_METHOD") == "POST" and _CREATE_FUNCTION.match(environ.get("PATH_INFO", "")):
        return "lambda:CreateFunction"
    if environ.get("REQUEST_METHOD") == "PUT" and _FUNCTION_CONFIGURATION.match(environ.get("PATH_INFO", "")):
        return "lambda:UpdateFunctionConfiguration"
    return ""


_CREDENTIAL_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[a-z0-9-]+/([a-z0-9-]+)/")


def _is_create_bucket(environ: dict[str, Any]) -> bool:
    """An S3 CreateBucket, path style (the emulator listens on an IP address): PUT /<bucket>."""
    match = _CREDENTIAL_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    path = environ.get("PATH_INFO", "").strip("/")
    return (environ.get("REQUEST_METHOD") == "PUT" and match is not None and match.group(1) == "s3"
            and bool(path) and "/" not in path and not environ.get("QUERY_STRING"))


def _members(request: Any, paths: Iterable[str]) -> list[str]:
    """The string values at dotted ``paths`` of a request (a list on the way is walked)."""
    found: list[str] = []
    for path in paths:
        values = [request]
        for key in path.split("."):
            values = [item for v in values
                      for item in (v if isinstance(v, list) else [v])]
            values = [v.get(key) for v in values if isinstance(v, dict) and v.get(key) is not None]
        found += [str(v) for v in values if isinstance(v, str) and v]
    return found


def _peek_body(environ: dict[str, Any]) -> bytes:
    """The request body, left in place for moto to read when the request goes on to it."""
    body = _read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ.get("wsgi.input")
    if stream is None or length <= 0:
        return b""
    return stream.read(length)


def _region(environ: dict[str, Any]) -> str:
    match = _CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "us-east-1"


def _account(environ: dict[str, Any]) -> str:
    from moto.core import DEFAULT_ACCOUNT_ID

    return DEFAULT_ACCOUNT_ID


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
            404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large", 415: "Unsupported Media Type",
            424: "Failed Dependency", 429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable"}
