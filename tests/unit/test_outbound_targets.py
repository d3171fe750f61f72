"""Spec for the outbound-target policy against server-side request forgery (issue 17, item 5)."""

from __future__ import annotations

import pytest

from services.notification.adapters.targets import BlockedTarget, OutboundPolicy


class TestWhatNotificationConnectsTo:
    @pytest.mark.parametrize(
        "host",
        [
            "127.0.0.1",  # loopback (a tenant's "SMTP host" scanning the service's own machine)
            "localhost",  # resolves to loopback
            "10.0.0.5",
            "192.168.1.10",
            "172.16.0.1",  # private ranges
            "169.254.169.254",  # the cloud metadata address (link-local)
            "100.64.0.1",  # carrier-grade NAT
            "0.0.0.0",  # noqa: S104 (a target, not a bind)
            "::1",
            "fd00:ec2::254",  # IPv6 unique-local: AWS's metadata over IPv6
            "[::1]",
        ],
    )
    async def test_refuses_anything_not_public(self, host: str) -> None:
        with pytest.raises(BlockedTarget, match="is not a public address"):
            await OutboundPolicy().check_host(host)

    async def test_takes_a_public_address(self) -> None:
        await OutboundPolicy().check_host("8.8.8.8")

    async def test_a_url_is_judged_by_its_host(self) -> None:
        with pytest.raises(BlockedTarget):
            await OutboundPolicy().check_url("http://169.254.169.254/latest/meta-data/iam/")
        await OutboundPolicy().check_url("https://1.1.1.1/hook")

    async def test_the_operator_may_allow_a_named_host_for_local_development(self) -> None:
        policy = OutboundPolicy(frozenset({"127.0.0.1", "localhost"}))
        await policy.check_host("127.0.0.1")
        await policy.check_url("http://localhost:8025/sms")
        with pytest.raises(BlockedTarget):
            await policy.check_host("10.0.0.5")  # only what is named

    async def test_a_name_that_does_not_resolve_is_refused(self) -> None:
        with pytest.raises(BlockedTarget, match="does not resolve"):
            await OutboundPolicy().check_host("no-such-host.invalid")

    @pytest.mark.parametrize("url", ["https://-4]x", "http://[::1", "http://host:port/"])
    async def test_a_url_that_cannot_be_read_is_refused(self, url: str) -> None:
        with pytest.raises(BlockedTarget):
            await OutboundPolicy().check_url(url)

    @pytest.mark.parametrize("url", ["http://K\U00104767\U000cb562\u00c4\u0010\u00de", "http://" + "a" * 70 + ".com"])
    async def test_a_host_no_resolver_can_encode_is_refused_not_an_error(self, url: str) -> None:  # the fuzz tier
        with pytest.raises(BlockedTarget, match="does not resolve"):
            await OutboundPolicy().check_url(url)
