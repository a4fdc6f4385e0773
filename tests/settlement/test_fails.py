"""Fails aging and CSDR-style penalties against hand-worked numbers.

Day rule: the ISD is failing day 1; only business days of the fail's market count.
TARGET2 April 2026: Fri 3 (Good Friday) and Mon 6 (Easter Monday) are closed.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.fails import (
    AgeBucket,
    BucketSummary,
    Fail,
    FailReason,
    InstrumentClass,
    MissingRateError,
    PenaltyRates,
    accrue,
    age_bucket,
    fail_age,
    failing_days,
    fails_report,
)
from trades.calendar import MarketCalendar

D = Decimal
TARGET2 = MarketCalendar(
    "TARGET2",
    frozenset({date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1)}),
    settlement_cycle=2,
)
XNYS = MarketCalendar("XNYS", frozenset({date(2026, 4, 3)}), settlement_cycle=1)
XTKS = MarketCalendar("XTKS", frozenset(), settlement_cycle=2)
CALENDARS = {c.market: c for c in (TARGET2, XNYS, XTKS)}
RATES = PenaltyRates()


def fail(
    fid="F1",
    *,
    isd=date(2026, 4, 2),
    value="1000000.00",
    cls=InstrumentClass.LIQUID_SHARES,
    ccy="EUR",
    market="TARGET2",
    reason=FailReason.LACK_OF_SECURITIES,
    settled_on=None,
):
    return Fail(
        fail_id=fid,
        instruction_id=f"SI-{fid}",
        market=market,
        account="ACC1",
        counterparty="BRKA",
        instrument="DE0007164600",
        instrument_class=cls,
        currency=ccy,
        intended_settle_date=isd,
        failed_value=D(value),
        reason=reason,
        settled_on=settled_on,
    )


def test_liquid_share_over_easter():
    # EUR 1,000,000.00 liquid shares, 1.0 bp/day = 100.00/day.
    # ISD Thu 2 Apr; as of Wed 8 Apr the failing days are Thu 2, Tue 7, Wed 8 (Good Friday,
    # weekend and Easter Monday are closed): 3 rows, 300.00, age 3 -> bucket 2-3.
    f = fail()
    rows = accrue(f, date(2026, 4, 8), TARGET2, RATES)
    assert [r.accrual_date for r in rows] == [date(2026, 4, 2), date(2026, 4, 7), date(2026, 4, 8)]
    assert [r.day_number for r in rows] == [1, 2, 3]
    assert {r.penalty for r in rows} == {D("100.00")}
    assert rows[0].daily_rate == D("0.00010")
    assert sum(r.penalty for r in rows) == D("300.00")
    assert fail_age(f, date(2026, 4, 8), TARGET2) == 3
    assert age_bucket(3) is AgeBucket.DAYS_2_3


@pytest.mark.parametrize(
    ("as_of", "age", "rows"),
    [
        (date(2026, 4, 1), 0, 0),  # before the ISD: not failing
        (date(2026, 4, 2), 1, 1),  # unsettled at end of ISD: day 1
        (date(2026, 4, 6), 1, 1),  # holidays and weekend add nothing
        (date(2026, 4, 7), 2, 2),
    ],
)
def test_age_starts_at_isd(as_of, age, rows):
    f = fail()
    assert fail_age(f, as_of, TARGET2) == age
    assert len(accrue(f, as_of, TARGET2, RATES)) == rows


def test_settled_fail_stops_accruing_and_aging():
    # Settled Wed 8 Apr: penalties for Thu 2 and Tue 7 only (not the settlement day) = 200.00.
    f = fail(settled_on=date(2026, 4, 8))
    rows = accrue(f, date(2026, 4, 30), TARGET2, RATES)
    assert [r.accrual_date for r in rows] == [date(2026, 4, 2), date(2026, 4, 7)]
    assert sum(r.penalty for r in rows) == D("200.00")
    assert fail_age(f, date(2026, 4, 8), TARGET2) == 0
    # Seen from before the settlement, it was still open.
    assert fail_age(f, date(2026, 4, 7), TARGET2) == 2


@pytest.mark.parametrize(
    ("age", "bucket"),
    [
        (0, None),
        (1, AgeBucket.DAY_1),
        (2, AgeBucket.DAYS_2_3),
        (3, AgeBucket.DAYS_2_3),
        (4, AgeBucket.DAYS_4_5),
        (5, AgeBucket.DAYS_4_5),
        (6, AgeBucket.OVER_5),
        (250, AgeBucket.OVER_5),
    ],
)
def test_bucket_boundaries(age, bucket):
    assert age_bucket(age) is bucket


@pytest.mark.parametrize(
    ("cls", "value", "ccy", "market", "daily"),
    [
        # 123,456.78 x 0.5 bp = 6.172839 -> 6.17
        (InstrumentClass.ILLIQUID_SHARES, "123456.78", "EUR", "TARGET2", "6.17"),
        # 1,500.00 x 0.10 bp = 0.015 -> half-even -> 0.02
        (InstrumentClass.SOVEREIGN_BONDS, "1500.00", "EUR", "TARGET2", "0.02"),
        # 2,500.00 x 0.10 bp = 0.025 -> half-even -> 0.02 (not 0.03)
        (InstrumentClass.SOVEREIGN_BONDS, "2500.00", "EUR", "TARGET2", "0.02"),
        # 1,250.00 x 0.20 bp = 0.025 -> 0.02
        (InstrumentClass.OTHER_BONDS, "1250.00", "EUR", "TARGET2", "0.02"),
        # 10,000,000.00 x 0.25 bp = 250.00; x 0.15 bp = 150.00; x 0.5 bp = 500.00
        (InstrumentClass.SME_SHARES, "10000000.00", "EUR", "TARGET2", "250.00"),
        (InstrumentClass.SME_BONDS, "10000000.00", "EUR", "TARGET2", "150.00"),
        (InstrumentClass.OTHER, "10000000.00", "EUR", "TARGET2", "500.00"),
        # JPY has no minor units: 12,345,678 x 1 bp = 1234.5678 -> 1235
        (InstrumentClass.LIQUID_SHARES, "12345678", "JPY", "XTKS", "1235"),
    ],
)
def test_daily_penalty_by_class(cls, value, ccy, market, daily):
    f = fail(cls=cls, value=value, ccy=ccy, market=market)
    (row,) = accrue(f, f.intended_settle_date, CALENDARS[market], RATES)
    assert row.penalty == D(daily)
    assert str(row.penalty) == daily  # scale is the currency's minor units


def test_cash_fail_uses_annual_rate_over_365():
    # EUR 1,000,000.00 x 2.40 % / 365 = 65.7534246... -> 65.75 per day.
    f = fail(reason=FailReason.LACK_OF_CASH)
    (row,) = accrue(f, date(2026, 4, 2), TARGET2, RATES)
    assert row.penalty == D("65.75")
    # Negative central-bank rate is floored at zero.
    negative = PenaltyRates(cash_annual_rates={"EUR": D("-0.005")})
    assert accrue(f, date(2026, 4, 2), TARGET2, negative)[0].penalty == D("0.00")


def test_missing_or_bad_rates_refused():
    usd_cash = fail(reason=FailReason.LACK_OF_CASH, ccy="USD", market="XNYS")
    with pytest.raises(MissingRateError, match="USD"):
        accrue(usd_cash, date(2026, 4, 2), XNYS, RATES)
    no_bonds = PenaltyRates(securities_bp={InstrumentClass.LIQUID_SHARES: D("1")})
    with pytest.raises(MissingRateError, match="OTHER_BONDS"):
        accrue(fail(cls=InstrumentClass.OTHER_BONDS), date(2026, 4, 2), TARGET2, no_bonds)
    negative = PenaltyRates(securities_bp={InstrumentClass.LIQUID_SHARES: D("-1")})
    with pytest.raises(ValueError, match="negative"):
        accrue(fail(), date(2026, 4, 2), TARGET2, negative)


def test_configured_rates_override_defaults():
    # USD cash at 4.00 %: 365,000.00 x 0.04 / 365 = 40.00 per day.
    rates = PenaltyRates(cash_annual_rates={"USD": D("0.04")})
    f = fail(reason=FailReason.LACK_OF_CASH, ccy="USD", market="XNYS", value="365000.00")
    assert accrue(f, date(2026, 4, 2), XNYS, rates)[0].penalty == D("40.00")


def test_wrong_calendar_and_bad_fail_rejected():
    with pytest.raises(ValueError, match="XNYS"):
        accrue(fail(), date(2026, 4, 8), XNYS, RATES)
    with pytest.raises(ValueError, match="failed_value"):
        fail(value="-1")
    with pytest.raises(ValueError, match="before its intended"):
        fail(settled_on=date(2026, 4, 1))


def test_accrual_is_idempotent():
    f = fail()
    assert accrue(f, date(2026, 4, 8), TARGET2, RATES) == accrue(
        f, date(2026, 4, 8), TARGET2, RATES
    )


def test_fails_report_hand_worked():
    # As of Wed 8 Apr 2026:
    #   A EUR liquid    1,000,000.00 ISD Thu 2 Apr  age 3 -> 2-3   100.00 x 3 = 300.00
    #   B EUR sovereign 2,000,000.00 ISD Mon 30 Mar age 6 -> >5     20.00 x 6 = 120.00
    #     (30, 31 Mar, 1, 2, 7, 8 Apr)
    #   C EUR illiquid    500,000.00 ISD Wed 8 Apr  age 1 -> 1      25.00 x 1 =  25.00
    #   D EUR liquid      400,000.00 ISD Wed 1 Apr, settled Tue 7 Apr: not open,
    #     penalties 1, 2 Apr = 40.00 x 2 = 80.00
    #   E USD other bond  300,000.00 ISD Mon 6 Apr (open on NYSE) age 3 -> 2-3
    #      6.00 x 3 = 18.00 USD
    #   F EUR liquid ISD Fri 10 Apr: not yet due, nothing.
    fails = [
        fail("A"),
        fail("B", isd=date(2026, 3, 30), value="2000000.00", cls=InstrumentClass.SOVEREIGN_BONDS),
        fail("C", isd=date(2026, 4, 8), value="500000.00", cls=InstrumentClass.ILLIQUID_SHARES),
        fail("D", isd=date(2026, 4, 1), value="400000.00", settled_on=date(2026, 4, 7)),
        fail(
            "E",
            isd=date(2026, 4, 6),
            value="300000.00",
            cls=InstrumentClass.OTHER_BONDS,
            ccy="USD",
            market="XNYS",
        ),
        fail("F", isd=date(2026, 4, 10)),
    ]
    report = fails_report(fails, date(2026, 4, 8), CALENDARS, RATES)
    assert report.open_fails == 4
    assert report.penalties_to_date == {"EUR": D("525.00"), "USD": D("18.00")}
    assert report.buckets == [
        BucketSummary(AgeBucket.DAY_1, "EUR", 1, D("500000.00")),
        BucketSummary(AgeBucket.DAYS_2_3, "EUR", 1, D("1000000.00")),
        BucketSummary(AgeBucket.DAYS_4_5, "EUR", 0, D("0")),
        BucketSummary(AgeBucket.OVER_5, "EUR", 1, D("2000000.00")),
        BucketSummary(AgeBucket.DAY_1, "USD", 0, D("0")),
        BucketSummary(AgeBucket.DAYS_2_3, "USD", 1, D("300000.00")),
        BucketSummary(AgeBucket.DAYS_4_5, "USD", 0, D("0")),
        BucketSummary(AgeBucket.OVER_5, "USD", 0, D("0")),
    ]
    assert fails_report(reversed(fails), date(2026, 4, 8), CALENDARS, RATES) == report


def test_fails_report_unknown_market():
    with pytest.raises(KeyError):
        fails_report([fail(market="XLON")], date(2026, 4, 8), CALENDARS, RATES)


days = st.dates(min_value=date(2026, 3, 1), max_value=date(2026, 6, 30))


@given(isd=days, a=days, b=days, settle_after=st.none() | st.integers(0, 40))
def test_accrual_only_appends_and_matches_age(isd, a, b, settle_after):
    settled_on = None if settle_after is None else isd + timedelta(days=settle_after)
    f = fail(isd=isd, settled_on=settled_on)
    early, late = min(a, b), max(a, b)
    rows_early = accrue(f, early, TARGET2, RATES)
    rows_late = accrue(f, late, TARGET2, RATES)
    assert rows_late[: len(rows_early)] == rows_early
    assert all(TARGET2.is_business_day(r.accrual_date) for r in rows_late)
    assert failing_days(f, late, TARGET2) == [r.accrual_date for r in rows_late]
    if settled_on is None or settled_on > late:
        assert fail_age(f, late, TARGET2) == len(rows_late)
