"""Capture's pure logic: enrichment, consideration and the version decision."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from trades.calendar import MarketCalendar
from trades.capture import (
    AccountRef,
    CaptureReference,
    CaptureRejected,
    Decision,
    Head,
    InstrumentRef,
    SsiRef,
    decide,
    enrich,
)

NYSE = MarketCalendar("NYSE", frozenset({date(2026, 11, 26)}), settlement_cycle=1)
REF = CaptureReference(
    instruments={
        "US0378331005": InstrumentRef(
            "US0378331005", "AAPL", "USD", "EQUITY", "LIQUID_SHARES", "XNAS", "ACTIVE"
        ),
    },
    accounts={
        "ACC-0001": AccountRef("ACC-0001", "EQ-US", "USD", "FIFO", "ACTIVE"),
        "ACC-0099": AccountRef("ACC-0099", "EQ-US", "USD", "FIFO", "CLOSED"),
    },
    counterparties=frozenset({"CP-GSCO"}),
    ssis={("CP-GSCO", "XNAS", "USD"): SsiRef("DVP", "IRVTUS3N", "SAFE-1", "CASH-1")},
    calendars={"XNAS": NYSE},
)


def trade(**overrides):
    base = {
        "trade_id": "T1",
        "trade_version": 1,
        "action": "NEW",
        "account": "ACC-0001",
        "counterparty": "CP-GSCO",
        "instrument": "US0378331005",
        "side": "BUY",
        "quantity": "100",
        "price": "187.255",
        "currency": "USD",
        "trade_date": "2026-11-25",
        "trade_time": "2026-11-25T15:00:00Z",
        "venue": "XNAS",
        "trader": "jdoe",
        "fees": "1.005",
    }
    return {**base, **overrides}


def test_it_enriches_a_trade_and_computes_consideration():
    t = enrich(trade(), REF)
    assert (t.book, t.pnl_method, t.market, t.symbol) == ("EQ-US", "FIFO", "XNAS", "AAPL")
    assert t.gross_amount == Decimal("18725.50")  # 18725.5 exactly
    assert t.fees == Decimal("1.00")  # 1.005 rounds half to even
    assert t.net_amount == Decimal("18726.50")  # a buyer pays the fees
    assert t.ssi is not None
    assert (t.payment_type, t.ssi.custodian_bic) == ("DVP", "IRVTUS3N")


def test_a_sell_receives_gross_minus_fees():
    assert enrich(trade(side="SELL", fees="2.50"), REF).net_amount == Decimal("18723.00")


def test_the_settle_date_skips_the_thanksgiving_holiday():
    t = enrich(trade(), REF)  # Wednesday 25 Nov 2026, T+1 would be Thanksgiving
    assert (t.settle_date, t.settle_date_computed) == (date(2026, 11, 27), True)


def test_a_given_settle_date_is_kept():
    t = enrich(trade(settle_date="2026-11-30"), REF)
    assert (t.settle_date, t.settle_date_computed) == (date(2026, 11, 30), False)


@pytest.mark.parametrize(
    ("overrides", "error_class", "reason"),
    [
        ({"instrument": "US5949181045"}, "UnknownInstrument", "unknown instrument 'US5949181045'"),
        ({"account": "ACC-7777"}, "UnknownAccount", "unknown account 'ACC-7777'"),
        ({"account": "ACC-0099"}, "InactiveAccount", "account ACC-0099 is closed"),
        ({"counterparty": "CP-NOPE"}, "UnknownCounterparty", "unknown counterparty 'CP-NOPE'"),
        (
            {"currency": "EUR"},
            "CurrencyMismatch",
            "trade currency EUR differs from US0378331005's currency USD",
        ),
        (
            {"settle_date": "2026-11-24"},
            "InvalidDates",
            "settle_date 2026-11-24 is before trade_date 2026-11-25",
        ),
        (
            {"trade_time": "2026-11-24T15:00:00Z"},
            "InvalidDates",
            "trade_time 2026-11-24T15:00:00Z is not on trade_date 2026-11-25",
        ),
    ],
)
def test_it_rejects_a_trade_it_cannot_capture(overrides, error_class, reason):
    with pytest.raises(CaptureRejected) as caught:
        enrich(trade(**overrides), REF)
    assert (caught.value.error_class, caught.value.reason) == (error_class, reason)


def test_version_decisions():
    v1 = enrich(trade(), REF)
    v2 = enrich(trade(trade_version=2, action="AMEND", quantity="150"), REF)
    cancel3 = enrich(trade(trade_version=3, action="CANCEL"), REF)
    v4 = enrich(trade(trade_version=4, action="AMEND"), REF)
    head1 = Head(1, False, v1.input_hash)
    hashes = {1: v1.input_hash}
    assert decide(None, v1, {}) == (Decision.APPLY, "")
    assert decide(head1, v2, hashes) == (Decision.APPLY, "")
    assert decide(head1, v1, hashes) == (
        Decision.DUPLICATE,
        "version 1 was already captured with identical content",
    )
    conflicting = enrich(trade(quantity="101"), REF)
    assert decide(head1, conflicting, hashes) == (
        Decision.CONFLICT,
        "version 1 was already captured with different content",
    )
    head2 = Head(2, False, v2.input_hash)
    assert decide(head2, v1, {2: v2.input_hash}) == (
        Decision.STALE,
        "version 1 is older than the current version 2",
    )
    assert decide(Head(3, True, cancel3.input_hash), v4, {}) == (
        Decision.CANCELLED,
        "the trade was cancelled at version 3",
    )
