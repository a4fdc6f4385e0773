"""The stages of the settlement app: what each consumes and the handler wiring it to services.

* ``settlement`` — trades.validated (obligations, re-netting, instructions out) and
  settlement.status (custodian feedback: transitions, ledger, payments, fails);
* ``reconciliation`` — custodian.statements (breaks);
* ``custodian_simulator`` — settlement.instructions (matching); built per run with its seed
  and rates, as ``run_custodian_simulator`` is configured.
"""

from __future__ import annotations

from collections.abc import Sequence

from backoffice.streaming import topics
from backoffice.streaming.consumer import Stage
from backoffice.streaming.envelope import Message, Subscription
from backoffice.streaming.store import StageContext, StageResult
from settlement.policy import SimulatorRates
from settlement.services import (
    chains_renet,
    custodian_instructions_receive,
    custodian_statuses_apply,
    obligations_apply,
    statements_reconcile,
)


def handle_settlement(messages: Sequence[Message], ctx: StageContext) -> StageResult:
    result = StageResult()
    trades = [m for m in messages if m.topic == topics.TRADES_VALIDATED]
    statuses = [m for m in messages if m.topic == topics.SETTLEMENT_STATUS]
    if trades:
        chains, rejections = obligations_apply(messages=trades, now=ctx.now)
        result.rejections.extend(rejections)
        result.events.extend(chains_renet(chain_ids=chains, now=ctx.now))
    if statuses:
        events, rejections = custodian_statuses_apply(messages=statuses, now=ctx.now)
        result.events.extend(events)
        result.rejections.extend(rejections)
    return result


def handle_reconciliation(messages: Sequence[Message], ctx: StageContext) -> StageResult:
    return StageResult(rejections=statements_reconcile(messages=messages, now=ctx.now))


SETTLEMENT = Stage(
    "settlement",
    [
        Subscription(topics.TRADES_VALIDATED, "trades.validated"),
        Subscription(topics.SETTLEMENT_STATUS, "settlement.status"),
    ],
    handle_settlement,
)

RECONCILIATION = Stage(
    "reconciliation",
    [Subscription(topics.CUSTODIAN_STATEMENTS, "custodian.statements")],
    handle_reconciliation,
)


def custodian_simulator(seed: int, rates: SimulatorRates) -> Stage:
    def handle(messages: Sequence[Message], ctx: StageContext) -> StageResult:
        events = custodian_instructions_receive(
            messages=messages, seed=seed, rates=rates, now=ctx.now
        )
        return StageResult(events=events)

    return Stage(
        "custodian_simulator",
        [Subscription(topics.SETTLEMENT_INSTRUCTIONS, "settlement.instructions")],
        handle,
    )
