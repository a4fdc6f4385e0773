"""The plain, frozen data the compliance rules read and write."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType


def _require_aware(name: str, value: datetime) -> None:
    # Comparing naive and aware datetimes raises deep inside a rule; refusing naive times at
    # construction points the caller at the real bug (a timestamp that lost its zone).
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _require_decimals(obj: object, names: Iterable[str]) -> None:
    # mypy cannot see values coming from the ORM or JSON; a float slipping in would make limit
    # checks inexact, so it is refused at the boundary. Non-finite values (NaN, Infinity) make
    # every comparison meaningless and are refused too.
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        if not isinstance(value, Decimal):
            raise TypeError(f"{name} must be Decimal, got {type(value).__name__}")
        if not value.is_finite():
            raise ValueError(f"{name} must be a finite Decimal, got {value}")


@dataclass(frozen=True)
class TradeFacts:
    """Everything the rules need to know about the trade version being checked.

    ``notional`` is in the trade ``currency``; ``notional_base`` is the same gross (unsigned)
    amount converted by the caller into ``base_currency``, the reporting currency in which all
    notional limits, daily totals and credit figures are expressed.
    ``settle_date_is_business_day`` is computed by the caller from the settlement market's
    calendar, so the rules need no calendar data. ``trade_time`` must be timezone-aware (UTC).
    """

    trade_id: str
    trade_version: int
    action: str
    account: str
    book: str
    counterparty: str
    instrument: str
    instrument_status: str
    side: str
    quantity: Decimal
    price: Decimal
    currency: str
    notional: Decimal
    base_currency: str
    notional_base: Decimal
    trade_time: datetime
    trade_date: date
    settle_date: date
    settle_date_is_business_day: bool

    def __post_init__(self) -> None:
        _require_decimals(self, ("quantity", "price", "notional", "notional_base"))
        _require_aware("trade_time", self.trade_time)


@dataclass(frozen=True)
class RecentTrade:
    """A trade of the same account and instrument close in time to the trade being checked."""

    trade_id: str
    side: str
    quantity: Decimal
    price: Decimal
    trade_time: datetime

    def __post_init__(self) -> None:
        _require_decimals(self, ("quantity", "price"))
        _require_aware("trade_time", self.trade_time)


@dataclass(frozen=True)
class Context:
    """Facts about the world around the trade, gathered by the caller at evaluation time.

    ``last_price`` is the instrument's last market price in the trade currency, or ``None``.
    ``account_day_notional_base`` is the account's gross notional already traded on the trade
    date in the base currency, EXCLUDING this trade and every earlier version of it, so that an
    amendment is not counted twice. ``counterparty_credit_limit`` is ``None`` when no limit is on
    file; ``counterparty_exposure`` is the exposure before this trade, in the base currency.
    ``recent_trades`` holds trades of the SAME account and instrument (the caller filters on
    both) covering at least the widest wash-trade / duplicate window either side of the trade;
    the caller may leave out those at another price than the trade's, which no window check
    matches.
    """

    restricted_instruments: frozenset[str] = frozenset()
    last_price: Decimal | None = None
    account_day_notional_base: Decimal = Decimal(0)
    counterparty_credit_limit: Decimal | None = None
    counterparty_exposure: Decimal = Decimal(0)
    recent_trades: tuple[RecentTrade, ...] = ()

    def __post_init__(self) -> None:
        _require_decimals(
            self,
            (
                "last_price",
                "account_day_notional_base",
                "counterparty_credit_limit",
                "counterparty_exposure",
            ),
        )


def _no_params() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class RuleConfig:
    """One rule row as configured in the database.

    ``threshold`` is the rule's numeric limit (its meaning per rule is in
    ``docs/compliance-rules.md``); ``params`` holds the rule's extra settings as strings, as
    edited in the admin. An empty scope set means "all"; non-empty scope sets are combined with
    AND, e.g. books {"EQ1"} and instruments {"X"} applies only to trades in X booked in EQ1.
    """

    code: str
    enabled: bool = True
    threshold: Decimal | None = None
    params: Mapping[str, str] = field(default_factory=_no_params)
    scope_books: frozenset[str] = frozenset()
    scope_accounts: frozenset[str] = frozenset()
    scope_instruments: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.threshold is not None and not isinstance(self.threshold, Decimal):
            raise TypeError(f"threshold must be Decimal, got {type(self.threshold).__name__}")


@dataclass(frozen=True)
class RuleOutcome:
    """The verdict of one rule on one trade; ``detail`` is a sentence fit for a blotter."""

    code: str
    passed: bool
    detail: str


class RuleConfigError(ValueError):
    """Raised when a rule is called with a configuration it cannot run with."""


RuleCheck = Callable[[TradeFacts, Context, RuleConfig], RuleOutcome]
