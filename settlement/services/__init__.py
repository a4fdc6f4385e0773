"""Every write of the settlement app (``<noun>_<verb>``), re-exported from its module."""

from settlement.services.breaks import (
    BreakActionError,
    break_accept,
    break_assign,
    break_comment,
    break_resolve,
)
from settlement.services.custodian import (
    custodian_day_close,
    custodian_instructions_receive,
    custodian_statements_publish,
)
from settlement.services.fails import fail_penalties_accrue, fails_record
from settlement.services.netting import obligations_apply
from settlement.services.payments import payment_create_for_margin_call, payments_for_settlements
from settlement.services.recon import statements_reconcile
from settlement.services.renet import chains_renet
from settlement.services.status import custodian_statuses_apply

__all__ = [
    "BreakActionError",
    "break_accept",
    "break_assign",
    "break_comment",
    "break_resolve",
    "chains_renet",
    "custodian_day_close",
    "custodian_instructions_receive",
    "custodian_statements_publish",
    "custodian_statuses_apply",
    "fail_penalties_accrue",
    "fails_record",
    "obligations_apply",
    "payment_create_for_margin_call",
    "payments_for_settlements",
    "statements_reconcile",
]
