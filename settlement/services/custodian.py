"""The custodian simulator's effects: receiving instructions, closing a day, sending statements.

Decisions come from ``settlement.custodian`` (pure, seeded); this module only keeps the
simulator's own tables and emits what it decided. Status and statement events get ids derived
from what they are about (instruction and sequence, statement id), so a replay or a second run
publishes nothing twice.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from backoffice.streaming import topics
from backoffice.streaming.envelope import Message, Outbound
from backoffice.streaming.outbox import outbox_publish
from settlement import custodian as sim
from settlement.models import (
    CustodianDay,
    CustodianInstruction,
    CustodianMovement,
    CustodianStatement,
    InjectedDiscrepancy,
)
from settlement.policy import TIMING_LAG_DAYS, SimulatorRates
from settlement.reference import settlement_reference

STATUS_SCHEMA = "settlement.status"
STATEMENT_SCHEMA = "custodian.statements"
EVENT_NAMESPACE = uuid.UUID("9a3e5c71-4d2b-5f6e-8a1c-3b7d9e2f4a60")
State = CustodianInstruction.State
UNSETTLED = (State.AWAITING_MATCH, State.MATCHED, State.FAILED, State.PARTIALLY_SETTLED)


def _status_event(
    row: CustodianInstruction,
    status: str,
    now: datetime,
    *,
    day: date | None = None,
    reason: sim.Reason | None = None,
) -> Outbound:
    payload = {
        "instruction_id": row.instruction_id,
        "account": row.account,
        "sequence": row.sequence,
        "status": status,
        "reason_code": str(reason) if reason else None,
        "reason": sim.REASON_TEXT[reason] if reason else "",
        "business_date": day,
        "settled_quantity": Decimal(row.settled_quantity),  # an unsaved row holds int 0
        "settled_cash": Decimal(row.settled_cash),
        "reported_at": now,
    }
    return Outbound(
        topic=topics.SETTLEMENT_STATUS,
        key=row.account,
        schema=STATUS_SCHEMA,
        payload=payload,
        correlation_id=row.instruction_id,
        event_id=uuid.uuid5(EVENT_NAMESPACE, f"status|{row.instruction_id}|{row.sequence}"),
    )


def custodian_instructions_receive(
    *, messages: Sequence[Message], seed: int, rates: SimulatorRates, now: datetime
) -> list[Outbound]:
    """Take in instructions: withdraw what they supersede, answer MATCHED where they match.

    Guarantee: each instruction is recorded once (a repeat changes nothing); a superseded
    version still unsettled is CANCELLED (a settled one stays settled — the sender corrects
    for it); a CANCEL instruction has nothing to settle; whether the rest match is the seeded
    draw of ``settlement.custodian.matches``, and only matched ones are answered now.
    """
    known = set(
        CustodianInstruction.objects.filter(
            instruction_id__in=[m.payload["instruction_id"] for m in messages]
        ).values_list("instruction_id", flat=True)
    )
    rows: dict[str, CustodianInstruction] = {}
    for m in messages:
        iid = m.payload["instruction_id"]
        if iid not in known and iid not in rows:
            rows[iid] = _received(m.payload, sim.matches(seed, iid, rates), now)
    CustodianInstruction.objects.bulk_create(list(rows.values()))
    superseded = [r.supersedes for r in rows.values() if r.supersedes]
    if superseded:
        CustodianInstruction.objects.filter(
            instruction_id__in=superseded, state__in=UNSETTLED
        ).update(state=State.CANCELLED)
    return [_status_event(r, "MATCHED", now) for r in rows.values() if r.state == State.MATCHED]


def _received(p: dict[str, Any], matched: bool, now: datetime) -> CustodianInstruction:
    state = (
        State.IGNORED
        if p["kind"] == "CANCEL"
        else State.MATCHED
        if matched
        else State.AWAITING_MATCH
    )
    return CustodianInstruction(
        instruction_id=p["instruction_id"],
        chain_id=p["chain_id"],
        version=p["version"],
        kind=p["kind"],
        supersedes=p["supersedes"] or "",
        account=p["account"],
        instrument=p["instrument"],
        currency=p["currency"],
        settle_date=date.fromisoformat(p["settle_date"]),
        net_quantity=Decimal(p["net_quantity"]),
        net_cash=Decimal(p["net_cash"]),
        state=state,
        sequence=1 if state == State.MATCHED else 0,
        received_at=now,
    )


@dataclass(frozen=True)
class DayResult:
    business_date: date
    already_closed: bool
    settled: int
    partially_settled: int
    failed: int


def custodian_day_close(
    *, business_date: date, seed: int, rates: SimulatorRates, now: datetime
) -> DayResult:
    """Run the settlement of ``business_date``: settle, partially settle or fail what is due.

    Guarantee: a date is closed once (a second run returns ``already_closed`` and sends
    nothing); each due instruction gets ``settlement.custodian.decide``'s seeded outcome, its
    settled increment is booked in the simulator's ledger and its status published through
    the outbox in the same transaction.
    """
    with transaction.atomic():
        day, created = CustodianDay.objects.get_or_create(
            business_date=business_date,
            defaults={
                "seed": seed,
                "settled": 0,
                "partially_settled": 0,
                "failed": 0,
                "closed_at": now,
            },
        )
        if not created:
            return DayResult(business_date, True, day.settled, day.partially_settled, day.failed)
        due = list(
            CustodianInstruction.objects.select_for_update()
            .filter(state__in=UNSETTLED, settle_date__lte=business_date)
            .order_by("instruction_id")
        )
        counts, events, movements = _settle_due(due, business_date, seed, rates, now)
        # batch_size: one UPDATE ... CASE over a whole day's instructions is quadratic in
        # PostgreSQL (minutes at 90,000 instructions); batches of 500 keep it linear.
        CustodianInstruction.objects.bulk_update(
            due, ["sequence", "settled_quantity", "settled_cash", "state"], batch_size=500
        )
        CustodianMovement.objects.bulk_create(movements)
        CustodianDay.objects.filter(pk=day.pk).update(
            settled=counts[State.SETTLED],
            partially_settled=counts[State.PARTIALLY_SETTLED],
            failed=counts[State.FAILED],
        )
        outbox_publish(events=events, now=now, group="custodian_simulator")
    return DayResult(
        business_date,
        False,
        counts[State.SETTLED],
        counts[State.PARTIALLY_SETTLED],
        counts[State.FAILED],
    )


def _settle_due(
    due: Sequence[CustodianInstruction],
    day: date,
    seed: int,
    rates: SimulatorRates,
    now: datetime,
) -> tuple[dict[str, int], list[Outbound], list[CustodianMovement]]:
    """Decide each due instruction's outcome; update the rows in place; what to write and send."""
    counts: dict[str, int] = defaultdict(int)
    events, movements = [], []
    for row in due:
        held = _held(row)
        decision = sim.decide(seed, held, day, rates)
        if decision is None:
            continue
        dq, dc = sim.settle_increment(held, decision)
        row.sequence += 1
        row.settled_quantity, row.settled_cash = decision.settled_quantity, decision.settled_cash
        counts[str(decision.outcome)] += 1
        if decision.reason is not sim.Reason.SSI_MISMATCH:
            row.state = str(decision.outcome)  # an unmatched one stays awaiting its match
        movements += _movements(row, dq, dc, day)
        events.append(
            _status_event(row, str(decision.outcome), now, day=day, reason=decision.reason)
        )
    return counts, events, movements


def _held(row: CustodianInstruction) -> sim.Held:
    return sim.Held(
        instruction_id=row.instruction_id,
        account=row.account,
        instrument=row.instrument,
        currency=row.currency,
        settle_date=row.settle_date,
        net_quantity=row.net_quantity,
        net_cash=row.net_cash,
        settled_quantity=row.settled_quantity,
        settled_cash=row.settled_cash,
        matched=row.state != State.AWAITING_MATCH,
        failed_before=row.state in (State.FAILED, State.PARTIALLY_SETTLED)
        or (row.state == State.AWAITING_MATCH and row.sequence > 0),
    )


def _movements(
    row: CustodianInstruction, dq: Decimal, dc: Decimal, day: date
) -> list[CustodianMovement]:
    return [
        CustodianMovement(
            instruction_id=row.instruction_id,
            sequence=row.sequence,
            account=row.account,
            asset_type=asset_type,
            asset=asset,
            amount=amount,
            value_date=day,
        )
        for asset_type, asset, amount in (
            ("SECURITY", row.instrument, dq),
            ("CASH", row.currency, dc),
        )
        if amount != 0
    ]


@dataclass(frozen=True)
class StatementResult:
    as_of: date
    revision: int
    statements: int
    injected: int


def custodian_statements_publish(
    *, as_of: date, seed: int, rate: Decimal, now: datetime
) -> StatementResult:
    """Publish every account's end-of-day statement for ``as_of``, with injected discrepancies.

    Guarantee: the statements are ``settlement.custodian.build_statements`` of the simulator's
    own ledger and unsettled instructions (deterministic for the seed), one per account it ever
    received an instruction for; each run is a new revision with new statement ids, so a
    re-run is reconciled again (and must change nothing); the injected discrepancies are
    recorded once per (date, account, asset) with the break category each must produce.
    """
    with transaction.atomic():
        accounts = sorted(set(CustodianInstruction.objects.values_list("account", flat=True)))
        statements, injections = sim.build_statements(
            as_of=as_of,
            accounts=accounts,
            holdings=_ledger(as_of),
            pending=_unsettled(),
            securities={
                isin: sim.SecurityRef(s.currency, s.unit_price, s.asset_class)
                for isin, s in settlement_reference().securities.items()
            },
            seed=seed,
            rate=rate,
            timing_lag_days=TIMING_LAG_DAYS,
        )
        last = CustodianStatement.objects.filter(as_of=as_of).aggregate(n=Max("revision"))["n"]
        revision = (last or 0) + 1
        _record(as_of, injections)
        rows, events = _statements(as_of, revision, statements, now)
        CustodianStatement.objects.bulk_create(rows)
        outbox_publish(events=events, now=now, group="custodian_simulator")
    return StatementResult(as_of, revision, len(statements), len(injections))


def _record(as_of: date, injections: Sequence[sim.Injection]) -> None:
    """Keep what was injected (once per date, account and asset), with its expected break."""
    InjectedDiscrepancy.objects.bulk_create(
        [
            InjectedDiscrepancy(
                as_of=as_of,
                account=i.account,
                asset_type=i.asset_type,
                asset=i.asset,
                kind=i.kind,
                expected_category=i.expected_category,
                detail=dict(i.detail),
            )
            for i in injections
        ],
        ignore_conflicts=True,
    )


def _statements(
    as_of: date, revision: int, statements: Sequence[sim.Statement], now: datetime
) -> tuple[list[CustodianStatement], list[Outbound]]:
    rows, events = [], []
    for statement in statements:
        statement_id = f"CS-{as_of:%Y%m%d}-{statement.account}-r{revision}"
        rows.append(
            CustodianStatement(
                statement_id=statement_id,
                as_of=as_of,
                account=statement.account,
                revision=revision,
                published_at=now,
            )
        )
        events.append(_statement_event(statement_id, revision, statement))
    return rows, events


def _ledger(as_of: date) -> dict[tuple[str, str, str], Decimal]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT account, asset_type, asset, sum(amount) FROM settlement_custodianmovement"
            " WHERE value_date <= %s GROUP BY account, asset_type, asset",
            [as_of],
        )
        return {(a, t, s): amount for a, t, s, amount in cursor.fetchall()}


def _unsettled() -> list[sim.Pending]:
    return [
        sim.Pending(
            r.instruction_id,
            r.account,
            r.instrument,
            r.currency,
            r.settle_date,
            r.net_quantity - r.settled_quantity,
            r.net_cash - r.settled_cash,
        )
        for r in CustodianInstruction.objects.filter(state__in=UNSETTLED)
    ]


def _statement_event(statement_id: str, revision: int, statement: sim.Statement) -> Outbound:
    payload: dict[str, Any] = {
        "statement_id": statement_id,
        "as_of": statement.as_of,
        "account": statement.account,
        "revision": revision,
        "positions": [
            {
                "instrument": p.instrument,
                "quantity": p.quantity,
                "price": p.unit_price,
                "market_value": p.market_value,
                "currency": p.currency,
            }
            for p in statement.positions
        ],
        "cash": [{"currency": c.currency, "amount": c.amount} for c in statement.cash],
    }
    return Outbound(
        topic=topics.CUSTODIAN_STATEMENTS,
        key=statement.account,
        schema=STATEMENT_SCHEMA,
        payload=payload,
        correlation_id=statement_id,
        event_id=uuid.uuid5(EVENT_NAMESPACE, f"statement|{statement_id}"),
    )
