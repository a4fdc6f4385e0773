"""The per-message decisions of a batch, in memory: pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType

from backoffice.streaming.envelope import Message
from backoffice.streaming.tracing import new_trace
from compliance.batch import BatchInput, RuleRow, process, widest_window
from compliance.ledger import Ledger
from compliance.rules import DEFAULT_RULES, RuleConfig
from tests.compliance.conftest import AAPL, captured
from tests.compliance.test_facts import REFERENCE, state

RULES = [RuleRow(n, d.as_config()) for n, d in enumerate(DEFAULT_RULES, start=1)]


def message(payload, offset=0) -> Message:
    return Message(
        topic="trades.captured",
        partition=0,
        offset=offset,
        key=payload["account"],
        payload=payload,
        schema="trades.captured",
        version=1,
        event_id=None,
        correlation_id=payload["trade_id"],
        trace=new_trace(),
        raw=b"",
    )


def run(*payloads, states=(), open_exceptions=None, restricted=frozenset()):
    inputs = BatchInput(
        ledger=Ledger(states=states),
        rules=RULES,
        reference=REFERENCE,
        restricted=frozenset(restricted),
        open_exceptions=dict(open_exceptions or {}),
    )
    return process([message(p, n) for n, p in enumerate(payloads)], inputs)


def test_a_passing_version_is_emitted_with_the_passed_block_and_validated():
    writes = run(captured())

    [(_, payload)] = writes.validated
    assert payload["compliance"]["outcome"] == "PASSED"
    assert writes.trades["T1"].status == "VALIDATED"
    assert writes.trades["T1"].validated_version == 1
    [verdict] = writes.verdicts
    assert (verdict.trade_id, verdict.trade_version, verdict.passed) == ("T1", 1, True)
    assert len(verdict.results) == len(DEFAULT_RULES)
    assert writes.prices[AAPL].price == Decimal("231.40")


def test_a_failing_version_opens_an_exception_with_its_failed_codes():
    writes = run(captured(), restricted={AAPL})

    assert writes.validated == []
    [exception] = writes.new_exceptions
    assert (exception.status, exception.failed_rules) == ("OPEN", ["RESTRICTED_LIST"])
    [verdict] = writes.verdicts
    assert (verdict.passed, verdict.failed_rules) == (False, ["RESTRICTED_LIST"])
    assert writes.trades["T1"].status == "WAITING"
    assert writes.prices == {}  # a failed price never becomes the reference


def test_an_amend_supersedes_the_open_exception_held_in_the_database():
    held = state(
        "T1",
        status="WAITING",
        validated_version=None,
        validated_notional_base=None,
        validated_settle_date=None,
        validated_counterparty="",
    )
    writes = run(captured("T1", 2, quantity="90"), states=[held], open_exceptions={"T1": 41})

    assert writes.closed == {41: ("SUPERSEDED", 2)}
    assert [p["trade_version"] for _, p in writes.validated] == [2]


def test_a_cancel_of_a_waiting_trade_cancels_the_exception_and_emits_nothing():
    held = state(
        "T1",
        status="WAITING",
        validated_version=None,
        validated_notional_base=None,
        validated_settle_date=None,
        validated_counterparty="",
    )
    writes = run(captured("T1", 2, "CANCEL"), states=[held], open_exceptions={"T1": 41})

    assert writes.closed == {41: ("CANCELLED", 2)}
    assert writes.validated == []
    assert writes.verdicts == []
    assert writes.trades["T1"].status == "CANCELLED"


def test_a_cancel_of_a_validated_trade_is_emitted_without_evaluation():
    writes = run(captured("T1", 2, "CANCEL"), states=[state("T1")])

    [(_, payload)] = writes.validated
    assert (payload["action"], payload["compliance"]["outcome"]) == ("CANCEL", "PASSED")
    assert writes.verdicts == []


def test_stale_versions_and_amends_of_cancelled_trades_are_ignored():
    writes = run(
        captured("T1", 1),
        captured("T2", 4, quantity="1"),
        states=[state("T1", version=3), state("T2", version=3, status="CANCELLED")],
    )

    assert writes.ignored == 2
    assert writes.trades == {}
    assert writes.validated == []
    assert writes.verdicts == []


def test_an_unknown_instrument_is_rejected_and_changes_nothing():
    writes = run(captured("T1", 2, instrument="US0000000002"), states=[state("T1")])

    assert writes.trades == {}
    [(_, error_class, _)] = writes.rejections
    assert error_class == "UnknownInstrument"


def test_a_new_and_its_amend_in_one_batch_supersede_in_memory():
    writes = run(captured("T1"), captured("T1", 2, quantity="90"), restricted={AAPL})

    assert [(e.trade_version, e.status, e.closed_by_version) for e in writes.new_exceptions] == [
        (1, "SUPERSEDED", 2),
        (2, "OPEN", None),
    ]


def test_the_widest_window_ignores_disabled_and_broken_rows():
    rows = [
        *RULES,
        RuleRow(
            20,
            RuleConfig(
                "WASH_TRADE", enabled=False, params=MappingProxyType({"window_seconds": "9000"})
            ),
        ),
        RuleRow(21, RuleConfig("WASH_TRADE", params=MappingProxyType({"window_seconds": "x"}))),
    ]
    assert widest_window(rows) == timedelta(seconds=300)
    assert widest_window([replace(RULES[0])]) == timedelta(0)
