"""A simulated settlement day end to end: real broker, database and processes.

Trades are published on trades.validated (with amendments and cancels); consume_settlement nets
them and instructs; run_custodian_simulator matches, settles, partially settles and fails them
(seeded) and sends end-of-day statements with injected discrepancies; consume_reconciliation
turns the statements into breaks. The expected breaks come from the simulator's record of what
it injected, not from the reconciliation code: exactly those, no more and no fewer. Re-running
the statement changes nothing; the next day's statement auto-resolves what disappeared.
"""

from __future__ import annotations

import random
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Count

from backoffice.audit.models import AuditEntry
from backoffice.streaming import topics
from backoffice.streaming.envelope import Outbound, encode
from backoffice.streaming.kafka_admin import ALL_TOPICS, ensure_topics
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.schemas import registry
from backoffice.streaming.selectors import outbox_backlog
from settlement.models import (
    Break,
    CustodianInstruction,
    CustodianStatement,
    Fail,
    InjectedDiscrepancy,
    Instruction,
    Obligation,
    Payment,
    ReconciliationRun,
)
from tests.conftest import wait_until
from tests.settlement.conftest import NOW, trade

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DAY1, DAY2 = "2026-11-27", "2026-11-30"
SEED = "8"  # a seed whose two days inject every kind of discrepancy
RATES = [
    "--seed",
    SEED,
    "--ssi-mismatch-rate",
    "0.05",
    "--fail-rate",
    "0.15",
    "--partial-rate",
    "0.15",
    "--recovery-rate",
    "0.5",
    "--discrepancy-rate",
    "0.2",
]
US = [  # (isin, symbol, market, asset class, csdr class, price)
    ("US0378331005", "AAPL", "XNAS", "EQUITY", "LIQUID_SHARES", "231.40"),
    ("US5949181045", "MSFT", "XNAS", "EQUITY", "LIQUID_SHARES", "418.25"),
    ("US0231351067", "AMZN", "XNAS", "EQUITY", "LIQUID_SHARES", "205.10"),
    ("US67066G1040", "NVDA", "XNAS", "EQUITY", "LIQUID_SHARES", "142.60"),
    ("US78462F1030", "SPY", "ARCX", "ETF", "OTHER", "598.40"),
]
EU = [
    ("DE0007164600", "SAP", "XETR", "EQUITY", "LIQUID_SHARES", "228.45"),
    ("DE0007236101", "SIE", "XETR", "EQUITY", "LIQUID_SHARES", "186.30"),
    ("FR0000121014", "MC", "XPAR", "EQUITY", "LIQUID_SHARES", "642.30"),
]
ACCOUNTS = {"ACC-0001": US, "ACC-0002": US, "ACC-0003": US, "ACC-0007": EU, "ACC-0008": EU}
BOOKS = {"US": ("EQ-US", "USD", "FIFO"), "EU": ("EQ-EU", "EUR", "AVERAGE")}
COUNTERPARTIES = ["CP-NRTH", "CP-HRBR", "CP-SUMT"]


Trades = list[dict[str, Any]]


def day_of_trades() -> tuple[Trades, Trades, dict[str, tuple[int, str]]]:
    """160 trades; amendments and cancels of some; each trade's final (version, status)."""
    rnd = random.Random(42)
    first, later, final = [], [], {}
    for n in range(160):
        account = rnd.choice(sorted(ACCOUNTS))
        isin, symbol, market, asset_class, csdr, price = rnd.choice(ACCOUNTS[account])
        book, currency, method = BOOKS[
            "US" if account in ("ACC-0001", "ACC-0002", "ACC-0003") else "EU"
        ]
        fields: dict[str, Any] = {
            "account": account,
            "book": book,
            "book_base_currency": currency,
            "pnl_method": method,
            "counterparty": rnd.choice(COUNTERPARTIES),
            "instrument": isin,
            "symbol": symbol,
            "market": market,
            "venue": market,
            "asset_class": asset_class,
            "csdr_class": csdr,
            "currency": currency,
            "ssi": None,
            "side": rnd.choice(["BUY", "BUY", "SELL"]),
            "quantity": str(rnd.randint(1, 40) * 25),
            "price": f"{Decimal(price) * Decimal(rnd.randint(97, 103)) / 100:.2f}",
            "settle_date": DAY1 if rnd.random() < 0.85 else DAY2,
        }
        trade_id = f"D{n:04d}"
        first.append(trade(trade_id, **fields))
        final[trade_id] = (1, "ACTIVE")
        roll = rnd.random()
        if roll < 0.08:
            later.append(
                trade(trade_id, 2, **{**fields, "quantity": str(int(fields["quantity"]) + 50)})
            )
            final[trade_id] = (2, "ACTIVE")
        elif roll < 0.12:
            later.append(trade(trade_id, 2, action="CANCEL", **fields))
            final[trade_id] = (2, "CANCELLED")
    return first, later, final


def publish(producer: Any, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        event = Outbound(
            topic=topics.TRADES_VALIDATED,
            key=payload["account"],
            schema="trades.validated",
            payload=payload,
        )
        encoded = encode(event, registry=registry(), event_id=uuid.uuid4(), occurred_at=NOW)
        producer.send(
            topics.topic(topics.TRADES_VALIDATED),
            key=encoded.key,
            value=encoded.value,
            headers=[(k, v.encode()) for k, v in encoded.headers.items()],
        )
    producer.flush()


def trades_applied(final: dict[str, tuple[int, str]]) -> bool:
    held = {
        t: (v, s)
        for t, v, s in Obligation.objects.values_list("trade_id", "trade_version", "status")
    }
    return held == final


def in_sync() -> bool:
    """Both sides agree: every instruction reached the custodian, every answer was applied."""
    if outbox_backlog():
        return False
    ours = dict(
        Instruction.objects.exclude(status="CANCELLED")
        .exclude(kind="CANCEL")
        .values_list("instruction_id", "status_sequence")
    )
    theirs = dict(
        CustodianInstruction.objects.exclude(state__in=["CANCELLED", "IGNORED"]).values_list(
            "instruction_id", "sequence"
        )
    )
    every = set(Instruction.objects.values_list("instruction_id", flat=True))
    received = set(CustodianInstruction.objects.values_list("instruction_id", flat=True))
    return bool(ours) and ours == theirs and every == received


def breaks_by_key() -> dict[tuple[str, str, str], tuple]:
    return {
        (b.account, b.asset, b.category): (
            b.pk,
            b.status,
            b.opened_as_of,
            b.last_seen_as_of,
            b.difference,
            b.amount,
            b.closed_at,
        )
        for b in Break.objects.all()
    }


def expected(as_of: str) -> set[tuple[str, str, str]]:
    return set(
        InjectedDiscrepancy.objects.filter(as_of=as_of).values_list(
            "account", "asset", "expected_category"
        )
    )


def statements_reconciled(revision: int, as_of: str) -> bool:
    sent = CustodianStatement.objects.filter(as_of=as_of, revision=revision).count()
    done = ReconciliationRun.objects.filter(as_of=as_of, revision=revision).count()
    return sent > 0 and done == sent


def test_a_simulated_day_produces_exactly_the_injected_breaks(processes, kafka_producer):
    call_command("load_reference_data", verbosity=0)
    ensure_topics(ALL_TOPICS)
    first, later, final = day_of_trades()
    publish(kafka_producer, first)
    processes.start("consume_settlement", name="settlement")
    processes.start("relay_outbox", name="relay")
    processes.start("run_custodian_simulator", *RATES, name="custodian")
    processes.start("consume_reconciliation", name="reconciliation")
    wait_until(in_sync, timeout=90, what="first versions instructed and matched")
    publish(kafka_producer, later)  # amendments and cancels of instructed trades: re-netting
    wait_until(lambda: trades_applied(final), timeout=90, what="every trade version applied")
    wait_until(in_sync, timeout=90, what="instructions matched at the custodian")
    closed = processes.run("run_custodian_simulator", "--close-day", DAY1, *RATES)
    assert closed.returncode == 0, closed.stderr
    assert closed.stdout.startswith(f"{DAY1} closed: "), closed.stdout
    wait_until(in_sync, timeout=90, what="day 1 statuses applied")

    # The day had fails, partial settlements and SSI mismatches, and re-netted amendments.
    states = dict(
        Instruction.objects.values("status").annotate(n=Count("id")).values_list("status", "n")
    )
    assert states.get("SETTLED", 0) > 20
    assert states.get("PARTIALLY_SETTLED", 0) > 0
    assert Fail.objects.filter(reason_code="SSI_MISMATCH").exists()
    assert Fail.objects.exclude(reason_code="SSI_MISMATCH").exists()
    assert states.get("CANCELLED", 0) > 0
    assert Payment.objects.count() > 20

    published = processes.run("run_custodian_simulator", "--statement-date", DAY1, *RATES)
    assert published.returncode == 0, published.stderr
    wait_until(
        lambda: statements_reconciled(1, DAY1), timeout=90, what="day 1 statements reconciled"
    )

    day1 = expected(DAY1)
    assert len({category for _, _, category in day1}) >= 4, day1
    assert set(breaks_by_key()) == day1
    assert set(Break.objects.values_list("status", "opened_as_of")) == {
        ("OPEN", date(2026, 11, 27))
    }

    # Re-running the same statement changes nothing at all.
    before, audit = breaks_by_key(), AuditEntry.objects.count()
    again = processes.run("run_custodian_simulator", "--statement-date", DAY1, *RATES)
    assert again.returncode == 0, again.stderr
    wait_until(lambda: statements_reconciled(2, DAY1), timeout=90, what="re-run reconciled")
    assert breaks_by_key() == before
    assert AuditEntry.objects.count() == audit

    # Next business day: the rest settles or keeps failing; a new statement, new injections.
    closed = processes.run("run_custodian_simulator", "--close-day", DAY2, *RATES)
    assert closed.returncode == 0, closed.stderr
    wait_until(in_sync, timeout=90, what="day 2 statuses applied")
    published = processes.run("run_custodian_simulator", "--statement-date", DAY2, *RATES)
    assert published.returncode == 0, published.stderr
    wait_until(
        lambda: statements_reconciled(1, DAY2), timeout=90, what="day 2 statements reconciled"
    )

    day2 = expected(DAY2)
    now_open = {k for k, v in breaks_by_key().items() if v[1] == "OPEN"}
    assert now_open == day2
    gone = {k for k, v in breaks_by_key().items() if v[1] == "AUTO_RESOLVED"}
    assert gone == day1 - day2
    assert {c for _, _, c in day1 | day2} == {c.value for c in Break.Category}
    assert not DeadLetter.objects.exists()
