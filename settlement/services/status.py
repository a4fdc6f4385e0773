"""Custodian statuses: instruction transitions, the settled ledger, payments and fails (bulk).

Per instruction, statuses carry an increasing ``sequence`` and cumulative settled amounts, so
a status at or below the sequence already applied is a repeat and changes nothing. Allowed
transitions (anything else is ignored as stale):

    INSTRUCTED -> MATCHED | FAILED | PARTIALLY_SETTLED | SETTLED
    MATCHED | FAILED | PARTIALLY_SETTLED -> FAILED | PARTIALLY_SETTLED | SETTLED
    CANCELLED (superseded) -> settled amounts recorded, then the chain is re-netted

A partially settled instruction that fails its remainder stays PARTIALLY_SETTLED (its fail
records the remainder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from backoffice.streaming.envelope import Message, Outbound
from backoffice.streaming.store import Rejection
from settlement.models import Instruction, SettlementMovement
from settlement.reference import settlement_reference
from settlement.services.chains import chains_settled_add
from settlement.services.fails import Failure, fails_record
from settlement.services.payments import SettledCash, payments_for_settlements
from settlement.services.renet import chain_of, chains_renet, lock_chains

UNKNOWN_INSTRUCTION = "UnknownInstruction"
INVALID_STATUS = "InvalidStatus"
UNKNOWN_INSTRUCTION_REASON = "no instruction {instruction_id!r} was ever sent"
SETTLED_OUT_OF_RANGE = (
    "settled amounts {quantity}/{cash} are not between what had settled and the instruction's net"
)
NO_BUSINESS_DATE = "a {status} status needs a business_date"
NO_REASON_CODE = "a {status} status needs a reason_code"
ZERO = Decimal(0)

S = Instruction.Status
_NEXT: dict[str, set[str]] = {
    S.INSTRUCTED: {S.MATCHED, S.FAILED, S.PARTIALLY_SETTLED, S.SETTLED},
    S.MATCHED: {S.FAILED, S.PARTIALLY_SETTLED, S.SETTLED},
    S.FAILED: {S.FAILED, S.PARTIALLY_SETTLED, S.SETTLED},
    S.PARTIALLY_SETTLED: {S.FAILED, S.PARTIALLY_SETTLED, S.SETTLED},
    S.CANCELLED: {S.PARTIALLY_SETTLED, S.SETTLED},
}


@dataclass
class _State:
    """An instruction as read (for the CAS) and as the batch's statuses leave it."""

    row: Instruction
    old_status: str
    old_sequence: int
    changed: bool = False
    renet: bool = False


@dataclass
class _Effects:
    now: datetime
    movements: list[SettlementMovement] = field(default_factory=list)
    cash: list[SettledCash] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    settled: dict[str, date] = field(default_factory=dict)
    # Per chain, the signed amounts settled by this batch (its head's settled totals grow).
    increments: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)


def custodian_statuses_apply(
    *, messages: Sequence[Message], now: datetime
) -> tuple[list[Outbound], list[Rejection]]:
    """Apply a batch of custodian statuses; return re-netting events and rejections.

    Guarantee: each status applies at most once (sequence per instruction, compare-and-swap on
    the status and sequence read); every settled increment becomes exactly one internal ledger
    movement per leg and, for cash, one payment; FAILED and PARTIALLY_SETTLED open or update
    the instruction's fail, SETTLED closes it; a settlement of a superseded version re-nets its
    chain (the netting module corrects for it). A status for an instruction never sent, or
    with settled amounts outside the instruction's, is rejected with the reason.
    """
    ids = sorted({m.payload["instruction_id"] for m in messages})
    # The chains first, as re-netting does: a status and a re-net of one chain never interleave
    # (a version settling while it is being superseded is then always seen by the re-net).
    lock_chains(chain_of(i) for i in ids)
    states = {
        r.instruction_id: _State(r, r.status, r.status_sequence)
        for r in Instruction.objects.select_for_update().filter(instruction_id__in=ids)
    }
    effects = _Effects(now)
    for message in messages:
        _apply_one(message, states, effects)
    changed = [s for s in states.values() if s.changed]
    _write_states(changed, now)
    chains_settled_add(effects.increments, now)
    SettlementMovement.objects.bulk_create(effects.movements, ignore_conflicts=True)
    accounts = settlement_reference().custodian_accounts
    payments_for_settlements(legs=effects.cash, our_accounts=accounts, now=now)
    fails_record(failures=list(effects.failures.values()), settled=effects.settled, now=now)
    events = chains_renet(chain_ids={s.row.chain_id for s in changed if s.renet}, now=now)
    return events, effects.rejections


def _apply_one(message: Message, states: dict[str, _State], effects: _Effects) -> None:
    p = message.payload
    state = states.get(p["instruction_id"])
    if state is None:
        reason = UNKNOWN_INSTRUCTION_REASON.format(instruction_id=p["instruction_id"])
        effects.rejections.append(Rejection(message, UNKNOWN_INSTRUCTION, reason))
        return
    row = state.row
    status = p["status"]
    if p["sequence"] <= row.status_sequence or status not in _NEXT.get(row.status, set()):
        return  # a repeat, or stale: nothing to do
    quantity, cash = Decimal(p["settled_quantity"]), Decimal(p["settled_cash"])
    if status == S.SETTLED:
        quantity, cash = row.net_quantity, row.net_cash  # settled in full, by definition
    if not (
        _between(row.settled_quantity, quantity, row.net_quantity)
        and _between(row.settled_cash, cash, row.net_cash)
    ):
        reason = SETTLED_OUT_OF_RANGE.format(quantity=quantity, cash=cash)
        effects.rejections.append(Rejection(message, INVALID_STATUS, reason))
        return
    problem = None
    if status != S.MATCHED and p["business_date"] is None:
        problem = NO_BUSINESS_DATE.format(status=status)
    elif status in (S.FAILED, S.PARTIALLY_SETTLED) and not p["reason_code"]:
        problem = NO_REASON_CODE.format(status=status)
    if problem is not None:
        effects.rejections.append(Rejection(message, INVALID_STATUS, problem))
        return
    day = date.fromisoformat(p["business_date"]) if p["business_date"] else None
    _settle(row, p["sequence"], quantity, cash, day, effects)
    state.changed = True
    state.renet |= row.status == S.CANCELLED and (quantity != 0 or cash != 0)
    row.status_sequence = p["sequence"]
    row.reason_code = p["reason_code"] or ""
    row.reason = p["reason"]
    if row.status == S.CANCELLED:
        return  # withdrawn: the amounts count, the status stays
    if status == S.FAILED and row.status == S.PARTIALLY_SETTLED:
        status = S.PARTIALLY_SETTLED
    row.status = status
    if status in (S.FAILED, S.PARTIALLY_SETTLED) and day is not None:
        effects.failures[row.instruction_id] = Failure(
            row, p["reason_code"], day, row.remaining_quantity, row.remaining_cash
        )
    if status == S.SETTLED and day is not None:
        row.settled_on = day
        effects.settled[row.instruction_id] = day


def _between(done: Decimal, new: Decimal, net: Decimal) -> bool:
    """``new`` lies between ``done`` and ``net`` (settled amounts only move towards the net)."""
    low, high = sorted((done, net))
    return low <= new <= high


def _settle(
    row: Instruction,
    sequence: int,
    quantity: Decimal,
    cash: Decimal,
    day: date | None,
    effects: _Effects,
) -> None:
    """Book the increment from what had settled to ``quantity``/``cash`` on ``day``."""
    dq, dc = quantity - row.settled_quantity, cash - row.settled_cash
    if day is None or (dq == 0 and dc == 0):
        return
    reference = f"{row.instruction_id}/{sequence}"
    for asset_type, asset, amount in (
        (SettlementMovement.AssetType.SECURITY, row.instrument, dq),
        (SettlementMovement.AssetType.CASH, row.currency, dc),
    ):
        if amount != 0:
            effects.movements.append(
                SettlementMovement(
                    reference=reference,
                    source=SettlementMovement.Source.SETTLEMENT,
                    account=row.account,
                    asset_type=asset_type,
                    asset=asset,
                    amount=amount,
                    value_date=day,
                    instruction_id=row.instruction_id,
                    created_at=effects.now,
                )
            )
    effects.cash.append(SettledCash(row, sequence, dc, day))
    q, c = effects.increments.get(row.chain_id, (ZERO, ZERO))
    effects.increments[row.chain_id] = (q + dq, c + dc)
    row.settled_quantity, row.settled_cash = quantity, cash


_CAS = """
UPDATE settlement_instruction AS i SET
    status = v.status, status_sequence = v.seq, settled_quantity = v.qty, settled_cash = v.cash,
    reason_code = v.reason_code, reason = v.reason, settled_on = v.settled_on,
    status_changed_at = %s
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::int[], %s::numeric[],
            %s::numeric[], %s::text[], %s::text[], %s::date[])
    AS v(id, old_status, old_seq, status, seq, qty, cash, reason_code, reason, settled_on)
WHERE i.instruction_id = v.id AND i.status = v.old_status AND i.status_sequence = v.old_seq
"""


def _write_states(changed: Sequence[_State], now: datetime) -> None:
    """One compare-and-swap UPDATE for every instruction the batch moved."""
    if not changed:
        return
    rows = [s.row for s in changed]
    with connection.cursor() as cursor:
        cursor.execute(
            _CAS,
            [
                now,
                [r.instruction_id for r in rows],
                [s.old_status for s in changed],
                [s.old_sequence for s in changed],
                [r.status for r in rows],
                [r.status_sequence for r in rows],
                [r.settled_quantity for r in rows],
                [r.settled_cash for r in rows],
                [r.reason_code for r in rows],
                [r.reason for r in rows],
                [r.settled_on for r in rows],
            ],
        )
        if cursor.rowcount != len(rows):
            # The rows were read FOR UPDATE, so this means a bug, not a race: undo the batch.
            raise RuntimeError(f"status CAS moved {cursor.rowcount} of {len(rows)} instructions")
