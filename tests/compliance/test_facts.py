"""Fact building and the running ledger: pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from compliance.facts import (
    BASE_CURRENCY,
    FX_RATE_MISSING,
    UNCOVERED_DATE,
    UNKNOWN_INSTRUMENT,
    UNKNOWN_MARKET,
    FactsError,
    Reference,
    base_rate,
    trade_facts,
)
from compliance.ledger import LastPrice, Ledger, TradeState
from compliance.rules import RecentTrade
from tests.compliance.conftest import AAPL, SAP, captured, sap
from trades.calendar import CALENDAR_NOT_COVERED, MarketCalendar

DAY = date(2026, 11, 25)
NYSE = MarketCalendar("NYSE", frozenset({date(2026, 11, 26)}), settlement_cycle=1)
TARGET2 = MarketCalendar("TARGET2", frozenset(), settlement_cycle=2)
RATES = {("EUR", "USD"): Decimal("1.05"), ("USD", "JPY"): Decimal("150")}
REFERENCE = Reference(
    instrument_status={AAPL: "ACTIVE", SAP: "SUSPENDED"},
    calendars={"XNAS": NYSE, "XETR": TARGET2},
    credit_limits={"CP-NRTH": Decimal("250000000")},
    fx={DAY: RATES},
)


def at(minute: int) -> datetime:
    return datetime(2026, 11, 25, 15, minute, tzinfo=UTC)


def state(trade_id: str = "T1", **overrides) -> TradeState:
    base = TradeState(
        trade_id=trade_id,
        version=1,
        action="NEW",
        account="ACC-0001",
        book="EQ-US",
        counterparty="CP-NRTH",
        instrument=AAPL,
        side="BUY",
        quantity=Decimal(100),
        price=Decimal(100),
        currency="USD",
        notional_base=Decimal(10000),
        trade_time=at(0),
        trade_date=DAY,
        settle_date=date(2026, 11, 27),
        status="VALIDATED",
        validated_version=1,
        validated_counterparty="CP-NRTH",
        validated_notional_base=Decimal(10000),
        validated_settle_date=date(2026, 11, 27),
    )
    return replace(base, **overrides)


# -- facts ---------------------------------------------------------------------------------


def test_a_usd_trade_has_its_gross_amount_as_base_notional():
    facts = trade_facts(captured(quantity="100", price="231.40"), REFERENCE)

    assert (facts.notional, facts.notional_base) == (Decimal("23140.00"), Decimal("23140.00"))
    assert facts.base_currency == BASE_CURRENCY == "USD"
    assert facts.trade_time == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert facts.instrument_status == "ACTIVE"
    assert facts.settle_date_is_business_day


def test_a_euro_trade_is_converted_with_the_direct_rate_at_full_precision():
    facts = trade_facts(sap(quantity="3", price="100.01"), REFERENCE)

    assert facts.notional == Decimal("300.03")
    assert facts.notional_base == Decimal("315.0315")  # 300.03 x 1.05, not rounded
    assert facts.instrument_status == "SUSPENDED"


def test_the_reverse_pair_is_inverted_at_the_rate_scale():
    assert base_rate(RATES, "JPY", DAY) == Decimal("0.0066666667")
    assert base_rate(RATES, "USD", DAY) == Decimal(1)


def test_a_missing_rate_says_which_pair_and_date():
    with pytest.raises(FactsError) as raised:
        base_rate(RATES, "CHF", DAY)
    assert raised.value.error_class == FX_RATE_MISSING
    assert raised.value.reason == (
        "no FX rate CHF/USD (or USD/CHF) on or before 2026-11-25 to convert the notional into USD"
    )


def test_a_sell_with_a_negative_gross_amount_has_an_unsigned_notional():
    facts = trade_facts(captured(side="SELL", gross_amount="-23140.00"), REFERENCE)
    assert facts.notional_base == Decimal("23140.00")


def test_a_holiday_settle_date_is_not_a_business_day():
    assert not trade_facts(
        captured(settle_date="2026-11-26"), REFERENCE
    ).settle_date_is_business_day
    assert not trade_facts(
        captured(settle_date="2026-11-28"), REFERENCE
    ).settle_date_is_business_day


@pytest.mark.parametrize(
    ("payload", "error_class"),
    [
        (captured(instrument="US0000000002"), UNKNOWN_INSTRUMENT),
        (captured(market="XLON"), UNKNOWN_MARKET),
        (sap(trade_date="2026-11-24"), FX_RATE_MISSING),
        (sap(currency="CHF"), FX_RATE_MISSING),
    ],
)
def test_unresolvable_reference_data_is_a_facts_error(payload, error_class):
    with pytest.raises(FactsError) as raised:
        trade_facts(payload, REFERENCE)
    assert raised.value.error_class == error_class


def test_a_settle_date_past_the_loaded_holidays_is_a_facts_error_saying_what_to_load():
    covered = MarketCalendar(
        "NYSE", NYSE.holidays, settlement_cycle=1, covers=(date(2025, 1, 1), date(2028, 12, 31))
    )
    reference = replace(REFERENCE, calendars={"XNAS": covered})

    with pytest.raises(FactsError) as raised:
        trade_facts(captured(settle_date="2029-01-02"), reference)

    assert raised.value.error_class == UNCOVERED_DATE == "CalendarNotCovered"
    assert raised.value.reason == CALENDAR_NOT_COVERED.format(
        calendar="NYSE", first="2025-01-01", last="2028-12-31", day="2029-01-02", year=2029
    )


# -- ledger --------------------------------------------------------------------------------


def test_the_day_total_leaves_out_the_trade_being_checked():
    ledger = Ledger(
        states=[state("T1"), state("T2", notional_base=Decimal(5000))],
        day_totals={("ACC-0001", DAY): Decimal(70000)},
    )

    assert ledger.day_notional("T1", "ACC-0001", DAY) == Decimal(75000)
    assert ledger.day_notional("T9", "ACC-0001", DAY) == Decimal(85000)
    assert ledger.day_notional("T1", "ACC-0002", DAY) == Decimal(0)


def test_an_amendment_replaces_the_old_contribution_instead_of_adding_to_it():
    ledger = Ledger(states=[state("T1")])
    ledger.put(state("T1", version=2, notional_base=Decimal(4000), status="WAITING"))

    assert ledger.day_notional("T9", "ACC-0001", DAY) == Decimal(4000)
    # the validated version stays in force for the counterparty until a decision
    assert ledger.exposure("T9", "CP-NRTH", DAY) == Decimal(10000)


def test_rejected_and_cancelled_trades_count_for_nothing_but_what_stays_in_force():
    never_validated = state(
        "T1",
        status="REJECTED",
        validated_version=None,
        validated_notional_base=None,
        validated_settle_date=None,
    )
    amend_rejected = state("T2", version=2, status="REJECTED", notional_base=Decimal(99999))
    cancelled = state("T3", status="CANCELLED")
    ledger = Ledger(states=[never_validated, amend_rejected, cancelled])

    assert ledger.day_notional("T9", "ACC-0001", DAY) == Decimal(10000)  # T2's v1
    assert ledger.exposure("T9", "CP-NRTH", DAY) == Decimal(10000)
    assert ledger.recent("T9", "ACC-0001", AAPL, at(0), timedelta(minutes=5)) == ()


def test_exposure_counts_only_trades_unsettled_on_the_trade_date_and_not_the_trade_itself():
    ledger = Ledger(
        states=[state("T1")],
        exposures=[("CP-NRTH", date(2026, 11, 24), Decimal(500)), ("CP-NRTH", DAY, Decimal(700))],
    )

    assert ledger.exposure("T9", "CP-NRTH", DAY) == Decimal(10700)
    assert ledger.exposure("T1", "CP-NRTH", DAY) == Decimal(700)
    assert ledger.exposure("T9", "CP-NRTH", date(2026, 11, 30)) == Decimal(0)


def test_recent_trades_come_from_the_database_and_the_batch_within_the_window():
    older = RecentTrade("T0", "SELL", Decimal(1), Decimal(100), at(0))
    ledger = Ledger(recent=[("ACC-0001", AAPL, older)])
    ledger.put(state("T1", trade_time=at(4)))
    ledger.put(state("T2", trade_time=at(20)))

    found = ledger.recent("T3", "ACC-0001", AAPL, at(5), timedelta(minutes=5))
    assert [t.trade_id for t in found] == ["T0", "T1"]
    assert ledger.recent("T1", "ACC-0001", AAPL, at(5), timedelta(minutes=5))[0].trade_id == "T0"


def test_the_last_price_keeps_the_latest_observation_in_the_trade_currency():
    ledger = Ledger(last_prices={AAPL: LastPrice(Decimal(100), "USD", at(10))})

    assert not ledger.price_seen(AAPL, LastPrice(Decimal(90), "USD", at(5)))
    assert ledger.last_price(AAPL, "USD") == Decimal(100)
    assert ledger.price_seen(AAPL, LastPrice(Decimal(101), "USD", at(10)))
    assert ledger.last_price(AAPL, "USD") == Decimal(101)
    assert ledger.last_price(AAPL, "EUR") is None
