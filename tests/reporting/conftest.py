"""Reporting fixtures: reference data (instruments for prices, FX rates) and named actors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from tests.reporting.helpers import AAPL, MSFT, SAP
from trades.models import FxRate, Instrument, Market


@pytest.fixture
def reference(db: None) -> None:
    """All reference data (produce_prices and the worked example through Kafka need it)."""
    call_command("load_reference_data", verbosity=0)


@pytest.fixture
def instruments(db: None) -> None:
    """Just the instruments the stage tests price (load_reference_data costs a second a test)."""
    markets = {
        mic: Market.objects.create(
            mic=mic, name=mic, country=country, timezone=zone, settlement_cycle=cycle,
            calendar_code=calendar,
        )
        for mic, country, zone, cycle, calendar in (
            ("XNAS", "US", "America/New_York", 1, "NYSE"),
            ("XETR", "DE", "Europe/Berlin", 2, "TARGET2"),
        )
    }  # fmt: skip
    for isin, symbol, currency, mic in (
        (AAPL, "AAPL", "USD", "XNAS"),
        (MSFT, "MSFT", "USD", "XNAS"),
        (SAP, "SAP", "EUR", "XETR"),
    ):
        Instrument.objects.create(
            isin=isin,
            symbol=symbol,
            name=symbol,
            currency=currency,
            asset_class="EQUITY",
            market=markets[mic],
            tick_size=Decimal("0.01"),
            csdr_class="LIQUID_SHARES",
            reference_price=Decimal("100"),
        )


def fx_rate(as_of: str, base: str, quote: str, rate: str) -> None:
    """Set a rate (the reference data's own start in 2025, so 2024 dates see only these)."""
    FxRate.objects.update_or_create(
        as_of=date.fromisoformat(as_of),
        base_currency=base,
        quote_currency=quote,
        defaults={"rate": Decimal(rate)},
    )


@pytest.fixture
def users(db: None) -> dict[str, User]:
    """viewer (viewer role) and outsider (no role); no passwords, tests log in directly."""
    viewer = User.objects.create(username="viewer")
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    return {"viewer": viewer, "outsider": User.objects.create(username="outsider")}
