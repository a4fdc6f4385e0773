"""consume_settlement's handler through the real runtime: netting, re-netting, statuses.

Hand-worked numbers (account side: BUY +quantity / -cash):
  T1 BUY 300 @ 10.00 = 3000.00, T2 BUY 500 @ 10.02 = 5010.00, T3 SELL 200 @ 10.10 = 2020.00
  -> one key, net +600 / -5990.00: RECEIVE 600, PAY 5990.00.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from settlement import netting
from settlement.models import Fail, Instruction, Obligation, Payment, SettlementMovement
from settlement.netting import NettingKey, PaymentType, chain_id
from settlement.selectors import netting_ratios
from settlement.services import renet
from settlement.services.status import UNKNOWN_INSTRUCTION, UNKNOWN_INSTRUCTION_REASON
from tests.settlement.conftest import AAPL, SD, dead_letters, sent_instructions, status, trade

D = Decimal
pytestmark = pytest.mark.django_db

T1 = trade("T1", quantity="300", price="10.00")
T2 = trade("T2", quantity="500", price="10.02")
T3 = trade("T3", side="SELL", quantity="200", price="10.10")
KEY = NettingKey("ACC-0001", "CP-NRTH", AAPL, date(2026, 11, 27), "USD", PaymentType.DVP)
CHAIN = chain_id(KEY)


def versions() -> list[tuple[int, str, str, Decimal, Decimal]]:
    return list(
        Instruction.objects.filter(chain_id=CHAIN)
        .order_by("version")
        .values_list("version", "kind", "status", "net_quantity", "net_cash")
    )


def test_a_batch_of_trades_nets_into_one_instructed_instruction(settle):
    outcome = settle.trades(T1, T2, T3)
    assert outcome.applied == 3
    assert versions() == [(1, "NET", "INSTRUCTED", D("600"), D("-5990.00"))]
    (sent,) = sent_instructions()
    assert sent["instruction_id"] == f"{CHAIN}-v1"
    assert (sent["securities_direction"], sent["quantity"]) == ("RECEIVE", "600.000000")
    assert (sent["cash_direction"], sent["cash_amount"]) == ("PAY", "5990.00")
    assert sent["obligation_count"] == 3
    assert sent["supersedes"] is None
    assert sent["counterparty_ssi"]["custodian_bic"] == "IRVTUS3N"
    assert Obligation.objects.count() == 3


def test_the_netting_ratio_is_reported_per_settle_date(settle):
    settle.trades(T1, T2, T3, trade("T4", settle_date="2026-11-30"))
    ratios = netting_ratios(date_from=date(2026, 11, 1), date_to=date(2026, 12, 31))
    assert [(r.settle_date, r.obligations, r.instructions, r.ratio) for r in ratios] == [
        (date(2026, 11, 27), 3, 1, D("3.0000")),
        (date(2026, 11, 30), 1, 1, D("1.0000")),
    ]


def test_trades_of_later_batches_re_net_into_a_replacing_version(settle):
    settle.trades(T1)
    settle.trades(T2, T3)
    assert versions() == [
        (1, "NET", "CANCELLED", D("300"), D("-3000.00")),
        (2, "NET", "INSTRUCTED", D("600"), D("-5990.00")),
    ]
    assert sent_instructions()[1]["supersedes"] == f"{CHAIN}-v1"


def test_stale_and_repeated_versions_change_nothing(settle):
    settle.trades(T1, trade("T1", 2, quantity="400"))
    settle.trades(trade("T1", 2, quantity="400"), T1)  # a repeat and a stale version
    assert versions() == [(1, "NET", "INSTRUCTED", D("400"), D("-4000.00"))]
    assert Obligation.objects.get().trade_version == 2


def test_amendment_before_settlement_replaces_the_pending_version(settle):
    settle.trades(T1, T2)
    settle.trades(trade("T2", 2, quantity="450", price="10.02"))
    assert versions() == [
        (1, "NET", "CANCELLED", D("800"), D("-8010.00")),
        (2, "NET", "INSTRUCTED", D("750"), D("-7509.00")),
    ]
    assert Instruction.objects.get(version=1).superseded_by == f"{CHAIN}-v2"


def test_cancel_before_settlement_withdraws_the_instruction(settle):
    settle.trades(T1)
    settle.trades(trade("T1", 2, action="CANCEL", quantity="300"))
    assert versions() == [
        (1, "NET", "CANCELLED", D("300"), D("-3000.00")),
        (2, "CANCEL", "INSTRUCTED", D("0"), D("0")),
    ]
    assert Obligation.objects.get().status == "CANCELLED"


def test_settlement_books_the_ledger_and_a_payment(settle):
    settle.trades(T1, T2, T3)
    v1 = f"{CHAIN}-v1"
    settle.statuses(status(v1, 1, "MATCHED"))
    settle.statuses(status(v1, 2, "SETTLED", quantity="600", cash="-5990.00"))
    row = Instruction.objects.get(instruction_id=v1)
    assert (row.status, row.settled_on) == ("SETTLED", date(2026, 11, 27))
    assert sorted(SettlementMovement.objects.values_list("asset", "amount", "value_date")) == [
        (AAPL, D("600"), date(2026, 11, 27)),
        ("USD", D("-5990.00"), date(2026, 11, 27)),
    ]
    payment = Payment.objects.get()
    assert (payment.debtor, payment.debtor_account) == ("ACC-0001", "BNYM-0740137")
    assert (payment.creditor, payment.creditor_account, payment.creditor_agent) == (
        "CP-NRTH",
        "NRTH-USD-CA0890754",
        "IRVTUS3N",
    )
    assert (payment.amount, payment.currency, payment.status) == (D("5990.00"), "USD", "ACSC")
    assert payment.end_to_end_id == f"{v1}/2"


def test_amendment_after_settlement_is_a_correcting_instruction(settle):
    # Settled +800 / -8010.00; T2 amended to 450 -> target +750 / -7509.00:
    # CORRECTING -50 / +501.00 (DELIVER 50, RECEIVE 501.00); v1 stays settled, unedited.
    settle.trades(T1, T2)
    settle.statuses(status(f"{CHAIN}-v1", 1, "SETTLED", quantity="800", cash="-8010.00"))
    settle.trades(trade("T2", 2, quantity="450", price="10.02"))
    assert versions() == [
        (1, "NET", "SETTLED", D("800"), D("-8010.00")),
        (2, "CORRECTING", "INSTRUCTED", D("-50"), D("501.00")),
    ]
    sent = sent_instructions()[-1]
    assert (sent["kind"], sent["supersedes"]) == ("CORRECTING", None)
    assert (sent["securities_direction"], sent["cash_direction"]) == ("DELIVER", "RECEIVE")


def test_cancel_after_settlement_reverses_by_correction(settle):
    settle.trades(T1)
    settle.statuses(status(f"{CHAIN}-v1", 1, "SETTLED", quantity="300", cash="-3000.00"))
    settle.trades(trade("T1", 2, action="CANCEL", quantity="300"))
    assert versions()[-1] == (2, "CORRECTING", "INSTRUCTED", D("-300"), D("3000.00"))


def test_partial_settlement_books_the_increment_and_opens_a_fail(settle):
    settle.trades(T1)
    v1 = f"{CHAIN}-v1"
    settle.statuses(
        status(v1, 1, "MATCHED"),
        status(
            v1,
            2,
            "PARTIALLY_SETTLED",
            quantity="100",
            cash="-1000.00",
            reason_code="INSUFFICIENT_CASH",
        ),
    )
    row = Instruction.objects.get(instruction_id=v1)
    assert (row.status, row.settled_quantity, row.settled_cash) == (
        "PARTIALLY_SETTLED",
        D("100"),
        D("-1000.00"),
    )
    fail = Fail.objects.get()
    assert (fail.status, fail.reason_code, fail.penalty_basis) == (
        "OPEN",
        "INSUFFICIENT_CASH",
        "LACK_OF_CASH",
    )
    assert (fail.failed_quantity, fail.failed_cash, fail.failed_value) == (
        D("200"),
        D("2000.00"),
        D("2000.00"),
    )
    # The rest settles on Monday: the fail closes that day; the ledger has both increments.
    settle.statuses(status(v1, 3, "SETTLED", day="2026-11-30"))
    fail.refresh_from_db()
    assert (fail.status, fail.settled_on) == ("SETTLED", date(2026, 11, 30))
    assert sorted(
        SettlementMovement.objects.filter(asset=AAPL).values_list("value_date", "amount")
    ) == [
        (date(2026, 11, 27), D("100")),
        (date(2026, 11, 30), D("200")),
    ]
    assert Payment.objects.count() == 2


def test_amendment_after_a_partial_settlement_corrects_only_the_remainder(settle):
    # v1 +300 settled 100 so far; T1 amended to 250 -> residual +150 replaces the remainder.
    settle.trades(T1)
    v1 = f"{CHAIN}-v1"
    settle.statuses(
        status(
            v1,
            1,
            "PARTIALLY_SETTLED",
            quantity="100",
            cash="-1000.00",
            reason_code="INSUFFICIENT_CASH",
        )
    )
    settle.trades(trade("T1", 2, quantity="250"))
    assert versions() == [
        (1, "NET", "CANCELLED", D("300"), D("-3000.00")),
        (2, "CORRECTING", "INSTRUCTED", D("150"), D("-1500.00")),
    ]
    assert Fail.objects.get().status == "CANCELLED"


def test_a_superseded_version_that_settles_anyway_is_corrected(settle):
    settle.trades(T1)
    settle.trades(trade("T1", 2, quantity="250"))  # v2 +250 supersedes v1 +300
    settle.statuses(status(f"{CHAIN}-v1", 1, "SETTLED", quantity="300", cash="-3000.00"))
    assert versions() == [
        (1, "NET", "CANCELLED", D("300"), D("-3000.00")),
        (2, "NET", "CANCELLED", D("250"), D("-2500.00")),
        (3, "CORRECTING", "INSTRUCTED", D("-50"), D("500.00")),
    ]
    assert Instruction.objects.get(version=1).settled_quantity == D("300")


def test_a_failed_instruction_opens_a_fail_valued_at_the_reference_price(settle):
    settle.trades(trade("T1", side="SELL", quantity="300"))
    settle.statuses(status(f"{CHAIN}-v1", 1, "FAILED", reason_code="INSUFFICIENT_SECURITIES"))
    fail = Fail.objects.get()
    # AAPL reference price 231.40 x 300 = 69,420.00
    assert (fail.reason_code, fail.failed_value, fail.calendar_code) == (
        "INSUFFICIENT_SECURITIES",
        D("69420.00"),
        "NYSE",
    )
    assert (fail.intended_settle_date, fail.first_failed_on) == (date(2026, 11, 27),) * 2


def test_repeated_and_stale_statuses_are_applied_once(settle):
    settle.trades(T1)
    v1 = f"{CHAIN}-v1"
    done = status(v1, 2, "SETTLED", quantity="300", cash="-3000.00")
    settle.statuses(status(v1, 1, "MATCHED"), done)
    settle.statuses(done, status(v1, 1, "MATCHED"))
    assert Instruction.objects.get(instruction_id=v1).status == "SETTLED"
    assert SettlementMovement.objects.count() == 2
    assert Payment.objects.count() == 1


def test_a_status_for_an_unknown_instruction_is_dead_lettered(settle):
    outcome = settle.statuses(status("SI-00000000000000000000-v1", 1, "MATCHED"))
    assert outcome.dead_lettered == 1
    reason = UNKNOWN_INSTRUCTION_REASON.format(instruction_id="SI-00000000000000000000-v1")
    assert dead_letters() == [(UNKNOWN_INSTRUCTION, reason)]


def test_a_trade_that_cannot_be_an_obligation_is_dead_lettered(settle):
    outcome = settle.trades(trade("T1", side="SELL", net_amount="-5.00"))
    assert outcome.dead_lettered == 1
    assert dead_letters() == [("InvalidObligation", "T1: cash_amount must be >= 0")]


def test_free_of_payment_trades_move_no_cash(settle):
    fop = trade("F1", payment_type="FOP", ssi=None)
    settle.trades(fop)
    ins = Instruction.objects.get()
    assert (ins.payment_type, ins.net_quantity, ins.net_cash) == ("FOP", D("100"), D("0"))
    settle.statuses(status(ins.instruction_id, 1, "SETTLED", quantity="100"))
    assert SettlementMovement.objects.get().asset == AAPL
    assert not Payment.objects.exists()
    assert SD == "2026-11-27"


def test_the_database_folds_each_chain_as_the_netting_rules_fold_its_history(settle):
    """renet reads a chain's head (kept by delta) and its latest version, not its history: the
    head must hold what netting._chains folds from the whole history."""
    settle.trades(T1, T2)
    settle.statuses(status(f"{CHAIN}-v1", 1, "PARTIALLY_SETTLED", quantity="100", cash="-1000.00"))
    settle.trades(trade("T1", 2, quantity="250"))  # CORRECTING the remainder
    settle.statuses(status(f"{CHAIN}-v1", 2, "SETTLED", quantity="800", cash="-8010.00"))
    settle.trades(trade("T2", 2, action="CANCEL"))  # after settlement: a reversing correction
    settle.trades(trade("T9", quantity="70", account="ACC-0002"))  # another chain, never settled
    rows = Instruction.objects.order_by("chain_id", "version")
    history = [
        netting.Instruction(
            r.instruction_id,
            NettingKey(
                r.account,
                r.counterparty,
                r.instrument,
                r.settle_date,
                r.currency,
                PaymentType(r.payment_type),
            ),
            r.version,
            netting.InstructionKind(r.kind),
            r.net_quantity,
            r.net_cash,
            (),  # the pure fold ignores them; heads do not carry them
            r.supersedes or None,
        )
        for r in rows
    ]
    settled = {r.instruction_id for r in rows if r.status == "SETTLED"}
    partial = {
        r.instruction_id: (r.settled_quantity, r.settled_cash)
        for r in rows
        if r.status != "SETTLED" and (r.settled_quantity or r.settled_cash)
    }
    expected = {
        key: (c.latest, c.settled_quantity, c.settled_cash, c.any_settled)
        for key, c in netting._chains(history, frozenset(settled), partial).items()
    }

    loaded = renet._load({r.chain_id for r in rows})

    assert len(expected) == 2
    assert any(c[3] for c in expected.values())  # something settled: the fold is not trivial
    assert {
        c.key: (c.head.latest, c.head.settled_quantity, c.head.settled_cash, c.head.any_settled)
        for c in loaded
        if c.head is not None
    } == expected
