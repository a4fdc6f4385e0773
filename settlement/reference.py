"""The slice of reference data settlement needs, as plain dicts, cached per process.

Built from ``trades.selectors.reference_snapshot`` and kept until reference data changes
(``trades.selectors.reference_cached``: one query to check), so the hot paths (custodian
statuses, statements) do not rebuild it per batch and still see an edit at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from settlement.policy import unit_price
from trades.calendar import MarketCalendar
from trades.selectors import reference_cache_clear, reference_cached, reference_snapshot


@dataclass(frozen=True)
class SecurityInfo:
    isin: str
    currency: str
    asset_class: str
    csdr_class: str
    market: str
    unit_price: Decimal  # reference price per unit of quantity (bonds: / 100)


@dataclass(frozen=True)
class SettlementReference:
    securities: Mapping[str, SecurityInfo]
    custodian_accounts: Mapping[str, str]  # account code -> account id at the custodian
    calendar_of_market: Mapping[str, str]  # MIC -> calendar code
    calendars: Mapping[str, MarketCalendar]  # calendar code -> calendar


def settlement_reference() -> SettlementReference:
    """Reference data for settlement, cached per process until it changes (one query to check:
    ``trades.selectors.reference_cached``)."""
    return reference_cached("settlement", _settlement_reference)


def _settlement_reference() -> SettlementReference:
    snapshot = reference_snapshot()
    return SettlementReference(
        securities=MappingProxyType(
            {
                isin: SecurityInfo(
                    isin,
                    i.currency,
                    i.asset_class,
                    i.csdr_class,
                    i.market.mic,
                    unit_price(i.asset_class, i.reference_price),
                )
                for isin, i in snapshot.instruments.items()
            }
        ),
        custodian_accounts=MappingProxyType(
            {code: a.custodian_account for code, a in snapshot.accounts.items()}
        ),
        calendar_of_market=MappingProxyType(
            {mic: m.calendar_code for mic, m in snapshot.markets.items()}
        ),
        calendars=MappingProxyType({c.market: c for c in snapshot.calendars.values()}),
    )


def reference_clear() -> None:
    """Forget the cached reference data (tests that change it behind the triggers' back)."""
    reference_cache_clear()
