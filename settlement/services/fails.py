"""Fails from custodian statuses, and their daily penalty accrual."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import F, Q

from backoffice.money import quantize_money
from settlement import fails as pure
from settlement.models import Fail, FailPenalty, Instruction
from settlement.policy import PENALTY_RATES
from settlement.reference import SettlementReference, settlement_reference
from trades.calendar import CalendarNotCoveredError

log = logging.getLogger("backoffice.settlement")


@dataclass(frozen=True)
class Failure:
    """An instruction the custodian failed (in full or for a remainder) on ``business_date``."""

    instruction: Instruction
    reason_code: str
    business_date: date
    quantity: Decimal  # signed, unsettled when it failed
    cash: Decimal


def _penalty_basis(reason_code: str) -> str:
    if reason_code == Fail.ReasonCode.INSUFFICIENT_CASH:
        return Fail.PenaltyBasis.LACK_OF_CASH
    # An unmatched instruction is penalised like a lack of securities (CSDR late matching
    # penalties use the securities rate of the instrument class).
    return Fail.PenaltyBasis.LACK_OF_SECURITIES


def _failed_value(
    ins: Instruction, basis: str, quantity: Decimal, cash: Decimal, ref: SettlementReference
) -> Decimal:
    """Cash fails are valued at the failed cash; securities at reference price x quantity."""
    if basis == Fail.PenaltyBasis.LACK_OF_CASH or quantity == 0:
        return abs(cash)
    security = ref.securities.get(ins.instrument)
    price = security.unit_price if security is not None else Decimal(0)
    return quantize_money(abs(quantity) * price, ins.currency)


_UPSERT = """
INSERT INTO settlement_fail AS f (
    instruction_id, account, counterparty, instrument, instrument_class, market, calendar_code,
    currency, intended_settle_date, reason_code, penalty_basis, failed_quantity, failed_cash,
    failed_value, first_failed_on, status, settled_on, created_at, updated_at)
SELECT v.*, 'OPEN', NULL::date, %s, %s FROM unnest(
    %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::text[], %s::date[], %s::text[], %s::text[], %s::numeric[], %s::numeric[],
    %s::numeric[], %s::date[]) AS v
ON CONFLICT (instruction_id) DO UPDATE SET
    failed_quantity = EXCLUDED.failed_quantity, failed_cash = EXCLUDED.failed_cash,
    failed_value = EXCLUDED.failed_value, updated_at = EXCLUDED.updated_at
WHERE f.status = 'OPEN'
"""


def fails_record(
    *, failures: Sequence[Failure], settled: Mapping[str, date], now: datetime
) -> None:
    """Open or update a fail per failing instruction; then close the fails of settled ones.

    Guarantee: one fail per instruction (unique), holding what was unsettled when it last
    failed (its failed value prices the penalties); an open fail
    closes as SETTLED on the business date its instruction settled in full (never before its
    ISD). Two statements for the whole batch.
    """
    if failures:
        ref = settlement_reference()
        columns: list[list[object]] = [[] for _ in range(15)]
        for failure in failures:
            ins = failure.instruction
            basis = _penalty_basis(failure.reason_code)
            quantity, cash = abs(failure.quantity), abs(failure.cash)
            values = (
                ins.instruction_id,
                ins.account,
                ins.counterparty,
                ins.instrument,
                ins.csdr_class,
                ins.market,
                ref.calendar_of_market.get(ins.market, ins.market),
                ins.currency,
                ins.settle_date,
                failure.reason_code,
                basis,
                quantity,
                cash,
                _failed_value(ins, basis, quantity, cash, ref),
                failure.business_date,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, [now, now, *columns])
    if settled:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE settlement_fail AS f SET status = 'SETTLED', updated_at = %s,"
                " settled_on = GREATEST(f.intended_settle_date, v.day)"
                " FROM unnest(%s::text[], %s::date[]) AS v(id, day)"
                " WHERE f.instruction_id = v.id AND f.status = 'OPEN'",
                [now, list(settled), list(settled.values())],
            )


def as_pure(fail: Fail) -> pure.Fail:
    return pure.Fail(
        fail_id=str(fail.pk),
        instruction_id=fail.instruction_id,
        market=fail.calendar_code,
        account=fail.account,
        counterparty=fail.counterparty,
        instrument=fail.instrument,
        instrument_class=pure.InstrumentClass(fail.instrument_class),
        currency=fail.currency,
        intended_settle_date=fail.intended_settle_date,
        failed_value=fail.failed_value,
        reason=pure.FailReason(fail.penalty_basis),
        settled_on=fail.settled_on,
    )


@dataclass(frozen=True)
class AccrualResult:
    as_of: date
    fails: int
    created: int
    missing_rate: list[str]  # fails skipped: no penalty rate configured for them
    uncovered: list[str]  # fails skipped: failing days past their calendar's loaded holidays
    uncovered_calendars: dict[str, str]  # calendar code -> what to load (first error met on it)


def fail_penalties_accrue(
    *, as_of: date, now: datetime, rates: pure.PenaltyRates = PENALTY_RATES
) -> AccrualResult:
    """Accrue every failing day's penalty up to ``as_of`` for every fail due by then.

    Guarantee: idempotent per (fail, date) — a unique constraint and ``ON CONFLICT DO NOTHING``
    mean re-running for the same or an earlier date adds nothing, and a later date only adds
    the days since. Each row is ``settlement.fails.accrue``'s booked daily penalty on the
    fail's failed value as of this run. A fail with no configured rate, or whose failing days
    run past the holidays loaded for its calendar, is skipped and named in the result (and
    logged), never guessed; the other fails still accrue.
    """
    calendars = settlement_reference().calendars
    due = Fail.objects.filter(intended_settle_date__lte=as_of).filter(
        Q(status=Fail.Status.OPEN) | Q(settled_on__gt=F("intended_settle_date"))
    )
    rows: list[FailPenalty] = []
    missing: list[str] = []
    uncovered: list[str] = []
    uncovered_calendars: dict[str, str] = {}
    fails = list(due)
    for fail in fails:
        try:
            accrued = pure.accrue(as_pure(fail), as_of, calendars[fail.calendar_code], rates)
        except (pure.MissingRateError, KeyError) as error:
            missing.append(fail.instruction_id)
            log.warning("no penalty for fail %s: %s", fail.instruction_id, error)
            continue
        except CalendarNotCoveredError as error:
            uncovered.append(fail.instruction_id)
            uncovered_calendars.setdefault(error.calendar, str(error))
            log.warning("no penalty for fail %s: %s", fail.instruction_id, error)
            continue
        rows.extend(
            FailPenalty(
                fail=fail,
                accrual_date=a.accrual_date,
                day_number=a.day_number,
                currency=a.currency,
                failed_value=a.failed_value,
                daily_rate=a.daily_rate,
                penalty=a.penalty,
                created_at=now,
            )
            for a in accrued
        )
    before = FailPenalty.objects.filter(fail__in=fails).count()
    FailPenalty.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    created = FailPenalty.objects.filter(fail__in=fails).count() - before
    return AccrualResult(as_of, len(fails), created, missing, uncovered, uncovered_calendars)
