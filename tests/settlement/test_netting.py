"""Netting and re-netting against hand-worked examples, plus conservation properties.

Conventions (from the account's side): BUY +quantity / -cash, SELL -quantity / +cash.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.netting import (
    CashDirection,
    Instruction,
    InstructionKind,
    NettingKey,
    Obligation,
    PaymentType,
    SecuritiesDirection,
    Side,
    instruction_id,
    net,
    netting_ratio,
    pending_instructions,
    renet,
    signed_totals,
)

D = Decimal
SD = date(2026, 11, 27)


def ob(
    oid,
    side,
    qty,
    cash,
    *,
    trade=None,
    version=1,
    account="ACC1",
    cpty="BRKA",
    instrument="US0378331005",
    settle=SD,
    ccy="USD",
    pt=PaymentType.DVP,
):
    return Obligation(
        obligation_id=oid,
        trade_id=trade or f"T-{oid}",
        trade_version=version,
        account=account,
        counterparty=cpty,
        instrument=instrument,
        settle_date=settle,
        currency=ccy,
        side=Side(side),
        quantity=D(qty),
        cash_amount=D(cash),
        payment_type=pt,
    )


def only(instructions):
    assert len(instructions) == 1
    return instructions[0]


# --- net() -----------------------------------------------------------------------------------


def test_partial_fills_net_to_one_instruction():
    # One order bought 1000 in three fills, and one sell to the same counterparty, same day:
    #   F1 BUY  300 @ 10.00 = 3000.00   -> +300  -3000.00
    #   F2 BUY  500 @ 10.02 = 5010.00   -> +500  -5010.00
    #   F3 BUY  200 @ 10.05 = 2010.00   -> +200  -2010.00
    #   S1 SELL 400 @ 10.10 = 4040.00   -> -400  +4040.00
    #   net                             -> +600  -5980.00  RECEIVE 600 / PAY 5980.00
    obligations = [
        ob("F1", "BUY", "300", "3000.00"),
        ob("F2", "BUY", "500", "5010.00"),
        ob("F3", "BUY", "200", "2010.00"),
        ob("S1", "SELL", "400", "4040.00"),
    ]
    ins = only(net(obligations))
    assert ins.kind is InstructionKind.NET
    assert ins.version == 1
    assert (ins.net_quantity, ins.net_cash) == (D("600"), D("-5980.00"))
    assert ins.securities_direction is SecuritiesDirection.RECEIVE
    assert ins.quantity == D("600")
    assert ins.cash_direction is CashDirection.PAY
    assert ins.cash_amount == D("5980.00")
    assert ins.obligation_ids == ("F1", "F2", "F3", "S1")
    assert ins.supersedes is None
    # 4 obligations -> 1 instruction on 27 Nov.
    ratio = only(netting_ratio(obligations, [ins]))
    assert (ratio.settle_date, ratio.obligations, ratio.instructions) == (SD, 4, 1)
    assert ratio.ratio == D("4.0000")


def test_net_deliver_and_receive_cash():
    # SELL 1000 @ 25.50 = 25500.00, BUY 250 @ 25.40 = 6350.00 -> -750 / +19150.00
    ins = only(net([ob("S1", "SELL", "1000", "25500.00"), ob("B1", "BUY", "250", "6350.00")]))
    assert ins.securities_direction is SecuritiesDirection.DELIVER
    assert ins.quantity == D("750")
    assert ins.cash_direction is CashDirection.RECEIVE
    assert ins.cash_amount == D("19150.00")


def test_mixed_dvp_and_fop_do_not_net_together():
    # Same account/cpty/instrument/date:
    #   DVP BUY  100, cash 1000.00 -> DVP key: +100 -1000.00
    #   FOP SELL 100, cash 0       -> FOP key: -100     0
    # Across payment types they would net flat on securities, but the CSD settles them as
    # different instruction types, so two instructions.
    dvp, fop = net(
        [
            ob("D1", "BUY", "100", "1000.00"),
            ob("F1", "SELL", "100", "0", pt=PaymentType.FOP),
        ]
    )
    assert dvp.key.payment_type is PaymentType.DVP
    assert (dvp.net_quantity, dvp.net_cash) == (D("100"), D("-1000.00"))
    assert fop.key.payment_type is PaymentType.FOP
    assert (fop.net_quantity, fop.net_cash) == (D("-100"), D("0"))
    assert fop.cash_direction is CashDirection.NONE


def test_flat_quantity_with_cash_yields_cash_only_instruction():
    # BUY 100 @ 10.00 = 1000.00, SELL 100 @ 10.50 = 1050.00 -> 0 / +50.00: cash-only.
    ins = only(net([ob("B1", "BUY", "100", "1000.00"), ob("S1", "SELL", "100", "1050.00")]))
    assert ins.securities_direction is SecuritiesDirection.NONE
    assert ins.quantity == 0
    assert ins.cash_direction is CashDirection.RECEIVE
    assert ins.cash_amount == D("50.00")


def test_flat_flat_yields_no_instruction():
    # BUY 100 @ 10 and SELL 100 @ 10: nothing moves, nothing is instructed.
    obligations = [ob("B1", "BUY", "100", "1000.00"), ob("S1", "SELL", "100", "1000.00")]
    assert net(obligations) == []
    ratio = only(netting_ratio(obligations, []))
    assert (ratio.obligations, ratio.instructions, ratio.ratio) == (2, 0, None)


def test_keys_split_by_counterparty_currency_and_date():
    obligations = [
        ob("A", "BUY", "10", "100.00"),
        ob("B", "BUY", "10", "100.00", cpty="BRKB"),
        ob("C", "BUY", "10", "100.00", ccy="EUR"),
        ob("D", "BUY", "10", "100.00", settle=date(2026, 11, 30)),
    ]
    instructions = net(obligations)
    assert len(instructions) == 4
    assert [i.obligation_ids for i in instructions] == [("C",), ("A",), ("D",), ("B",)]
    # 27 Nov: 3 obligations / 3 instructions; 30 Nov: 1 / 1.
    assert [(r.settle_date, r.ratio) for r in netting_ratio(obligations, instructions)] == [
        (SD, D("1.0000")),
        (date(2026, 11, 30), D("1.0000")),
    ]


def test_instruction_ids_are_deterministic():
    a = net([ob("F1", "BUY", "300", "3000.00"), ob("F2", "BUY", "500", "5010.00")])
    b = net([ob("F2", "BUY", "500", "5010.00"), ob("F1", "BUY", "300", "3000.00")])
    assert a == b
    assert a[0].instruction_id == instruction_id(a[0].key, 1)
    assert a[0].instruction_id.endswith("-v1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"qty": "0"}, "quantity"),
        ({"qty": "-5"}, "quantity"),
        ({"cash": "-1.00"}, "cash_amount"),
        ({"cash": "10.005"}, "minor units"),
        ({"pt": PaymentType.FOP}, "FOP"),
    ],
)
def test_invalid_obligations_rejected(kwargs, message):
    args = {"qty": "10", "cash": "100.00", **kwargs}
    with pytest.raises(ValueError, match=message):
        ob("X", "BUY", args.pop("qty"), args.pop("cash"), **args)


def test_stale_trade_version_and_duplicates_rejected():
    with pytest.raises(ValueError, match="more than one version"):
        net(
            [
                ob("A1", "BUY", "1", "1.00", trade="T"),
                ob("A2", "BUY", "1", "1.00", trade="T", version=2),
            ]
        )
    with pytest.raises(ValueError, match="duplicate"):
        net([ob("A", "BUY", "1", "1.00"), ob("A", "BUY", "1", "1.00", trade="other")])


def test_strings_are_coerced_to_enums():
    o = ob("A", "SELL", "1", "1.00")
    o2 = Obligation(**{**o.__dict__, "side": "SELL", "payment_type": "DVP"})
    assert o2.side is Side.SELL
    assert o2.payment_type is PaymentType.DVP
    with pytest.raises(ValueError, match="SHORT"):
        Obligation(**{**o.__dict__, "side": "SHORT"})


# --- renet(): amendments and cancels ---------------------------------------------------------

F1 = ob("F1", "BUY", "300", "3000.00", trade="T1")
F2 = ob("F2", "BUY", "500", "5010.00", trade="T2")
# T2 amended to 450 @ 10.02 = 4509.00 (a new obligation version).
F2_V2 = ob("F2v2", "BUY", "450", "4509.00", trade="T2", version=2)
# T2 amended again to 400 @ 10.02 = 4008.00.
F2_V3 = ob("F2v3", "BUY", "400", "4008.00", trade="T2", version=3)


def test_renet_same_set_is_idempotent():
    v1 = net([F1, F2])
    assert renet([F1, F2], v1, []) == []
    assert renet([F1, F2], v1, [v1[0].instruction_id]) == []  # settled and unchanged


def test_amendment_before_settlement_replaces_pending_version():
    # v1: F1 + F2 = +800 / -8010.00, pending.
    # T2 amended to 450 / 4509.00 -> target +750 / -7509.00; nothing settled -> v2 NET with the
    # full new net, superseding v1.
    v1 = only(net([F1, F2]))
    assert (v1.net_quantity, v1.net_cash) == (D("800"), D("-8010.00"))
    v2 = only(renet([F1, F2_V2], [v1], []))
    assert v2.kind is InstructionKind.NET
    assert v2.version == 2
    assert v2.supersedes == v1.instruction_id
    assert v2.instruction_id == instruction_id(v1.key, 2)
    assert (v2.net_quantity, v2.net_cash) == (D("750"), D("-7509.00"))
    assert v2.obligation_ids == ("F1", "F2v2")
    assert renet([F1, F2_V2], [v1, v2], []) == []


def test_cancel_before_settlement():
    # Cancel T1: target = F2 alone = +500 / -5010.00 -> v2 NET superseding v1.
    v1 = only(net([F1, F2]))
    v2 = only(renet([F2], [v1], []))
    assert (v2.kind, v2.net_quantity, v2.net_cash) == (InstructionKind.NET, D("500"), D("-5010.00"))
    # Cancel T2 as well: nothing left, nothing settled -> v3 CANCEL (zero amounts).
    v3 = only(renet([], [v1, v2], []))
    assert v3.kind is InstructionKind.CANCEL
    assert (v3.net_quantity, v3.net_cash, v3.obligation_ids) == (D(0), D(0), ())
    assert v3.supersedes == v2.instruction_id
    assert renet([], [v1, v2, v3], []) == []
    assert pending_instructions([v1, v2, v3], []) == []
    # Reinstating after a cancel starts a fresh NET version on the same chain.
    v4 = only(renet([F1], [v1, v2, v3], []))
    assert (v4.kind, v4.version, v4.supersedes) == (InstructionKind.NET, 4, None)


def test_amendment_after_settlement_is_a_correction():
    # v1 settled: +800 / -8010.00.
    # T2 amended to 450 / 4509.00 -> target +750 / -7509.00.
    # Correction = target - settled = -50 / +501.00: DELIVER 50, RECEIVE 501.00. v1 untouched.
    v1 = only(net([F1, F2]))
    settled = [v1.instruction_id]
    v2 = only(renet([F1, F2_V2], [v1], settled))
    assert v2.kind is InstructionKind.CORRECTING
    assert v2.supersedes is None  # nothing pending to replace
    assert (v2.net_quantity, v2.net_cash) == (D("-50"), D("501.00"))
    assert v2.securities_direction is SecuritiesDirection.DELIVER
    assert v2.cash_direction is CashDirection.RECEIVE
    # Amended again before the correction settles: target +700 / -7008.00, settled still
    # +800 / -8010.00 -> residual -100 / +1002.00 replaces the pending correction v2.
    v3 = only(renet([F1, F2_V3], [v1, v2], settled))
    assert v3.kind is InstructionKind.CORRECTING
    assert v3.supersedes == v2.instruction_id
    assert (v3.net_quantity, v3.net_cash) == (D("-100"), D("1002.00"))
    # Amended back to the settled economics: residual 0 / 0 -> cancel the pending correction.
    v4 = only(renet([F1, F2], [v1, v2, v3], settled))
    assert v4.kind is InstructionKind.CANCEL
    assert v4.supersedes == v3.instruction_id


def test_cancel_after_settlement_reverses_by_correction():
    # v1 settled +800 / -8010.00; both trades cancelled -> correction -800 / +8010.00.
    v1 = only(net([F1, F2]))
    v2 = only(renet([], [v1], [v1.instruction_id]))
    assert v2.kind is InstructionKind.CORRECTING
    assert (v2.net_quantity, v2.net_cash) == (D("-800"), D("8010.00"))
    # Once the correction settles too, the key is flat and stays quiet.
    assert renet([], [v1, v2], [v1.instruction_id, v2.instruction_id]) == []


def test_amendment_moving_settle_date_renets_both_keys():
    # T2 re-booked for 30 Nov: 27 Nov key drops to F1 (+300 / -3000.00, v2 NET), 30 Nov key gets
    # its own v1 (+500 / -5010.00).
    v1 = only(net([F1, F2]))
    moved = ob("F2v2", "BUY", "500", "5010.00", trade="T2", version=2, settle=date(2026, 11, 30))
    old_key, new_key = renet([F1, moved], [v1], [])
    assert (old_key.version, old_key.net_quantity, old_key.supersedes) == (
        2,
        D("300"),
        v1.instruction_id,
    )
    assert (new_key.key.settle_date, new_key.version, new_key.net_quantity) == (
        date(2026, 11, 30),
        1,
        D("500"),
    )


def test_superseded_version_that_settled_anyway_is_counted():
    # Race: v1 (+800) was superseded by v2 (+750) but the CSD settled v1 before the cancel
    # arrived. Settled = +800 / -8010.00; v2 still pending but now wrong -> v3 CORRECTING
    # -50 / +501.00 superseding v2.
    v1 = only(net([F1, F2]))
    v2 = only(renet([F1, F2_V2], [v1], []))
    v3 = only(renet([F1, F2_V2], [v1, v2], [v1.instruction_id]))
    assert (v3.kind, v3.supersedes) == (InstructionKind.CORRECTING, v2.instruction_id)
    assert (v3.net_quantity, v3.net_cash) == (D("-50"), D("501.00"))


def test_history_with_duplicate_versions_rejected():
    v1 = only(net([F1]))
    with pytest.raises(ValueError, match="twice"):
        renet([F1], [v1, v1], [])


def test_netting_ratio_ignores_cancels():
    v1 = only(net([F1]))
    v2 = only(renet([], [v1], []))
    row = only(netting_ratio([F1], [v2]))
    assert (row.obligations, row.instructions, row.ratio) == (1, 0, None)


# --- properties ------------------------------------------------------------------------------

ACCOUNTS = ("ACC1", "ACC2")
CPTYS = ("BRKA", "BRKB")
INSTRUMENTS = ("US0378331005", "DE0007164600")
DATES = (date(2026, 11, 27), date(2026, 11, 30))
CCYS = ("USD", "JPY")


@st.composite
def obligation_sets(draw, prefix="O"):
    n = draw(st.integers(min_value=0, max_value=25))
    out = []
    for i in range(n):
        pt = draw(st.sampled_from(PaymentType))
        ccy = draw(st.sampled_from(CCYS))
        places = 0 if ccy == "JPY" else 2
        cash = D(draw(st.integers(min_value=0, max_value=10**7))).scaleb(-places)
        out.append(
            Obligation(
                obligation_id=f"{prefix}{i}",
                trade_id=f"{prefix}T{i}",
                trade_version=1,
                account=draw(st.sampled_from(ACCOUNTS)),
                counterparty=draw(st.sampled_from(CPTYS)),
                instrument=draw(st.sampled_from(INSTRUMENTS)),
                settle_date=draw(st.sampled_from(DATES)),
                currency=ccy,
                side=draw(st.sampled_from(Side)),
                quantity=D(draw(st.integers(min_value=1, max_value=10**6))),
                cash_amount=cash if pt is PaymentType.DVP else D(0),
                payment_type=pt,
            )
        )
    return out


def obligation_totals(obligations):
    totals: dict[NettingKey, tuple[Decimal, Decimal]] = defaultdict(lambda: (D(0), D(0)))
    for o in obligations:
        q, c = totals[o.key]
        totals[o.key] = (q + o.signed_quantity, c + o.signed_cash)
    return {k: v for k, v in totals.items() if v != (0, 0)}


def effective_totals(history, settled):
    """Settled versions plus the live pending version, per key (what will have moved)."""
    live = pending_instructions(history, settled)
    settled_ins = [i for i in history if i.instruction_id in settled]
    return {k: v for k, v in signed_totals(settled_ins + live).items() if v != (0, 0)}


@given(obligation_sets(), st.randoms(use_true_random=False))
def test_net_conserves_and_is_order_independent(obligations, rnd):
    instructions = net(obligations)
    assert dict(signed_totals(instructions)) == obligation_totals(obligations)
    assert all(i.net_quantity != 0 or i.net_cash != 0 for i in instructions)
    shuffled = list(obligations)
    rnd.shuffle(shuffled)
    assert net(shuffled) == instructions
    assert renet(obligations, instructions, []) == []
    keys = [i.key for i in instructions]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@settings(max_examples=60)
@given(
    rounds=st.lists(obligation_sets(), min_size=1, max_size=4),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_renet_rounds_conserve_and_never_edit_settled(rounds, seed):
    # Each round: a new live snapshot (amendments / cancels / new trades all look like a
    # different set), re-net against the history, then settle a random subset of what is live.
    rnd = random.Random(seed)
    history: list[Instruction] = []
    settled: set[str] = set()
    for obligations in rounds:
        issued = renet(obligations, history, settled)
        frozen_before = {i.instruction_id: i for i in history if i.instruction_id in settled}
        history.extend(issued)
        assert effective_totals(history, settled) == obligation_totals(obligations)
        assert renet(obligations, history, settled) == []  # idempotent
        # Settled versions are never reissued or superseded.
        assert all(i.supersedes not in frozen_before for i in issued)
        assert all(i.instruction_id not in frozen_before for i in issued)
        for live in pending_instructions(history, settled):
            if rnd.random() < 0.5:
                settled.add(live.instruction_id)
        assert effective_totals(history, settled) == obligation_totals(obligations)


def test_key_sort_order_is_total():
    k1 = NettingKey("A", "B", "I", SD, "USD", PaymentType.DVP)
    k2 = NettingKey("A", "B", "I", SD, "USD", PaymentType.FOP)
    assert sorted([k2, k1]) == [k1, k2]


# --- partial settlement ------------------------------------------------------------------------


def test_a_partially_settled_version_stays_pending_for_its_remainder():
    # v1 +800 / -8010.00; the custodian settled 400 / -4005.00 of it. Nothing changed: the
    # remainder (+400 / -4005.00) is still what has to settle, so nothing is issued.
    v1 = only(net([F1, F2]))
    partial = {v1.instruction_id: (D("400"), D("-4005.00"))}
    assert renet([F1, F2], [v1], [], partial) == []


def test_amendment_after_a_partial_settlement_corrects_against_what_settled():
    # Settled so far 400 / -4005.00. T2 amended to 450 @ 10.02 -> target +750 / -7509.00.
    # Residual = +350 / -3504.00: a CORRECTING v2 replacing v1's remainder.
    v1 = only(net([F1, F2]))
    partial = {v1.instruction_id: (D("400"), D("-4005.00"))}
    v2 = only(renet([F1, F2_V2], [v1], [], partial))
    assert (v2.kind, v2.supersedes) == (InstructionKind.CORRECTING, v1.instruction_id)
    assert (v2.net_quantity, v2.net_cash) == (D("350"), D("-3504.00"))
    assert renet([F1, F2_V2], [v1, v2], [], partial) == []
    # Both trades cancelled: give back what settled, -400 / +4005.00, replacing v2.
    v3 = only(renet([], [v1, v2], [], partial))
    assert (v3.kind, v3.supersedes) == (InstructionKind.CORRECTING, v2.instruction_id)
    assert (v3.net_quantity, v3.net_cash) == (D("-400"), D("4005.00"))


def test_amended_to_exactly_what_partially_settled_withdraws_the_remainder():
    # Settled 300 / -3000.00 of v1 (+800); trades cut to F1 alone (+300 / -3000.00): residual
    # zero, so the remainder is cancelled.
    v1 = only(net([F1, F2]))
    partial = {v1.instruction_id: (D("300"), D("-3000.00"))}
    v2 = only(renet([F1], [v1], [], partial))
    assert (v2.kind, v2.supersedes, v2.net_quantity) == (
        InstructionKind.CANCEL,
        v1.instruction_id,
        D(0),
    )
