"""End-to-end tenants have a GB VAT rate: invoicing asks tax-currency and holds what it cannot tax."""

from __future__ import annotations

import pytest

from tests.support.platform import Platform, Tenant


@pytest.fixture
async def tenant(platform: Platform) -> Tenant:
    """A fresh sandbox tenant (client in region GB) with VAT 20 % in tax-currency."""
    t = await platform.sandbox_tenant()
    await platform.tax_rate(t, region="GB", name="VAT", rate="20")
    return t
