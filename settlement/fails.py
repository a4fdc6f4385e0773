"""Settlement fails: aging buckets, CSDR-style daily cash penalties, the fails report (pure).

Day counting (one rule for aging and penalties). A fail's *failing days* are the business days
of its market from the intended settlement date (ISD) inclusive up to ``as_of`` inclusive, and
before the actual settlement date when it has settled. The ISD itself is day 1: an instruction
still unsettled at the end of its ISD is a one-day fail. So the age of an open fail equals the
number of penalty rows it has accrued, and the buckets are ``1``, ``2-3``, ``4-5``, ``>5``.

Penalty per failing day = failed value x daily rate, rounded half-even to the currency's minor
units (``quantize_money``: each daily penalty is a booked figure); penalties to date are the sum
of the rounded daily rows. Default daily rates follow the CSDR settlement-discipline
regulation (Delegated Regulation (EU) 2017/389, as first adopted), and are configuration:

* lack of securities, per instrument class, in basis points of the failed value per day:
  liquid shares 1.0, illiquid shares 0.5, SME-growth-market shares 0.25, sovereign bonds 0.10,
  other bonds 0.20, SME-growth-market bonds 0.15, anything else 0.5;
* lack of cash: the issuing central bank's overnight-credit rate / 365 per day, floored at
  zero. Only EUR has a default (2.40 %, the ECB marginal lending facility from 11 June 2025);
  any other currency must be configured, and a cash fail in an unconfigured currency is refused.

``failed_value`` is an input (reference price x failed quantity, or the failed cash amount);
CSDR revalues it daily, which a caller models by passing the day's value as of each run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from backoffice.money import quantize_money
from trades.calendar import MarketCalendar

ZERO = Decimal(0)
BASIS_POINT = Decimal("0.0001")


class InstrumentClass(StrEnum):
    LIQUID_SHARES = "LIQUID_SHARES"
    ILLIQUID_SHARES = "ILLIQUID_SHARES"
    SME_SHARES = "SME_SHARES"
    SOVEREIGN_BONDS = "SOVEREIGN_BONDS"
    OTHER_BONDS = "OTHER_BONDS"
    SME_BONDS = "SME_BONDS"
    OTHER = "OTHER"


class FailReason(StrEnum):
    LACK_OF_SECURITIES = "LACK_OF_SECURITIES"
    LACK_OF_CASH = "LACK_OF_CASH"


class AgeBucket(StrEnum):
    DAY_1 = "1"
    DAYS_2_3 = "2-3"
    DAYS_4_5 = "4-5"
    OVER_5 = ">5"


DEFAULT_SECURITIES_BP: Mapping[InstrumentClass, Decimal] = MappingProxyType(
    {
        InstrumentClass.LIQUID_SHARES: Decimal("1.0"),
        InstrumentClass.ILLIQUID_SHARES: Decimal("0.5"),
        InstrumentClass.SME_SHARES: Decimal("0.25"),
        InstrumentClass.SOVEREIGN_BONDS: Decimal("0.10"),
        InstrumentClass.OTHER_BONDS: Decimal("0.20"),
        InstrumentClass.SME_BONDS: Decimal("0.15"),
        InstrumentClass.OTHER: Decimal("0.5"),
    }
)
DEFAULT_CASH_ANNUAL_RATES: Mapping[str, Decimal] = MappingProxyType({"EUR": Decimal("0.0240")})


class MissingRateError(KeyError):
    """No penalty rate is configured for a fail's instrument class or cash currency."""


@dataclass(frozen=True)
class PenaltyRates:
    """Penalty configuration: securities rates in bp/day by class, cash as annual rates."""

    securities_bp: Mapping[InstrumentClass, Decimal] = field(
        default_factory=lambda: DEFAULT_SECURITIES_BP
    )
    cash_annual_rates: Mapping[str, Decimal] = field(
        default_factory=lambda: DEFAULT_CASH_ANNUAL_RATES
    )
    cash_day_count: int = 365

    def daily_rate(self, fail: Fail) -> Decimal:
        """The fraction of the failed value charged per failing day (never negative)."""
        if fail.reason is FailReason.LACK_OF_CASH:
            annual = self.cash_annual_rates.get(fail.currency)
            if annual is None:
                raise MissingRateError(f"no cash penalty rate configured for {fail.currency}")
            # CSDR floors the cash rate at zero when central-bank rates are negative.
            return max(annual, ZERO) / self.cash_day_count
        bp = self.securities_bp.get(fail.instrument_class)
        if bp is None:
            raise MissingRateError(f"no penalty rate configured for {fail.instrument_class}")
        if bp < ZERO:
            raise ValueError(f"negative penalty rate for {fail.instrument_class}")
        return bp * BASIS_POINT


@dataclass(frozen=True)
class Fail:
    fail_id: str
    instruction_id: str
    market: str  # the calendar the fail ages on
    account: str
    counterparty: str
    instrument: str
    instrument_class: InstrumentClass
    currency: str
    intended_settle_date: date
    failed_value: Decimal  # positive, in ``currency``
    reason: FailReason = FailReason.LACK_OF_SECURITIES
    settled_on: date | None = None  # actual settlement date, once it settles

    def __post_init__(self) -> None:
        object.__setattr__(self, "instrument_class", InstrumentClass(self.instrument_class))
        object.__setattr__(self, "reason", FailReason(self.reason))
        if not self.failed_value.is_finite() or self.failed_value < ZERO:
            raise ValueError(f"{self.fail_id}: failed_value must be >= 0")
        if self.settled_on is not None and self.settled_on < self.intended_settle_date:
            raise ValueError(f"{self.fail_id}: settled before its intended settlement date")


@dataclass(frozen=True)
class PenaltyAccrual:
    fail_id: str
    accrual_date: date
    day_number: int  # 1 on the first failing day (normally the ISD)
    currency: str
    failed_value: Decimal
    daily_rate: Decimal
    penalty: Decimal  # booked: quantize_money(failed_value x daily_rate)


@dataclass(frozen=True)
class BucketSummary:
    bucket: AgeBucket
    currency: str
    count: int
    failed_value: Decimal


@dataclass(frozen=True)
class FailsReport:
    as_of: date
    buckets: list[BucketSummary]  # every bucket for every currency with an open fail
    open_fails: int
    penalties_to_date: dict[str, Decimal]  # per currency, over all fails given (open or not)


def failing_days(fail: Fail, as_of: date, calendar: MarketCalendar) -> list[date]:
    """Business days on which ``fail`` was failing, ISD inclusive through ``as_of`` inclusive.

    Guarantee: every date is a business day of ``calendar``, in ascending order, on or after the
    ISD, on or before ``as_of`` and strictly before ``settled_on`` when set; empty when ``as_of``
    precedes the ISD.
    """
    if calendar.market != fail.market:
        raise ValueError(f"{fail.fail_id} ages on {fail.market}, not {calendar.market}")
    last = as_of
    if fail.settled_on is not None:
        last = min(last, fail.settled_on - timedelta(days=1))
    days = []
    current = fail.intended_settle_date
    while current <= last:
        if calendar.is_business_day(current):
            days.append(current)
        current += timedelta(days=1)
    return days


def fail_age(fail: Fail, as_of: date, calendar: MarketCalendar) -> int:
    """Business days the fail has been failing as of ``as_of`` (0 if not yet due or settled).

    Guarantee: equals ``len(failing_days(...))`` while the fail is open at ``as_of``, and 0 once
    it has settled on or before ``as_of`` (a settled fail is no longer aged).
    """
    if fail.settled_on is not None and fail.settled_on <= as_of:
        return 0
    return len(failing_days(fail, as_of, calendar))


def age_bucket(age: int) -> AgeBucket | None:
    """Bucket for an age in failing business days; ``None`` for 0 (not failing)."""
    if age <= 0:
        return None
    if age == 1:
        return AgeBucket.DAY_1
    if age <= 3:
        return AgeBucket.DAYS_2_3
    if age <= 5:
        return AgeBucket.DAYS_4_5
    return AgeBucket.OVER_5


def accrue(
    fail: Fail, as_of: date, calendar: MarketCalendar, rates: PenaltyRates
) -> list[PenaltyAccrual]:
    """Daily penalty rows for ``fail`` from its ISD through ``as_of`` (or until it settled).

    Guarantee: one row per failing day in date order, each penalty booked half-even at the
    currency's minor units; the rows are a pure function of the inputs, so re-running for the
    same ``as_of`` yields identical rows and a later ``as_of`` only appends rows (the database
    layer can upsert on (fail_id, accrual_date)).
    """
    rate = rates.daily_rate(fail)
    penalty = quantize_money(fail.failed_value * rate, fail.currency)
    return [
        PenaltyAccrual(
            fail_id=fail.fail_id,
            accrual_date=day,
            day_number=n,
            currency=fail.currency,
            failed_value=fail.failed_value,
            daily_rate=rate,
            penalty=penalty,
        )
        for n, day in enumerate(failing_days(fail, as_of, calendar), start=1)
    ]


def fails_report(
    fails: Iterable[Fail],
    as_of: date,
    calendars: Mapping[str, MarketCalendar],
    rates: PenaltyRates,
) -> FailsReport:
    """Aggregate fails as of ``as_of``: count and failed value per age bucket, penalties to date.

    Guarantee: buckets count only fails open at ``as_of`` (due and not yet settled), per
    currency (values in different currencies are never added together), listed for every bucket
    in bucket order even when empty; penalties to date sum ``accrue`` over every fail given.
    Each fail ages on the calendar of its market; an unknown market raises ``KeyError``.
    """
    counts: dict[tuple[str, AgeBucket], int] = defaultdict(int)
    values: dict[tuple[str, AgeBucket], Decimal] = defaultdict(Decimal)
    penalties: dict[str, Decimal] = defaultdict(Decimal)
    currencies: set[str] = set()
    open_fails = 0
    for fail in fails:
        calendar = calendars[fail.market]
        for row in accrue(fail, as_of, calendar, rates):
            penalties[row.currency] += row.penalty
        bucket = age_bucket(fail_age(fail, as_of, calendar))
        if bucket is None:
            continue
        open_fails += 1
        currencies.add(fail.currency)
        counts[fail.currency, bucket] += 1
        values[fail.currency, bucket] += fail.failed_value
    buckets = [
        BucketSummary(b, ccy, counts[ccy, b], values[ccy, b])
        for ccy in sorted(currencies)
        for b in AgeBucket
    ]
    return FailsReport(as_of, buckets, open_fails, dict(sorted(penalties.items())))
