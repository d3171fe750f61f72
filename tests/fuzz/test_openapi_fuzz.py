"""The fuzz tier (issue 17): every service's OpenAPI document, driven by schemathesis against the running stack
with a real token and a seeded tenant. The bar is zero server errors: whatever a caller sends, a service answers
it (2xx, or a 4xx that says what is wrong), never 5xx; and every answer is one the document declares — its
status code, its media type and its body's schema (the error answers are completed by shared/openapi.py).

`FUZZ_EXAMPLES` examples per operation (2 in `make test`, bounded to fit CI; `make verify` runs 50). A failure
prints the operation, the status and the request that caused it, to reproduce with curl.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from shared.services import SERVICES, ServiceSpec
from tests.support.platform import Platform, Tenant

CONFORMANCE = [checks.status_code_conformance, checks.content_type_conformance, checks.response_schema_conformance]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))
SKIPPED = {
    # waits for the whole platform to settle; a random far-future time makes every example wait, and the route is
    # specified on its own (tests/integration/test_test_clock_settles.py)
    ("POST", "/v1/test-clock/advance"),
}


def operations(doc: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(doc)
    out = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"the OpenAPI document has an operation schemathesis cannot read: {result.err()}")
        op = result.ok()
        if (op.method.upper(), op.path) in SKIPPED or op.path.startswith(("/health", "/metrics", "/asyncapi")):
            continue
        out.append(op)
    return out


def misanswered(base_url: str, op: Any, headers: dict[str, str]) -> list[str]:
    """The requests of ``op`` (EXAMPLES of them, generated from its schema) that the service answered 5xx or
    otherwise than its document says."""
    found: list[str] = []
    # a fresh connection per request: a pooled one the server has just closed for idleness would read as a reset
    with httpx.Client(timeout=30.0, limits=httpx.Limits(max_keepalive_connections=0)) as http:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests every run: a failure reproduces
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(op.as_strategy())
        def each(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
            kwargs.pop("cookies", None)
            body = kwargs.pop("json", None)
            try:
                response = http.request(**kwargs, json=body) if body is not None else http.request(**kwargs)
            except httpx.TransportError as dropped:  # a service that drops the connection fails like a 5xx
                curl = case.as_curl_command(headers=headers)
                found.append(f"{op.method.upper()} {op.path} -> {dropped!r}\n    {curl}")
                return
            if response.status_code >= 500:
                found.append(
                    f"{op.method.upper()} {op.path} -> {response.status_code}: {response.text[:200]!r}\n"
                    f"    {case.as_curl_command(headers=headers)}"
                )
                return
            try:  # the answer is one the document declares: its status, its media type, its schema
                case.validate_response(response, checks=CONFORMANCE, headers=headers)
            except FailureGroup as unlike:  # one sub-exception per check that failed
                what = "; ".join(" ".join(str(e).split())[:160] for e in unlike.exceptions)
                found.append(
                    f"{op.method.upper()} {op.path} -> {response.status_code} not as documented: {what}\n"
                    f"    {case.as_curl_command(headers=headers)}"
                )

        each()
    return found


@pytest.fixture(scope="module")
async def seeded(platform: Platform) -> Tenant:
    """A tenant with a client, a service, a plan and an assignment, a tax rate and a billing manager."""
    tenant = await platform.sandbox_tenant()
    await platform.tax_rate(tenant, region="GB", name="VAT", rate="20")
    await platform.add_user(tenant, "billing_manager", user_ref="fuzz.manager")
    return tenant


@pytest.mark.parametrize("spec", SERVICES, ids=[s.name for s in SERVICES])
async def test_every_operation_answers_as_documented_and_never_a_server_error(
    platform: Platform, seeded: Tenant, spec: ServiceSpec
) -> None:
    base_url = platform.stack.url(spec)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        doc = (await api.get("/openapi.json")).json()
    headers = {"Authorization": f"Bearer {seeded.token}"}
    failures = []
    for op in operations(doc):  # in a thread: the requests are synchronous, the session's loop carries on
        failures += await asyncio.to_thread(misanswered, base_url, op, headers)
    summary = f"{len(failures)} request(s) answered 5xx or not as documented by {spec.name}:\n"
    assert not failures, summary + "\n".join(failures[:20])
