"""Where the CLI sends its calls: the local stack (`--base-url`) or a deployed stack
(`--stack-name`).

A deployed stack's IAM routes live at its `IamApiUrl` output, read with CloudFormation using
the caller's AWS credentials; every call is signed with SigV4 (service `execute-api`) with the
same credentials. Both work as the stack's OperatorRole (a profile whose `role_arn` is the
`OperatorRoleArn` output), which may describe its own stack and nothing else in CloudFormation;
a principal that merely may assume the role is refused by the admin routes. The
local stack accepts any signature (it has no IAM), so on a loopback URL the CLI signs with
placeholder credentials when the caller has none.
"""

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from optout_cli.errors import CliError

LOCAL_CREDENTIALS = Credentials("local-operator", "local-operator-secret")  # local stack only
URL_OUTPUT = "IamApiUrl"
# What works on AWS: sign as the role itself (it may read its own stack's outputs and call the
# admin routes); the CLI assumes no role, and the admin routes refuse any other principal.
AS_OPERATOR = (
    "use a profile that assumes the stack's OperatorRole (AWS_PROFILE or --profile; in "
    "~/.aws/config, role_arn = the stack's OperatorRoleArn output)"
)


@dataclass(frozen=True)
class Target:
    base_url: str
    region: str
    credentials: Credentials

    @property
    def local(self) -> bool:
        return is_loopback(self.base_url)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(url: str | None, stack: str | None, region: str | None, profile: str | None) -> Target:
    if url and stack:
        raise CliError("give --base-url or --stack-name, not both")
    if not url and not stack:
        raise CliError(
            "say where: --base-url http://127.0.0.1:3000 (local) or --stack-name NAME --region R"
        )
    session = _session(profile, region)
    region_name = session.region_name or region or "us-east-1"
    if url:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise CliError(f"--base-url must be an http(s) URL, not {url!r}")
        if not is_loopback(url) and urlsplit(url).scheme != "https":
            raise CliError("--base-url must use https unless it is the local stack (loopback)")
        credentials = _credentials(session, allow_local=is_loopback(url))
        return Target(url.rstrip("/"), region_name, credentials)
    assert stack is not None
    if not session.region_name:
        raise CliError("which region is the stack in? pass --region (or set AWS_REGION)")
    credentials = _credentials(session, allow_local=False)
    return Target(_stack_url(session, stack), region_name, credentials)


def _session(profile: str | None, region: str | None) -> Any:
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as error:  # an unknown profile, a broken config file
        raise CliError(f"AWS configuration: {error}") from None


def _credentials(session: Any, allow_local: bool) -> Credentials:
    try:
        found = session.get_credentials()
    except BotoCoreError as error:
        raise CliError(f"AWS credentials: {error}") from None
    if found is None:
        if allow_local:
            return LOCAL_CREDENTIALS
        raise CliError(f"no AWS credentials found: {AS_OPERATOR}")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def _stack_url(session: Any, stack: str) -> str:
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except NoCredentialsError:
        raise CliError(f"no AWS credentials found: {AS_OPERATOR}") from None
    except NoRegionError:
        raise CliError("which region is the stack in? pass --region") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ValidationError":
            raise CliError(f"no stack named {stack!r} in {session.region_name}") from None
        hint = f": {AS_OPERATOR}" if "AccessDenied" in code else ""
        raise CliError(f"CloudFormation refused: {code or error}{hint}") from None
    except BotoCoreError as error:
        raise CliError(f"cannot reach CloudFormation: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if URL_OUTPUT not in outputs:
        raise CliError(f"stack {stack!r} has no {URL_OUTPUT} output: is it an optout-bridge stack?")
    return str(outputs[URL_OUTPUT]).rstrip("/")
