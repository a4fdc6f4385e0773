"""Chain heads kept by delta and membership intervals, against the whole-history netting rules.

Re-netting reads a chain's head (``settlement_chain``) instead of its obligations and history,
so the head must always equal what the tables fold to, and what was instructed must be what
``netting.renet`` would instruct from the whole history, membership included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.streaming.models import DeadLetter, OutboxBatch
from settlement import netting
from settlement.models import (
    ChainMember,
    Fail,
    Instruction,
    NettingChain,
    Obligation,
    Payment,
    SettlementMovement,
)
from settlement.netting import NettingKey, PaymentType, chain_id
from settlement.selectors import instruction_obligation_ids, instructions_netting
from tests.settlement.conftest import AAPL, dead_letters, sent_instructions, status, trade

D = Decimal
pytestmark = pytest.mark.django_db

KEY1 = NettingKey("ACC-0001", "CP-NRTH", AAPL, date(2026, 11, 27), "USD", PaymentType.DVP)
KEY2 = NettingKey("ACC-0002", "CP-NRTH", AAPL, date(2026, 11, 27), "USD", PaymentType.DVP)


def head(key: NettingKey) -> tuple[Any, ...]:
    c = NettingChain.objects.get(chain_id=chain_id(key))
    return (c.target_quantity, c.target_cash, c.obligations, c.version, c.members_changed)


def members(key: NettingKey) -> list[tuple[str, int, int | None]]:
    return sorted(
        ChainMember.objects.filter(chain_id=chain_id(key)).values_list(
            "trade_id", "joined_version", "left_version"
        )
    )


def test_an_amendment_to_another_account_moves_the_trade_between_chains(settle):
    settle.trades(trade("T1"), trade("T2", quantity="50"))
    settle.trades(trade("T1", 2, account="ACC-0002"))

    assert head(KEY1) == (D("50"), D("-500.00"), 1, 2, False)
    assert head(KEY2) == (D("100"), D("-1000.00"), 1, 1, False)
    assert members(KEY1) == [("T1", 1, 2), ("T2", 1, None)]
    assert members(KEY2) == [("T1", 1, None)]
    v1, v2 = Instruction.objects.filter(chain_id=chain_id(KEY1)).order_by("version")
    assert instruction_obligation_ids(v1) == ["T1", "T2"]
    assert instruction_obligation_ids(v2) == ["T2"]
    assert [e["obligation_count"] for e in sent_instructions()] == [2, 1, 1]
    netting_t1 = instructions_netting("T1").order_by("chain_id", "version")
    assert sorted(i.instruction_id for i in netting_t1) == sorted(
        [f"{chain_id(KEY1)}-v1", f"{chain_id(KEY2)}-v1"]
    )


def test_a_trade_that_joins_and_leaves_between_versions_leaves_no_interval(settle):
    # T1 and T2 net flat: nothing is instructed, both are members of the coming version 1.
    settle.trades(trade("T1"), trade("T2", side="SELL"))
    assert not Instruction.objects.exists()
    assert members(KEY1) == [("T1", 1, None), ("T2", 1, None)]
    settle.trades(trade("T2", 2, action="CANCEL"))
    assert members(KEY1) == [("T1", 1, None)]
    assert head(KEY1) == (D("100"), D("-1000.00"), 1, 1, False)
    (v1,) = Instruction.objects.all()
    assert instruction_obligation_ids(v1) == ["T1"]


def test_a_same_amount_swap_of_trades_still_instructs_a_new_version(settle):
    """Membership changed with the amounts unchanged: the custodian must get the new set."""
    settle.trades(trade("T1"))
    settle.trades(trade("T1", 2, action="CANCEL"), trade("T2"))
    v1, v2 = Instruction.objects.order_by("version")
    assert (v2.net_quantity, v2.net_cash, v2.supersedes) == (
        v1.net_quantity,
        v1.net_cash,
        v1.instruction_id,
    )
    assert instruction_obligation_ids(v2) == ["T2"]


def test_a_settlement_on_a_superseded_version_counts_in_the_head(settle):
    settle.trades(trade("T1"))
    settle.trades(trade("T2", quantity="50"))  # v1 superseded by v2
    settle.statuses(status(f"{chain_id(KEY1)}-v1", 1, "SETTLED", quantity="100", cash="-1000.00"))
    c = NettingChain.objects.get(chain_id=chain_id(KEY1))
    assert (c.settled_quantity, c.settled_cash, c.any_settled) == (D("100"), D("-1000.00"), True)
    latest = Instruction.objects.get(chain_id=c.chain_id, version=c.version)
    assert (latest.kind, latest.net_quantity, latest.net_cash) == (
        "CORRECTING",
        D("50"),
        D("-500.00"),
    )


# --- the invariant, on random days ----------------------------------------------------------


@dataclass
class _Book:
    """What the test has sent: each trade's latest version and whether it is cancelled."""

    versions: dict[str, int] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)


trade_step = st.tuples(
    st.just("trade"),
    st.integers(0, 5),  # which trade
    st.sampled_from(["ACC-0001", "ACC-0002"]),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(["100", "250", "40"]),
    st.booleans(),  # cancel instead
)
status_step = st.tuples(
    st.just("status"), st.integers(0, 50), st.sampled_from(["PARTIALLY_SETTLED", "SETTLED"])
)
days = st.lists(st.lists(trade_step, min_size=1, max_size=4) | status_step, max_size=8)


def _clear() -> None:
    for model in (SettlementMovement, Payment, Fail, ChainMember, NettingChain, Instruction):
        model.objects.all().delete()
    Obligation.objects.all().delete()
    DeadLetter.objects.all().delete()
    OutboxBatch.objects.all().delete()  # event ids derive from instruction ids, which recur


def _send_trades(settle: Any, book: _Book, steps: list[tuple[Any, ...]]) -> None:
    payloads = []
    for _, n, account, side, quantity, cancel in steps:
        trade_id = f"T{n}"
        if trade_id in book.cancelled:
            continue
        version = book.versions.get(trade_id, 0) + 1
        book.versions[trade_id] = version
        action = "CANCEL" if cancel and version > 1 else None
        if action:
            book.cancelled.add(trade_id)
        payloads.append(
            trade(trade_id, version, action, account=account, side=side, quantity=quantity)
        )
    if payloads:
        settle.trades(*payloads)


def _send_status(settle: Any, pick: int, state: str) -> None:
    # Live versions and superseded ones (a custodian may settle a version it was withdrawing).
    open_ = list(
        Instruction.objects.exclude(kind="CANCEL")
        .filter(status__in=["INSTRUCTED", "PARTIALLY_SETTLED", "CANCELLED"])
        .order_by("instruction_id")
    )
    if not open_:
        return
    ins = open_[pick % len(open_)]
    if state == "SETTLED":
        q, c = ins.net_quantity, ins.net_cash
    else:
        q = ins.settled_quantity + (ins.remaining_quantity / 2).quantize(D("1"))
        c = ins.settled_cash + (ins.remaining_cash / 2).quantize(D("0.01"))
    settle.statuses(
        status(
            ins.instruction_id,
            ins.status_sequence + 1,
            state,
            account=ins.account,
            quantity=f"{q:f}",
            cash=f"{c:f}",
            reason_code="INSUFFICIENT_CASH" if state == "PARTIALLY_SETTLED" else None,
        )
    )


def _assert_in_line() -> None:
    """Every head equals its tables' fold, and the whole-history rules have nothing to add."""
    obligations = [
        netting.Obligation(
            o.trade_id,
            o.trade_id,
            o.trade_version,
            o.account,
            o.counterparty,
            o.instrument,
            o.settle_date,
            o.currency,
            netting.Side(o.side),
            o.quantity,
            o.cash_amount,
            PaymentType(o.payment_type),
        )
        for o in Obligation.objects.filter(status="ACTIVE")
    ]
    targets: dict[str, tuple[Decimal, Decimal, int]] = {}
    for ob in obligations:
        q, c, n = targets.get(chain_id(ob.key), (D(0), D(0), 0))
        targets[chain_id(ob.key)] = (q + ob.signed_quantity, c + ob.signed_cash, n + 1)
    rows = list(Instruction.objects.order_by("chain_id", "version"))
    history, settled, partial = [], set(), {}
    fold: dict[str, tuple[Decimal, Decimal, int]] = {}
    for r in rows:
        key = NettingKey(
            r.account,
            r.counterparty,
            r.instrument,
            r.settle_date,
            r.currency,
            PaymentType(r.payment_type),
        )
        ids = tuple(instruction_obligation_ids(r))
        history.append(
            netting.Instruction(
                r.instruction_id,
                key,
                r.version,
                netting.InstructionKind(r.kind),
                r.net_quantity,
                r.net_cash,
                ids,
                r.supersedes or None,
            )
        )
        if r.status == "SETTLED":
            settled.add(r.instruction_id)
        elif r.settled_quantity or r.settled_cash:
            partial[r.instruction_id] = (r.settled_quantity, r.settled_cash)
        q, c, v = fold.get(r.chain_id, (D(0), D(0), 0))
        if r.kind != "CANCEL":
            q, c = q + r.settled_quantity, c + r.settled_cash
        fold[r.chain_id] = (q, c, max(v, r.version))
    for chain in NettingChain.objects.all():
        target = targets.get(chain.chain_id, (D(0), D(0), 0))
        assert (chain.target_quantity, chain.target_cash, chain.obligations) == target
        assert (chain.settled_quantity, chain.settled_cash, chain.version) == fold.get(
            chain.chain_id, (D(0), D(0), 0)
        )
    assert set(targets) <= set(NettingChain.objects.values_list("chain_id", flat=True))
    assert netting.renet(obligations, history, settled, partial) == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(day=days)
def test_heads_stay_the_fold_of_the_tables_and_nothing_is_left_to_instruct(settle, day):
    _clear()
    book = _Book()
    for step in day:
        if isinstance(step, list):
            _send_trades(settle, book, step)
        else:
            _send_status(settle, step[1], step[2])
        _assert_in_line()
    assert dead_letters() == []  # every generated trade and status was a valid one
