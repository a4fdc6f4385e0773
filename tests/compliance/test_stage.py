"""The compliance stage against the real database, through the runtime's batch transaction."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from psycopg.errors import UniqueViolation

from backoffice.audit.models import AuditEntry
from backoffice.streaming import topics
from backoffice.streaming.envelope import Subscription, decode
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Record, apply_batch
from compliance.batch import BatchWrites, RuleResult, Verdict
from compliance.ledger import STATUSES
from compliance.models import (
    ComplianceException,
    ComplianceRule,
    ComplianceTrade,
    ExceptionProposal,
    ReferencePrice,
    RestrictedInstrument,
    VersionVerdict,
)
from compliance.rules import DEFAULT_RULES, REGISTRY
from compliance.selectors import RuleEvaluation, verdict_evaluations
from compliance.services import exception_propose
from compliance.stage import TRADE_COLUMNS, write_effects
from tests.compliance.conftest import (
    AAPL,
    MSFT,
    NOW,
    SAP,
    Feed,
    captured,
    events,
    rejected,
    sap,
    validated,
)
from trades.calendar import CALENDAR_NOT_COVERED
from trades.selectors import reference_snapshot
from trades.stage import handle_capture

PASSED = {"outcome": "PASSED", "exception_id": None, "approved_by": None, "override_reason": None}


def evaluations(**where: Any) -> list[RuleEvaluation]:
    """Every rule row's result, expanded from the verdict rows matching ``where``."""
    verdicts = VersionVerdict.objects.filter(**where).order_by("trade_id", "trade_version")
    return [e for v in verdicts for e in verdict_evaluations(v)]


def failures(**where: Any) -> list[RuleEvaluation]:
    return [e for e in evaluations(**where) if not e.passed]


def evaluation(code: str, **where: Any) -> RuleEvaluation:
    [found] = [e for e in evaluations(**where) if e.code == code]
    return found


def restrict(isin: str = AAPL) -> None:
    RestrictedInstrument.objects.create(
        isin=isin, reason="MNPI", added_by="compliance", added_at=NOW
    )


def test_a_trade_that_passes_every_rule_is_validated_with_outcome_passed(feed):
    outcome = feed(captured())

    assert outcome.emitted == 1
    [event] = validated()
    assert event["compliance"] == PASSED
    assert {k: v for k, v in event.items() if k != "compliance"} == captured()
    trade = ComplianceTrade.objects.get()
    assert (trade.status, trade.version, trade.validated_version) == ("VALIDATED", 1, 1)
    assert trade.notional_base == Decimal("23140")
    verdict = VersionVerdict.objects.get()
    assert (verdict.passed, verdict.failed_rules) == (True, [])
    codes = [e.code for e in evaluations()]
    assert codes == list(REGISTRY)  # every default rule ran, in registry order
    assert failures() == []
    assert not ComplianceException.objects.exists()


def test_a_failing_trade_waits_in_an_open_exception_and_nothing_is_emitted(feed):
    restrict()
    outcome = feed(captured())

    assert outcome.emitted == 0
    exception = ComplianceException.objects.get()
    assert (exception.status, exception.trade_id, exception.trade_version) == ("OPEN", "T1", 1)
    assert exception.failed_rules == ["RESTRICTED_LIST"]
    assert exception.payload == captured()
    assert (exception.account, exception.book) == ("ACC-0001", "EQ-US")
    assert ComplianceTrade.objects.get().status == "WAITING"
    verdict = VersionVerdict.objects.get()
    assert (verdict.passed, verdict.failed_rules) == (False, ["RESTRICTED_LIST"])
    [failed] = failures()
    assert failed.detail == f"instrument {AAPL} is on the restricted list"


def test_the_notional_of_a_euro_trade_is_converted_to_usd_for_the_limits(feed):
    ComplianceRule.objects.filter(code="MAX_NOTIONAL_TRADE").update(threshold=Decimal("20000"))
    feed(sap(quantity="100", price="200.00"))  # 20,000 EUR at EUR/USD 1.1 or so

    trade = ComplianceTrade.objects.get()
    assert trade.notional_base > Decimal("20000")
    [failed] = failures()
    assert failed.code == "MAX_NOTIONAL_TRADE"
    assert failed.detail.endswith("exceeds the per-trade limit 20,000.00 USD")


def test_a_settle_date_on_a_holiday_fails_non_business_settle_date(feed):
    feed(captured(settle_date="2026-11-26"))  # Thanksgiving

    [failed] = failures()
    assert failed.detail == "settle date 2026-11-26 (Thursday) is not a business day"


def test_an_unknown_instrument_is_dead_lettered_with_the_reason(feed):
    feed(captured(instrument="US0000000002"))

    letter = DeadLetter.objects.get()
    assert letter.error_class == "UnknownInstrument"
    assert letter.reason == "instrument US0000000002 is not in the reference data"
    assert not ComplianceTrade.objects.exists()


def test_a_settle_date_past_the_loaded_holidays_is_dead_lettered_with_what_to_load(feed):
    outcome = feed(captured(settle_date="2031-06-03"))

    assert outcome.emitted == 0
    letter = DeadLetter.objects.get()
    assert letter.error_class == "CalendarNotCovered"
    assert letter.reason == CALENDAR_NOT_COVERED.format(
        calendar="NYSE", first="2025-01-01", last="2028-12-31", day="2031-06-03", year=2031
    )
    assert not ComplianceTrade.objects.exists()


def test_the_account_day_total_excludes_earlier_versions_of_the_same_trade(feed):
    ComplianceRule.objects.filter(code="MAX_NOTIONAL_ACCOUNT_DAY").update(
        threshold=Decimal("50000")
    )
    msft: dict[str, Any] = {"instrument": MSFT, "symbol": "MSFT", "price": "400.00"}
    feed(captured("T1", quantity="100", price="200.00"))  # 20,000
    feed(captured("T2", quantity="50", **msft))  # 40,000 so far
    feed(captured("T2", 2, quantity="75", **msft))  # 50,000 with v1 left out: at the limit

    assert ComplianceTrade.objects.get(trade_id="T2").status == "VALIDATED"
    detail = evaluation("MAX_NOTIONAL_ACCOUNT_DAY", trade_id="T2", trade_version=2).detail
    assert detail.startswith("account ACC-0001 notional today 50,000.00 USD (20,000.00 USD already")


def test_a_duplicate_later_in_the_same_batch_is_caught(feed):
    feed(
        captured("T1"),
        captured("T2", trade_time="2026-11-25T15:00:30Z"),
    )

    assert [e["trade_id"] for e in validated()] == ["T1"]
    exception = ComplianceException.objects.get()
    assert (exception.trade_id, exception.failed_rules) == ("T2", ["SUSPECTED_DUPLICATE"])


def test_a_wash_trade_against_a_trade_of_an_earlier_batch_is_caught(feed):
    feed(captured("T1", side="BUY"))
    feed(captured("T2", side="SELL", quantity="40", trade_time="2026-11-25T15:04:00Z"))

    exception = ComplianceException.objects.get()
    assert exception.failed_rules == ["WASH_TRADE"]


def test_a_passed_trade_sets_the_reference_price_and_a_far_price_then_fails_fat_finger(feed):
    feed(captured("T1", price="100.00"))
    feed(captured("T2", price="110.00", quantity="7", trade_time="2026-11-25T15:30:00Z"))

    price = ReferencePrice.objects.get(isin=AAPL)
    assert (price.price, price.source) == (Decimal("100.00"), "TRADE")
    [failed] = failures(trade_id="T2")
    assert failed.code == "FAT_FINGER"
    assert failed.detail == (
        "price 110.00 is 10.00 % away from the last price 100.00, beyond the tolerance of 5.00 %"
    )


def test_an_older_reference_price_never_overwrites_a_newer_one(feed):
    feed(captured("T1", price="100.00", trade_time="2026-11-25T15:30:00Z"))
    feed(captured("T2", price="101.00", quantity="3", trade_time="2026-11-25T15:00:00Z"))

    assert ReferencePrice.objects.get(isin=AAPL).price == Decimal("100.00")


def test_credit_exposure_counts_validated_unsettled_trades_of_the_counterparty(feed):
    ComplianceRule.objects.filter(code="MAX_NOTIONAL_TRADE").update(threshold=Decimal("1E12"))
    ComplianceRule.objects.filter(code="MAX_NOTIONAL_ACCOUNT_DAY").update(threshold=Decimal("1E12"))
    # CP-MERI has a 75,000,000 USD limit.
    feed(captured("T1", counterparty="CP-MERI", quantity="300000", price="200.00"))  # 60m
    feed(
        captured(
            "T2",
            counterparty="CP-MERI",
            quantity="100000",
            price="200.00",
            account="ACC-0002",
            trade_time="2026-11-25T15:20:00Z",
        )
    )  # +20m

    exception = ComplianceException.objects.get()
    assert (exception.trade_id, exception.failed_rules) == ("T2", ["CREDIT_LIMIT"])
    detail = evaluation("CREDIT_LIMIT", trade_id="T2").detail
    assert detail.startswith("counterparty CP-MERI exposure 80,000,000.00 USD after this trade")


def test_settled_trades_no_longer_count_towards_exposure(feed):
    ComplianceRule.objects.filter(
        code__in=["MAX_NOTIONAL_TRADE", "MAX_NOTIONAL_ACCOUNT_DAY"]
    ).update(threshold=Decimal("1E12"))
    feed(
        captured(
            "T1",
            counterparty="CP-MERI",
            quantity="300000",
            price="200.00",
            trade_date="2026-11-20",
            trade_time="2026-11-20T15:00:00Z",
            settle_date="2026-11-23",
        )
    )
    feed(captured("T2", counterparty="CP-MERI", quantity="300000", price="200.00"))

    assert ComplianceTrade.objects.get(trade_id="T2").status == "VALIDATED"


def test_a_stale_or_repeated_version_is_ignored(feed):
    feed(captured("T1", 2, quantity="50"))
    feed(captured("T1", 1), captured("T1", 2, quantity="50"))

    assert [e["trade_version"] for e in validated()] == [2]
    assert not VersionVerdict.objects.filter(trade_version=1).exists()


def test_amending_a_waiting_trade_supersedes_the_exception_and_invalidates_its_proposal(
    feed, analyst
):
    restrict()
    feed(captured("T1"))
    exception = ComplianceException.objects.get()
    proposal = exception_propose(
        exception_id=exception.pk, actor=analyst, action="APPROVE", reason="client order", now=NOW
    )
    RestrictedInstrument.objects.all().delete()

    feed(captured("T1", 2, quantity="90"))

    exception.refresh_from_db()
    proposal.refresh_from_db()
    assert (exception.status, exception.resolved_at) == ("SUPERSEDED", NOW)
    assert (proposal.status, proposal.resolved_by_name) == ("INVALIDATED", "system")
    assert [(e["trade_version"], e["action"]) for e in validated()] == [(2, "AMEND")]
    entries = AuditEntry.objects.filter(actor_name="system").order_by("id")
    assert [e.action for e in entries] == [
        "compliance.exception.superseded",
        "compliance.exception.proposal_invalidated",
    ]
    assert entries[0].reason == "trade T1 was amended to version 2"


def test_a_failing_amend_of_a_validated_trade_waits_and_the_old_version_stays_in_force(feed):
    feed(captured("T1"))
    restrict()
    feed(captured("T1", 2, quantity="90"))

    trade = ComplianceTrade.objects.get()
    assert (trade.status, trade.version, trade.validated_version) == ("WAITING", 2, 1)
    assert [e["trade_version"] for e in validated()] == [1]
    assert ComplianceException.objects.get().trade_version == 2


def test_cancelling_a_validated_trade_emits_a_cancel(feed):
    feed(captured("T1"))
    feed(captured("T1", 2, "CANCEL"))

    assert [(e["trade_version"], e["action"]) for e in validated()] == [(1, "NEW"), (2, "CANCEL")]
    assert validated()[1]["compliance"] == PASSED
    assert ComplianceTrade.objects.get().status == "CANCELLED"
    assert not VersionVerdict.objects.filter(trade_version=2).exists()  # cancels are not judged


def test_cancelling_a_waiting_trade_cancels_its_exception_and_emits_nothing(feed):
    restrict()
    feed(captured("T1"))
    feed(captured("T1", 2, "CANCEL"))

    assert validated() == []
    assert ComplianceException.objects.get().status == "CANCELLED"
    assert ComplianceTrade.objects.get().status == "CANCELLED"


def test_cancelling_a_trade_with_a_waiting_amend_cancels_the_exception_and_emits_a_cancel(feed):
    feed(captured("T1"))
    restrict()
    feed(captured("T1", 2, quantity="90"))
    feed(captured("T1", 3, "CANCEL"))

    assert [(e["trade_version"], e["action"]) for e in validated()] == [(1, "NEW"), (3, "CANCEL")]
    assert ComplianceException.objects.get().status == "CANCELLED"


def test_a_cancel_of_an_unknown_trade_is_recorded_and_a_late_new_is_stale(feed):
    feed(captured("T1", 2, "CANCEL"))
    feed(captured("T1", 1))

    assert validated() == []
    trade = ComplianceTrade.objects.get()
    assert (trade.status, trade.version) == ("CANCELLED", 2)


def test_a_new_and_its_amend_in_one_batch_leave_one_superseded_exception(feed):
    restrict()
    feed(captured("T1"), captured("T1", 2, quantity="90"))

    statuses = sorted(ComplianceException.objects.values_list("trade_version", "status"))
    assert statuses == [(1, "SUPERSEDED"), (2, "OPEN")]
    superseded = AuditEntry.objects.get(action="compliance.exception.superseded")
    assert superseded.reason == "trade T1 was amended to version 2"


def test_a_redelivered_batch_changes_nothing(feed):
    feed(captured("T1"))
    feed.offset = 0
    outcome = feed(captured("T1"))

    assert outcome.skipped == 1
    assert len(validated()) == 1


def test_each_judged_version_gets_one_verdict_row_and_a_redelivery_adds_none(feed):
    first = (captured("T1"), captured("T1", 2, quantity="90"))
    feed(*first)
    feed(captured("T1", 3, quantity="80"), captured("T1", 4, "CANCEL"))

    def stored() -> list[tuple[int, int]]:
        rows = VersionVerdict.objects.order_by("trade_version")
        return [(v.trade_version, len(v.results)) for v in rows]

    judged = [(1, len(DEFAULT_RULES)), (2, len(DEFAULT_RULES)), (3, len(DEFAULT_RULES))]
    assert stored() == judged  # the NEW and both AMENDs; the CANCEL is not judged
    feed.offset = 0
    assert feed(*first).skipped == 2  # the same offsets again
    Feed(partition=1)(*first)  # the same versions at other offsets
    assert stored() == judged


def test_a_second_copy_of_a_verdict_is_refused_and_one_row_per_version_stays(reference):
    results = (RuleResult(7, "RESTRICTED_LIST", False, "on the list"),)
    writes = BatchWrites(verdicts=[Verdict("T1", 1, results), Verdict("T1", 2, ())])
    write_effects(writes, NOW)

    # Verdicts are COPYed with no conflict clause: a copy fails its batch rather than vanish.
    with pytest.raises(UniqueViolation, match="uniq_version_verdict"), transaction.atomic():
        write_effects(BatchWrites(verdicts=[Verdict("T1", 2, results)]), NOW)

    rows = VersionVerdict.objects.order_by("trade_version")
    assert [(v.trade_version, v.passed, v.failed_rules) for v in rows] == [
        (1, False, ["RESTRICTED_LIST"]),
        (2, True, []),
    ]
    assert rows[0].results == [
        {"rule_id": 7, "code": "RESTRICTED_LIST", "passed": False, "detail": "on the list"}
    ]


def test_a_rejected_trade_is_not_emitted_by_the_stage(feed):
    restrict()
    feed(captured("T1"))
    assert rejected() == []


@pytest.mark.parametrize("params", [{"window_seconds": "soon"}, "not an object"])
def test_a_misconfigured_rule_fails_trades_closed(feed, params):
    ComplianceRule.objects.filter(code="WASH_TRADE").update(params=params)
    feed(captured("T1"))

    [failed] = failures()
    assert failed.code == "WASH_TRADE"
    assert failed.detail.startswith("rule misconfigured: ")
    assert not ExceptionProposal.objects.exists()


def test_several_rows_of_one_code_each_give_a_verdict(feed):
    ComplianceRule.objects.create(
        code="MAX_NOTIONAL_TRADE", threshold=Decimal("1000"), scope_books=["EQ-US"]
    )
    feed(captured("T1"))

    results = [e for e in evaluations() if e.code == "MAX_NOTIONAL_TRADE"]
    assert sorted(e.passed for e in results) == [False, True]
    assert len({e.rule_id for e in results}) == 2  # each against the row that produced it
    assert ComplianceException.objects.get().failed_rules == ["MAX_NOTIONAL_TRADE"]


def test_statuses_of_the_pure_ledger_match_the_model():
    assert set(STATUSES) == set(ComplianceTrade.Status.values)


def _many(count: int) -> list[dict[str, Any]]:
    accounts = ["ACC-0001", "ACC-0002", "ACC-0003"]
    return [
        captured(
            f"B{n:05d}",
            account=accounts[n % 3],
            quantity=str(10 + n),
            trade_time=f"2026-11-25T15:{n // 60 % 60:02d}:{n % 60:02d}Z",
        )
        for n in range(count)
    ]


def test_a_batch_costs_the_same_number_of_queries_whatever_its_size(feed):
    small, large = _many(300)[:10], _many(300)[10:]
    reference_snapshot()  # cached until reference data changes: both batches find it
    with CaptureQueriesContext(connection) as few:
        feed(*small)
    with CaptureQueriesContext(connection) as many:
        feed(*large)

    assert ComplianceTrade.objects.count() == 300
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_trade_state_fields_are_the_trade_table_columns():
    columns = {f.column for f in ComplianceTrade._meta.concrete_fields} - {"id"}
    assert set(TRADE_COLUMNS) == columns


def test_what_the_capture_stage_emits_is_what_compliance_reads(feed):
    # The contract between the two stages, checked with the real capture handler.
    executed = {
        "trade_id": "C1",
        "trade_version": 1,
        "action": "NEW",
        "account": "ACC-0007",
        "counterparty": "CP-NRTH",
        "instrument": SAP,
        "side": "SELL",
        "quantity": "100",
        "price": "228.45",
        "currency": "EUR",
        "trade_date": "2026-11-25",
        "trade_time": "2026-11-25T15:00:00Z",
        "venue": "XETR",
        "trader": "jdoe",
    }
    value = json.dumps(executed).encode()
    inbound = Subscription("trades.executed", "trades.executed", enveloped=False)
    message = decode(
        subscription=inbound,
        partition=0,
        offset=0,
        key=b"ACC-0007",
        value=value,
        headers=[],
        registry=registry(),
    )
    record = Record("trades.executed", 0, 0, b"ACC-0007", value, [], message=message)
    apply_batch(
        stage="capture", group="capture-test", handler=handle_capture, records=[record], now=NOW
    )
    [captured_event] = events(topics.TRADES_CAPTURED)

    feed(captured_event["payload"])

    [event] = validated()
    assert (event["trade_id"], event["compliance"]["outcome"]) == ("C1", "PASSED")
    assert ComplianceTrade.objects.get().notional_base > Decimal("22845")  # EUR -> USD


def test_history_is_read_per_account_and_instrument_within_the_window_of_their_own_trades(feed):
    """A batch with two pairs far apart in time reads, for each pair, only the trades within the
    window of that pair's own trades, not everything in the batch's whole time span."""
    from datetime import timedelta

    from compliance.selectors import _recent

    feed(
        captured("T1", trade_time="2026-11-25T15:00:00Z"),
        captured("T2", quantity="7", trade_time="2026-11-25T16:00:00Z"),
    )
    batch = [
        captured("N1", trade_time="2026-11-25T15:03:00Z"),
        captured("N2", account="ACC-0002", trade_time="2026-11-25T16:00:00Z"),
    ]
    found = _recent(batch, ["N1", "N2"], timedelta(minutes=5))
    assert [(account, trade.trade_id) for account, _, trade in found] == [("ACC-0001", "T1")]


def test_history_is_read_only_at_the_prices_of_the_batch_and_numerically(feed):
    """Both window checks match only a trade at the trade's own price, so the history read
    leaves out the other prices; equal prices match whatever their scale."""
    from datetime import timedelta

    from compliance.selectors import _recent

    feed(
        captured("T1", price="10.00", trade_time="2026-11-25T15:00:00Z"),
        captured("T2", price="10.01", quantity="7", trade_time="2026-11-25T15:01:00Z"),
    )
    batch = [captured("N1", price="10.0", side="SELL", trade_time="2026-11-25T15:02:00Z")]
    found = _recent(batch, ["N1"], timedelta(minutes=5))
    assert [trade.trade_id for _, _, trade in found] == ["T1"]

    feed(*batch)
    exception = ComplianceException.objects.get()
    assert (exception.trade_id, exception.failed_rules) == ("N1", ["WASH_TRADE"])
