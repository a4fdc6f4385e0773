"""The chaos run's own logic (no services): its seeded schedule and the expectation it checks the
database against. The run itself is ``make chaos``; that a broken build fails it is
``make chaos-mutants``."""

from __future__ import annotations

import json
from decimal import Decimal

from backoffice import chaos


def sent(
    trade_id: str, version: int, action: str, side: str = "BUY", qty: str = "100"
) -> chaos.Sent:
    payload = {
        "trade_id": trade_id,
        "trade_version": version,
        "action": action,
        "side": side,
        "quantity": qty,
    }
    return chaos.Sent(b"ACC-1", json.dumps(payload).encode(), action)


MESSAGES = [
    sent("T1", 1, "NEW"),
    sent("T1", 2, "AMEND", qty="150"),
    sent("T2", 1, "NEW", side="SELL", qty="40"),
    sent("T2", 2, "CANCEL"),
    sent("T3", 1, "NEW", qty="7"),
    chaos.Sent(b"ACC-1", b'{"trade_id": "T9"', "MALFORMED"),
]


def test_schedule_is_a_function_of_the_seed_with_every_fault_kind() -> None:
    first = chaos.schedule(7, window=100.0, processes=["relay", "capture"], kills=20)
    assert first == chaos.schedule(7, window=100.0, processes=["relay", "capture"], kills=20)
    assert first != chaos.schedule(8, window=100.0, processes=["relay", "capture"], kills=20)
    assert {f.kind for f in first} == set(chaos.FAULTS)
    assert sum(f.kind == "kill9" for f in first) == 20
    assert [f.at for f in first] == sorted(f.at for f in first)


def test_in_force_takes_the_validated_version_from_the_messages_and_drops_cancels() -> None:
    # compliance validated T1 at v1 only (v2 waits in the exception queue); T2 was cancelled;
    # T3 never passed.
    verdicts = {"T1": (1, "WAITING"), "T2": (1, "CANCELLED"), "T3": (None, "WAITING")}
    assert chaos.expect_in_force(MESSAGES, verdicts) == {"T1": (1, "BUY", Decimal("100"))}


def test_compare_in_force_passes_only_an_exact_match() -> None:
    expected = {"T1": (2, "BUY", Decimal("150")), "T3": (1, "BUY", Decimal("7"))}
    exact = {"T1": [(2, "BUY", Decimal("150.000000"))], "T3": [(1, "BUY", Decimal("7"))]}
    assert chaos.compare_in_force("P&L trades", expected, exact).passed


def test_compare_in_force_names_missing_extra_doubled_and_wrong_trades() -> None:
    expected = {"T1": (2, "BUY", Decimal("150")), "T3": (1, "BUY", Decimal("7"))}
    actual = {
        "T1": [(1, "BUY", Decimal("100"))],  # stale version
        "T4": [(1, "SELL", Decimal("5"))],  # never validated
    }
    check = chaos.compare_in_force("settlement obligations", expected, actual)
    assert not check.passed
    assert "1 missing (e.g. T3)" in check.detail
    assert "1 unexpected (e.g. T4)" in check.detail
    assert "1 at the wrong version or quantity (e.g. T1)" in check.detail
    doubled = {"T1": [(2, "BUY", Decimal("150"))] * 2, "T3": [(1, "BUY", Decimal("7"))]}
    assert "1 held twice (e.g. T1)" in chaos.compare_in_force("x", expected, doubled).detail
