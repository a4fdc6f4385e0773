"""A simulated day through every settlement stage in one process: the outbox is "relayed" by
hand to the stage that consumes each topic, through ``store.apply_batch`` as the consumers do.
The same day as ``test_simulated_day`` without Kafka, so it runs in seconds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.audit.models import AuditEntry
from backoffice.streaming import topics
from backoffice.streaming.envelope import Subscription, decode
from backoffice.streaming.models import DeadLetter, OutboxBatch, OutboxEvent
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Handler, Record, apply_batch
from settlement.models import Break, CustodianInstruction, InjectedDiscrepancy, Instruction
from settlement.policy import SimulatorRates
from settlement.services import custodian_day_close, custodian_statements_publish
from settlement.stages import custodian_simulator, handle_reconciliation, handle_settlement
from tests.settlement.conftest import NOW
from tests.settlement.test_simulated_day import day_of_trades
from tests.streaming.helpers import outbox_events

pytestmark = pytest.mark.django_db

RATES = SimulatorRates(
    ssi_mismatch=Decimal("0.05"),
    fail=Decimal("0.15"),
    partial=Decimal("0.15"),
    recovery=Decimal("0.5"),
    discrepancy=Decimal("0.2"),
)
SEED = 8  # a seed whose two days inject every kind of discrepancy
DAY1, DAY2 = date(2026, 11, 27), date(2026, 11, 30)


class Pipeline:
    """Moves outbox events to the stage that consumes their topic until nothing is left."""

    def __init__(self) -> None:
        simulator = custodian_simulator(SEED, RATES)
        self.routes: dict[str, tuple[str, str, Handler]] = {
            topics.SETTLEMENT_INSTRUCTIONS: (
                "custodian_simulator",
                "settlement.instructions",
                simulator.handler,
            ),
            topics.SETTLEMENT_STATUS: ("settlement", "settlement.status", handle_settlement),
            topics.CUSTODIAN_STATEMENTS: (
                "reconciliation",
                "custodian.statements",
                handle_reconciliation,
            ),
        }
        self.offsets: dict[str, int] = {}

    def pump(self) -> None:
        while events := outbox_events():
            OutboxBatch.objects.all().delete()
            OutboxEvent.objects.all().delete()
            for logical, (stage, schema, handler) in self.routes.items():
                mine = [e for e in events if e.topic == topics.topic(logical)]
                if mine:
                    self._apply(logical, stage, schema, handler, mine)

    def _apply(self, logical, stage, schema, handler, events) -> None:
        records = []
        for event in events:
            offset = self.offsets.get(logical, 0)
            self.offsets[logical] = offset + 1
            key, value = event.key, event.value
            headers = [(k, v.encode()) for k, v in event.headers.items()]
            message = decode(
                subscription=Subscription(logical, schema),
                partition=0,
                offset=offset,
                key=key,
                value=value,
                headers=headers,
                registry=registry(),
            )
            records.append(Record(logical, 0, offset, key, value, headers, message=message))
        apply_batch(stage=stage, group=f"{stage}-test", handler=handler, records=records, now=NOW)


def expected(as_of: date) -> set[tuple[str, str, str]]:
    return set(
        InjectedDiscrepancy.objects.filter(as_of=as_of).values_list(
            "account", "asset", "expected_category"
        )
    )


def breaks() -> dict[tuple[str, str, str], tuple]:
    return {
        (b.account, b.asset, b.category): (
            b.pk,
            b.status,
            b.opened_as_of,
            b.last_seen_as_of,
            b.difference,
        )
        for b in Break.objects.all()
    }


def test_a_day_in_process_produces_exactly_the_injected_breaks(settle):
    first, later, _ = day_of_trades()
    settle.trades(*first)
    pipeline = Pipeline()
    pipeline.pump()
    settle.trades(*later)
    pipeline.pump()
    evening = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    custodian_day_close(business_date=DAY1, seed=SEED, rates=RATES, now=evening)
    assert custodian_day_close(
        business_date=DAY1, seed=SEED, rates=RATES, now=evening
    ).already_closed
    pipeline.pump()
    ours = dict(
        Instruction.objects.exclude(status="CANCELLED").values_list(
            "instruction_id", "status_sequence"
        )
    )
    theirs = dict(
        CustodianInstruction.objects.exclude(state__in=["CANCELLED"]).values_list(
            "instruction_id", "sequence"
        )
    )
    assert ours == theirs
    statuses = set(Instruction.objects.values_list("status", flat=True))
    assert {"SETTLED", "PARTIALLY_SETTLED", "FAILED", "CANCELLED"} <= statuses
    custodian_statements_publish(as_of=DAY1, seed=SEED, rate=RATES.discrepancy, now=evening)
    pipeline.pump()
    assert set(breaks()) == expected(DAY1)

    before, audit = breaks(), AuditEntry.objects.count()
    custodian_statements_publish(as_of=DAY1, seed=SEED, rate=RATES.discrepancy, now=evening)
    pipeline.pump()
    assert (breaks(), AuditEntry.objects.count()) == (before, audit)

    custodian_day_close(business_date=DAY2, seed=SEED, rates=RATES, now=evening)
    pipeline.pump()
    custodian_statements_publish(as_of=DAY2, seed=SEED, rate=RATES.discrepancy, now=evening)
    pipeline.pump()
    now_open = {k for k, v in breaks().items() if v[1] == "OPEN"}
    assert now_open == expected(DAY2)
    assert {k for k, v in breaks().items() if v[1] == "AUTO_RESOLVED"} == expected(DAY1) - expected(
        DAY2
    )
    assert not DeadLetter.objects.exists()
    categories = {c for _, _, c in expected(DAY1) | expected(DAY2)}
    assert categories == {c.value for c in Break.Category}
