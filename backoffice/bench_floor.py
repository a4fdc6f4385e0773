"""The null-handler pipeline ``make bench`` measures as the floor: what the hops alone cost.

The four stages of the bench, with the real stages' names (so their consumer groups), topics and
partitions, run by the same runtime the real ones are: ``manage.py consume --stage
backoffice.bench_floor:CAPTURE`` and so on. Each batch is decoded and validated, claimed against
the group's offsets and inbox, its events written to the outbox and its offsets advanced in one
transaction, then published by the stage itself. Only the handler differs: it passes each trade on to
the topic its real stage writes to, unchanged (reporting, the last stage, passes on nothing and
writes nothing). Whatever the null pipeline costs a trade, the framework costs it; the real
pipeline's figures less these are the stages' own work.

The trade travels as the inbound ``trades.executed`` payload all the way, so the enveloped
subscriptions read that schema: the null stages have no reference data to enrich it into
``trades.captured`` and ``trades.validated``, which carry about twice as many fields.

Bench code: nothing in production imports it; the consume command loads it by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from backoffice.streaming import topics
from backoffice.streaming.consumer import Stage
from backoffice.streaming.envelope import Message, Outbound
from backoffice.streaming.store import Handler, StageContext, StageResult
from compliance.stage import STAGE as REAL_COMPLIANCE
from reporting.stage import STAGE as REAL_REPORTING
from settlement.stages import SETTLEMENT as REAL_SETTLEMENT
from trades.stage import CAPTURE as REAL_CAPTURE

# What the null pipeline carries from stage to stage.
PASSED_SCHEMA = "trades.executed"
# The topics a trade travels on; a stage's other inputs (custodian statuses, prices) are consumed
# and dropped, as a real stage would consume them (none arrive in a bench run).
TRADE_PATH = (topics.TRADES_EXECUTED, topics.TRADES_CAPTURED, topics.TRADES_VALIDATED)


def pass_on(next_topic: str | None) -> Handler:
    """A handler that emits each trade-path message to ``next_topic`` as it came (same key, so
    the same partition; derived from it, so its id and origin come from the runtime as a real
    stage's events do); with no ``next_topic``, one that emits nothing."""

    def handle(messages: Sequence[Message], ctx: StageContext) -> StageResult:
        if next_topic is None:
            return StageResult()
        return StageResult(
            events=[
                Outbound(
                    topic=next_topic,
                    key=m.key,
                    schema=m.schema,
                    payload=m.payload,
                    cause=m,
                )
                for m in messages
                if m.topic in TRADE_PATH
            ]
        )

    return handle


def null_stage(real: Stage, next_topic: str | None) -> Stage:
    """``real``'s name and subscriptions with a pass-through handler; the enveloped trade-path
    topics carry the passed-on inbound trade instead of the real stage's enriched one."""
    return Stage(
        real.name,
        [
            replace(s, schema=PASSED_SCHEMA) if s.enveloped and s.topic in TRADE_PATH else s
            for s in real.subscriptions
        ],
        pass_on(next_topic),
    )


CAPTURE = null_stage(REAL_CAPTURE, topics.TRADES_CAPTURED)
COMPLIANCE = null_stage(REAL_COMPLIANCE, topics.TRADES_VALIDATED)
SETTLEMENT = null_stage(REAL_SETTLEMENT, topics.SETTLEMENT_INSTRUCTIONS)
REPORTING = null_stage(REAL_REPORTING, None)
