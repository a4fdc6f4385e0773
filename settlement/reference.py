"""The slice of reference data settlement needs, as plain dicts, cached per process briefly.

Built from ``trades.selectors.reference_snapshot`` (seven queries); the hot paths (custodian
statuses, statements) read it at most once a minute instead of once a batch. Reference data is
loaded at deployment and rarely changes; ``reference_clear()`` forgets the cache (tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from settlement.policy import unit_price
from trades.calendar import MarketCalendar
from trades.selectors import reference_snapshot

MAX_AGE_SECONDS = 60.0


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


_lock = threading.Lock()
_cached: tuple[float, SettlementReference] | None = None


def settlement_reference() -> SettlementReference:
    """Reference data for settlement, at most ``MAX_AGE_SECONDS`` old."""
    global _cached
    with _lock:
        if _cached is not None and time.monotonic() - _cached[0] < MAX_AGE_SECONDS:
            return _cached[1]
        snapshot = reference_snapshot()
        reference = SettlementReference(
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
        _cached = (time.monotonic(), reference)
        return reference


def reference_clear() -> None:
    global _cached
    with _lock:
        _cached = None
