"""Reconciliation against a hand-worked statement: every category, tolerance edges, idempotence.

difference = internal - custodian; internal books are trade-date, the custodian settle-date.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from settlement.netting import Obligation, PaymentType, Side, net
from settlement.recon import (
    BreakCategory,
    BreakFinding,
    BreakKey,
    CashLine,
    Holdings,
    InstrumentRef,
    PendingMovement,
    PositionLine,
    Tolerance,
    Tolerances,
    auto_resolved,
    movements_from_instructions,
    reconcile,
)

D = Decimal
AS_OF = date(2026, 11, 27)
INSTRUMENTS = {
    "AAPL": InstrumentRef("AAPL", "EQUITY", "USD", D("200.00")),
    "MSFT": InstrumentRef("MSFT", "EQUITY", "USD", D("400.00")),
    "SAP": InstrumentRef("SAP", "EQUITY", "EUR", D("150.00")),
    "NVDA": InstrumentRef("NVDA", "EQUITY", "USD", D("180.00")),
    "GOOG": InstrumentRef("GOOG", "EQUITY", "USD", D("300.00")),
    "AMZN": InstrumentRef("AMZN", "EQUITY", "USD", D("230.00")),
    "UST30": InstrumentRef("UST30", "BOND", "USD", D("0.98")),
}
TOLERANCES = Tolerances(
    by_asset_class={
        "EQUITY": Tolerance(quantity_abs=D("0"), valuation_rel=D("0.01")),
        "BOND": Tolerance(quantity_abs=D("0.5"), valuation_rel=D("0.005")),
        "CASH": Tolerance(cash_abs=D("0.01")),
    }
)


def pos(instrument, qty, mv=None, account="ACC1"):
    return PositionLine(account, instrument, D(qty), None if mv is None else D(mv))


def cash(ccy, amount, account="ACC1"):
    return CashLine(account, ccy, D(amount))


def run(internal_pos=(), custodian_pos=(), internal_cash=(), custodian_cash=(), **kwargs):
    return reconcile(
        Holdings(AS_OF, tuple(internal_pos), tuple(internal_cash)),
        Holdings(AS_OF, tuple(custodian_pos), tuple(custodian_cash)),
        INSTRUMENTS,
        TOLERANCES,
        **kwargs,
    )


def finding(asset, category, iv, cv, diff, amount, ccy, account="ACC1"):
    return BreakFinding(
        AS_OF,
        account,
        asset,
        category,
        None if iv is None else D(iv),
        None if cv is None else D(cv),
        D(diff),
        None if amount is None else D(amount),
        ccy,
    )


PENDING = [
    # GOOG +200 bought on T-1, settles Mon 30 Nov (as_of + 3 calendar days): internal already
    # shows it, the custodian does not yet.
    PendingMovement("ACC1", "GOOG", date(2026, 11, 30), D("200")),
    # The EUR cash leg of the SAP purchase, settling 1 Dec (as_of + 4: beyond the 3-day lag).
    PendingMovement("ACC1", "EUR", date(2026, 12, 1), D("-45000.00")),
    # A USD payment settling today (late) — within the lag.
    PendingMovement("ACC1", "USD", AS_OF, D("-60000.00")),
]


def test_hand_worked_statement():
    # ACC1 as of Fri 27 Nov 2026                   internal   custodian   -> finding
    #   AAPL  1,000 @ 200.00, MV 200,000.00         1,000      1,000      -> none
    #   MSFT  @ 400.00                                500        480      -> QUANTITY +20,
    #                                                                        8,000.00 USD
    #   SAP   @ 150.00 EUR                            300         --      -> MISSING_CUSTODIAN
    #                                                                        +300, 45,000.00 EUR
    #   NVDA  @ 180.00                                 --         50      -> MISSING_INTERNAL
    #                                                                        -50, -9,000.00 USD
    #   GOOG  @ 300.00                              1,200      1,000      -> TIMING +200
    #                                                   (pending +200 settles 30 Nov, in lag)
    #   AMZN  100 @ 230.00 = 23,000.00 vs MV 23,300.00 -> |-300| > 1% x 23,300 = 233
    #                                                 -> VALUATION -300.00 USD
    #   USD cash                               940,000.00  1,000,000.00 -> TIMING -60,000.00
    #   EUR cash                                50,000.00     95,000.00 -> CASH -45,000.00
    #                                        (its pending -45,000.00 settles beyond the lag)
    #   GBP cash                                       --         10.00 -> MISSING_INTERNAL
    findings = run(
        internal_pos=[
            pos("AAPL", "1000"),
            pos("MSFT", "500"),
            pos("SAP", "300"),
            pos("GOOG", "1200"),
            pos("AMZN", "100"),
        ],
        custodian_pos=[
            pos("AAPL", "1000", "200000.00"),
            pos("MSFT", "480"),
            pos("NVDA", "50"),
            pos("GOOG", "1000"),
            pos("AMZN", "100", "23300.00"),
        ],
        internal_cash=[cash("USD", "940000.00"), cash("EUR", "50000.00")],
        custodian_cash=[
            cash("USD", "1000000.00"),
            cash("EUR", "95000.00"),
            cash("GBP", "10.00"),
        ],
        pending=PENDING,
    )
    assert findings == [
        finding(
            "AMZN", BreakCategory.VALUATION, "23000.00", "23300.00", "-300.00", "-300.00", "USD"
        ),
        finding("EUR", BreakCategory.CASH, "50000.00", "95000.00", "-45000.00", "-45000.00", "EUR"),
        finding("GBP", BreakCategory.MISSING_INTERNAL, None, "10.00", "-10.00", "-10.00", "GBP"),
        finding("GOOG", BreakCategory.TIMING, "1200", "1000", "200", "60000.00", "USD"),
        finding("MSFT", BreakCategory.QUANTITY, "500", "480", "20", "8000.00", "USD"),
        finding("NVDA", BreakCategory.MISSING_INTERNAL, None, "50", "-50", "-9000.00", "USD"),
        finding("SAP", BreakCategory.MISSING_CUSTODIAN, "300", None, "300", "45000.00", "EUR"),
        finding(
            "USD", BreakCategory.TIMING, "940000.00", "1000000.00", "-60000.00", "-60000.00", "USD"
        ),
    ]
    keys = [f.key for f in findings]
    assert len(set(keys)) == len(keys)


def test_timing_lag_is_configurable():
    # With a 4-day lag the EUR payment settling 1 Dec explains the EUR difference too.
    findings = run(
        internal_cash=[cash("EUR", "50000.00")],
        custodian_cash=[cash("EUR", "95000.00")],
        pending=PENDING,
        timing_lag_days=4,
    )
    assert [f.category for f in findings] == [BreakCategory.TIMING]


def test_timing_needs_an_exact_explanation():
    # Pending +150 does not explain a +200 difference: a QUANTITY break, not TIMING.
    findings = run(
        internal_pos=[pos("GOOG", "1200")],
        custodian_pos=[pos("GOOG", "1000")],
        pending=[PendingMovement("ACC1", "GOOG", AS_OF, D("150"))],
    )
    assert [f.category for f in findings] == [BreakCategory.QUANTITY]


def test_timing_for_a_position_not_yet_at_the_custodian():
    # First purchase of SAP: no custodian line yet, +300 pending -> TIMING, not MISSING.
    findings = run(
        internal_pos=[pos("SAP", "300")],
        pending=[PendingMovement("ACC1", "SAP", AS_OF, D("300"))],
    )
    assert [f.category for f in findings] == [BreakCategory.TIMING]


def test_pending_movements_from_instructions():
    # BUY 200 GOOG for 60,000.00 USD settling 30 Nov -> +200 GOOG, -60,000.00 USD.
    ob = Obligation(
        "O1", "T1", 1, "ACC1", "BRKA", "GOOG", date(2026, 11, 30), "USD", Side.BUY,
        D("200"), D("60000.00"), PaymentType.DVP,
    )  # fmt: skip
    moves = movements_from_instructions(net([ob]))
    assert moves == [
        PendingMovement("ACC1", "GOOG", date(2026, 11, 30), D("200")),
        PendingMovement("ACC1", "USD", date(2026, 11, 30), D("-60000.00")),
    ]
    findings = run(
        internal_pos=[pos("GOOG", "1200")],
        custodian_pos=[pos("GOOG", "1000")],
        internal_cash=[cash("USD", "940000.00")],
        custodian_cash=[cash("USD", "1000000.00")],
        pending=moves,
    )
    assert [f.category for f in findings] == [BreakCategory.TIMING, BreakCategory.TIMING]


@pytest.mark.parametrize(
    ("internal_qty", "expected"),
    [
        ("1000000.5", []),  # exactly at the 0.5 bond tolerance: not a break
        ("999999.5", []),
        ("1000000.500001", [BreakCategory.QUANTITY]),
        ("999999.499999", [BreakCategory.QUANTITY]),
    ],
)
def test_quantity_tolerance_boundary(internal_qty, expected):
    findings = run(
        internal_pos=[pos("UST30", internal_qty)], custodian_pos=[pos("UST30", "1000000")]
    )
    assert [f.category for f in findings] == expected


def test_equity_tolerance_is_zero():
    findings = run(internal_pos=[pos("MSFT", "480.000001")], custodian_pos=[pos("MSFT", "480")])
    assert [f.category for f in findings] == [BreakCategory.QUANTITY]
    # 0.000001 x 400.00 = 0.0004 -> 0.00 USD once booked.
    assert findings[0].amount == D("0.00")


@pytest.mark.parametrize(
    ("custodian", "expected"),
    [
        ("1000000.01", []),  # diff -0.01 = tolerance
        ("999999.99", []),
        ("1000000.02", [BreakCategory.CASH]),
        ("999999.98", [BreakCategory.CASH]),
    ],
)
def test_cash_tolerance_boundary(custodian, expected):
    findings = run(
        internal_cash=[cash("USD", "1000000.00")], custodian_cash=[cash("USD", custodian)]
    )
    assert [f.category for f in findings] == expected


@pytest.mark.parametrize(
    ("custodian_mv", "expected"),
    [
        # AMZN 100 x 230.00 = 23,000.00 internal; 1 % of the custodian value is the limit.
        ("23232.32", []),  # |-232.32| <= 1 % x 23,232.32 = 232.3232
        ("23232.33", [BreakCategory.VALUATION]),  # |-232.33| > 232.3233
        ("22772.28", []),  # |227.72| <= 1 % x 22,772.28 = 227.7228
        ("22772.27", [BreakCategory.VALUATION]),  # |227.73| >  227.7227
        ("23000.00", []),
    ],
)
def test_valuation_tolerance_boundary(custodian_mv, expected):
    findings = run(
        internal_pos=[pos("AMZN", "100")], custodian_pos=[pos("AMZN", "100", custodian_mv)]
    )
    assert [f.category for f in findings] == expected


def test_valuation_exactly_at_relative_tolerance():
    # Internal MV given directly: 101.00 vs 100.00 is exactly 1 % -> not a break; 101.01 is.
    assert (
        run(internal_pos=[pos("AMZN", "1", "101.00")], custodian_pos=[pos("AMZN", "1", "100.00")])
        == []
    )
    findings = run(
        internal_pos=[pos("AMZN", "1", "101.01")], custodian_pos=[pos("AMZN", "1", "100.00")]
    )
    assert [(f.category, f.difference) for f in findings] == [(BreakCategory.VALUATION, D("1.01"))]


def test_no_valuation_without_values_or_price():
    unpriced = {"XYZ": InstrumentRef("XYZ", "EQUITY", "USD", None)}
    findings = reconcile(
        Holdings(AS_OF, (pos("XYZ", "10"),)),
        Holdings(AS_OF, (pos("XYZ", "10", "999.00"),)),
        unpriced,
        TOLERANCES,
    )
    assert findings == []


def test_zero_line_versus_absent_line():
    # A closed position (0) the custodian no longer reports is not a break; a zero internal line
    # against a custodian holding is a QUANTITY break (internal knows it), not MISSING_INTERNAL.
    assert run(internal_pos=[pos("MSFT", "0")]) == []
    findings = run(internal_pos=[pos("MSFT", "0")], custodian_pos=[pos("MSFT", "5")])
    assert [f.category for f in findings] == [BreakCategory.QUANTITY]


def test_unknown_instrument_uses_default_tolerance_and_no_amount():
    findings = run(custodian_pos=[pos("UNKNOWN", "5")])
    assert findings == [
        finding("UNKNOWN", BreakCategory.MISSING_INTERNAL, None, "5", "-5", None, None)
    ]


def test_rejects_mismatched_dates_and_duplicates():
    with pytest.raises(ValueError, match="as-of"):
        reconcile(Holdings(AS_OF), Holdings(date(2026, 11, 26)), INSTRUMENTS, TOLERANCES)
    with pytest.raises(ValueError, match="duplicate"):
        run(internal_pos=[pos("MSFT", "1"), pos("MSFT", "2")])


def test_rerun_is_idempotent():
    kwargs = {
        "internal_pos": [pos("MSFT", "500"), pos("SAP", "300")],
        "custodian_pos": [pos("MSFT", "480")],
        "internal_cash": [cash("USD", "5.00")],
    }
    first = run(**kwargs)
    second = run(**{k: list(reversed(v)) for k, v in kwargs.items()})
    assert first == second
    assert auto_resolved([f.key for f in first], second, AS_OF) == []


def test_auto_resolved():
    # Yesterday: MSFT QUANTITY and SAP MISSING_CUSTODIAN and GOOG QUANTITY were open.
    # Today: MSFT still breaks (stays open), SAP arrived (resolved), GOOG is now TIMING (the
    # QUANTITY break resolves, a TIMING one opens).
    yesterday = date(2026, 11, 26)
    previous = [
        BreakKey(yesterday, "ACC1", "MSFT", BreakCategory.QUANTITY),
        BreakKey(yesterday, "ACC1", "SAP", BreakCategory.MISSING_CUSTODIAN),
        BreakKey(yesterday, "ACC1", "GOOG", BreakCategory.QUANTITY),
        # Opened by a later run: re-running 27 Nov must not resolve it.
        BreakKey(date(2026, 11, 30), "ACC1", "AAPL", BreakCategory.QUANTITY),
    ]
    today = run(
        internal_pos=[pos("MSFT", "500"), pos("SAP", "300"), pos("GOOG", "1200")],
        custodian_pos=[pos("MSFT", "480"), pos("SAP", "300"), pos("GOOG", "1000")],
        pending=PENDING,
    )
    assert [f.key.category for f in today] == [BreakCategory.TIMING, BreakCategory.QUANTITY]
    assert auto_resolved(previous, today, AS_OF) == [
        BreakKey(yesterday, "ACC1", "GOOG", BreakCategory.QUANTITY),
        BreakKey(yesterday, "ACC1", "SAP", BreakCategory.MISSING_CUSTODIAN),
    ]
    # A clean run resolves everything in scope up to its date.
    assert len(auto_resolved(previous, [], AS_OF)) == 3
    assert len(auto_resolved(previous, [])) == 4
