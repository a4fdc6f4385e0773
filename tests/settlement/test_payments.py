"""Payments: margin calls from the risk stage, once per reference."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from settlement.models import Payment
from settlement.services import payment_create_for_margin_call
from settlement.services.payments import AMOUNT_NOT_POSITIVE, MARGIN_CREDITOR
from tests.settlement.conftest import NOW

pytestmark = pytest.mark.django_db


def call(**overrides):
    args = {
        "account": "ACC-0013",
        "amount": Decimal("125000.005"),
        "currency": "USD",
        "value_date": date(2026, 11, 27),
        "reference": "MC-ACC-0013-2026-11-26",
        "now": NOW,
    }
    return payment_create_for_margin_call(**{**args, **overrides})


def test_a_margin_call_becomes_one_pending_credit_transfer():
    payment = call()
    # 125,000.005 booked half-even to cents: 125,000.00.
    assert (payment.amount, payment.currency, payment.status) == (
        Decimal("125000.00"),
        "USD",
        "PDNG",
    )
    assert (payment.debtor, payment.creditor) == ("ACC-0013", MARGIN_CREDITOR)
    assert (payment.source, payment.value_date) == ("MARGIN_CALL", date(2026, 11, 27))
    assert len(payment.end_to_end_id) <= 35


def test_the_same_reference_is_the_same_payment():
    first = call()
    again = call(amount=Decimal("999.00"))
    assert again.pk == first.pk
    assert again.amount == Decimal("125000.00")
    assert Payment.objects.count() == 1


def test_a_margin_call_needs_a_positive_amount():
    with pytest.raises(ValueError, match="positive amount") as error:
        call(amount=Decimal("0.001"))
    assert str(error.value) == AMOUNT_NOT_POSITIVE.format(amount=Decimal("0.001"))
