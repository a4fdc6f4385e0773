"""Payments: every settled cash leg, and every margin call, as an ISO 20022 credit transfer."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import transaction

from backoffice.money import quantize_money
from settlement.models import Instruction, Payment

PAYMENT_NAMESPACE = uuid.UUID("5d0e4f8a-2b6c-5e3d-8f1a-9c7b6a5d4e3f")
MARGIN_CREDITOR = "MARGIN-COLLATERAL"
AMOUNT_NOT_POSITIVE = "A margin call payment needs a positive amount, got {amount}."


@dataclass(frozen=True)
class SettledCash:
    """A settled cash increment of one instruction (signed: + received, - paid)."""

    instruction: Instruction
    sequence: int
    amount: Decimal
    value_date: date


def _uetr(end_to_end_id: str) -> uuid.UUID:
    return uuid.uuid5(PAYMENT_NAMESPACE, end_to_end_id)


def payments_for_settlements(
    *, legs: Sequence[SettledCash], our_accounts: Mapping[str, str], now: datetime
) -> int:
    """Record one settled (ACSC) credit transfer per settled cash increment; return how many.

    Guarantee: idempotent — the end-to-end id is ``<instruction id>/<status sequence>``, unique
    in the table, so a re-applied status records nothing twice. The account pays (is the
    debtor) when the increment is negative and is the creditor otherwise; the counterparty's
    side comes from its SSI. ``our_accounts`` maps account code to its custodian account.
    """
    rows = []
    for leg in legs:
        if leg.amount == 0:
            continue
        ins = leg.instruction
        ours = (ins.account, our_accounts.get(ins.account, ins.account), "")
        theirs = (ins.counterparty, ins.ssi_cash_account or ins.counterparty, ins.ssi_custodian_bic)
        debtor, creditor = (ours, theirs) if leg.amount < 0 else (theirs, ours)
        e2e = f"{ins.instruction_id}/{leg.sequence}"
        rows.append(
            Payment(
                end_to_end_id=e2e,
                uetr=_uetr(e2e),
                source=Payment.Source.SETTLEMENT,
                reference=e2e,
                instruction_id=ins.instruction_id,
                account=ins.account,
                debtor=debtor[0],
                debtor_account=debtor[1],
                debtor_agent=debtor[2],
                creditor=creditor[0],
                creditor_account=creditor[1],
                creditor_agent=creditor[2],
                amount=abs(leg.amount),
                currency=ins.currency,
                value_date=leg.value_date,
                status=Payment.Status.ACSC,
                remittance_information=f"{ins.payment_type} {ins.instrument} {ins.instruction_id}",
                created_at=now,
            )
        )
    created = Payment.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def payment_create_for_margin_call(
    *,
    account: str,
    amount: Decimal,
    currency: str,
    value_date: date,
    reference: str,
    now: datetime,
) -> Payment:
    """Record the credit transfer that meets a margin call; the same ``reference`` is one payment.

    Guarantee: idempotent by ``reference`` (a unique constraint with the source) — calling it
    again, even concurrently, returns the existing payment unchanged. The amount is booked with
    ``quantize_money``; the account is the debtor, the collateral account the creditor; the
    payment starts PDNG (pending) until the transfer is confirmed.
    """
    booked = quantize_money(amount, currency)
    if booked <= 0:
        raise ValueError(AMOUNT_NOT_POSITIVE.format(amount=amount))
    e2e = f"MC-{uuid.uuid5(PAYMENT_NAMESPACE, reference).hex[:24]}"
    with transaction.atomic():
        payment, _ = Payment.objects.get_or_create(
            source=Payment.Source.MARGIN_CALL,
            reference=reference,
            defaults={
                "end_to_end_id": e2e,
                "uetr": _uetr(e2e),
                "account": account,
                "debtor": account,
                "debtor_account": account,
                "creditor": MARGIN_CREDITOR,
                "creditor_account": MARGIN_CREDITOR,
                "amount": booked,
                "currency": currency,
                "value_date": value_date,
                "status": Payment.Status.PDNG,
                "remittance_information": f"Margin call {reference}"[:140],
                "created_at": now,
            },
        )
    return payment
