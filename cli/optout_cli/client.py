"""The operator routes over HTTP, signed with SigV4; every failure becomes one CliError line."""

import json
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from optout_cli.errors import CliError
from optout_cli.target import Target

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class Api:
    def __init__(self, target: Target, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport)

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, expect: tuple[int, ...] = (200, 202)) -> Any:
        return self.call("POST", path, body, expect=expect)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 202),
    ) -> Any:
        url = self.target.base_url + path
        if params:
            url += "?" + str(httpx.QueryParams(params))
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        headers = {"content-type": "application/json"} if body is not None else {}
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(self.target.credentials, "execute-api", self.target.region).add_auth(signed)
        try:
            answer = self._http.request(method, url, content=data, headers=dict(signed.headers))
        except httpx.ConnectError:
            hint = " (is the local stack running? make run)" if self.target.local else ""
            raise CliError(f"cannot reach {self.target.base_url}{hint}") from None
        except httpx.TimeoutException:
            raise CliError(f"{self.target.base_url} did not answer in time") from None
        except httpx.HTTPError as error:
            raise CliError(f"{method} {path}: {type(error).__name__}") from None
        if answer.status_code not in expect:
            raise CliError(_explain(answer, path))
        try:
            return answer.json()
        except ValueError:
            raise CliError(
                f"{path}: the answer is not JSON (is this an optout-bridge API?)"
            ) from None

    def close(self) -> None:
        self._http.close()


def _explain(answer: httpx.Response, path: str) -> str:
    try:
        error = answer.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if answer.status_code == 403:
        return (
            f"{path}: refused (403): sign as the stack's OperatorRole (a profile that assumes it)"
            if not error
            else f"refused (403): {error.get('message', 'forbidden')}"
        )
    if not error:
        return f"{path}: HTTP {answer.status_code}"
    field = f" (field {error['field']})" if error.get("field") else ""
    return f"{error.get('code', 'error')}: {error.get('message', '')}{field}"
