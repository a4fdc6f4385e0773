"""What one batch of captured trades does, decided in memory (pure: no Django, no I/O).

The stage loads everything a batch needs (``BatchInput``), calls :func:`process` and writes the
returned ``BatchWrites`` in bulk. Messages are taken in order; each sees the state left by the
ones before it through the :class:`~compliance.ledger.Ledger`. The outcomes, per message:

* version <= the version held: stale, ignored (idempotent).
* CANCEL: never evaluated. An OPEN exception of the trade becomes CANCELLED. If a version is in
  force downstream, a CANCEL is emitted on trades.validated; otherwise nothing is emitted. An
  unknown trade is recorded as CANCELLED so a late NEW is recognised as stale.
* NEW/AMEND of a cancelled trade: ignored (a cancel is final; capture refuses these too).
* NEW/AMEND otherwise: an OPEN exception of an earlier version becomes SUPERSEDED; the version is
  evaluated. Pass: emitted on trades.validated (outcome PASSED) and its price becomes the
  instrument's reference price. Fail: a new OPEN exception; nothing is emitted, and a version
  validated earlier stays in force downstream until a decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from backoffice.streaming.envelope import Message
from compliance.facts import FactsError, Reference, notional_base, parse_time, trade_facts
from compliance.ledger import CANCELLED, VALIDATED, WAITING, LastPrice, Ledger, TradeState
from compliance.rules import Context, PreparedRule, RuleConfig, RuleConfigError, TradeFacts
from compliance.rules.params import int_param

OPEN = "OPEN"
SUPERSEDED = "SUPERSEDED"
EXCEPTION_CANCELLED = "CANCELLED"
WINDOW_RULES = ("WASH_TRADE", "SUSPECTED_DUPLICATE")
PASSED_BLOCK: Mapping[str, Any] = {
    "outcome": "PASSED",
    "exception_id": None,
    "approved_by": None,
    "override_reason": None,
}


@dataclass(frozen=True)
class RuleRow:
    """A ``ComplianceRule`` row: its id and its configuration."""

    rule_id: int
    config: RuleConfig


@dataclass(frozen=True)
class RuleResult:
    """One rule row's result on a version (the row's id: several rows may share a code)."""

    rule_id: int
    code: str
    passed: bool
    detail: str

    def as_json(self) -> dict[str, object]:
        # By hand: dataclasses.asdict deep-copies every field, 0.15 CPU-ms per version.
        return {
            "rule_id": self.rule_id,
            "code": self.code,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    """A judged version: every applicable rule row's result, in evaluation order."""

    trade_id: str
    trade_version: int
    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed_rules(self) -> list[str]:
        """The failing rule rows' codes, in evaluation order (a code twice if two rows failed)."""
        return [r.code for r in self.results if not r.passed]


@dataclass
class NewException:
    """An exception created by this batch (its status may change before it is written)."""

    trade_id: str
    trade_version: int
    account: str
    book: str
    failed_rules: list[str]
    payload: dict[str, Any]
    status: str = OPEN
    closed_by_version: int | None = None


@dataclass
class BatchInput:
    """Everything loaded for the batch; ``open_exceptions`` maps trade_id to an OPEN id."""

    ledger: Ledger
    rules: Sequence[RuleRow]
    reference: Reference
    restricted: frozenset[str]
    open_exceptions: dict[str, int] = field(default_factory=dict)


@dataclass
class BatchWrites:
    """The batch's effects, ready to be written in bulk."""

    trades: dict[str, TradeState] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)  # one per judged version
    new_exceptions: list[NewException] = field(default_factory=list)
    # existing exception id -> (new status, the trade version that closed it)
    closed: dict[int, tuple[str, int]] = field(default_factory=dict)
    prices: dict[str, LastPrice] = field(default_factory=dict)
    validated: list[tuple[Message, dict[str, Any]]] = field(default_factory=list)
    rejections: list[tuple[Message, str, str]] = field(default_factory=list)
    ignored: int = 0


def widest_window(rules: Sequence[RuleRow]) -> timedelta:
    """The largest wash-trade / duplicate window of the enabled rows (how far back to look)."""
    seconds = 0
    for row in rules:
        if row.config.enabled and row.config.code in WINDOW_RULES:
            try:
                seconds = max(seconds, int_param(row.config, "window_seconds"))
            except RuleConfigError:
                continue  # such a row fails closed in evaluate(); it needs no history
    return timedelta(seconds=seconds)


def validated_payload(payload: Mapping[str, Any], block: Mapping[str, Any]) -> dict[str, Any]:
    """The trades.validated payload: the captured version plus the compliance block."""
    return {**payload, "compliance": dict(block)}


def state_from_payload(
    payload: Mapping[str, Any], *, notional: Decimal, status: str, previous: TradeState | None
) -> TradeState:
    """The trade's new state for this version, keeping what is in force downstream."""
    keep = previous
    return TradeState(
        trade_id=payload["trade_id"],
        version=payload["trade_version"],
        action=payload["action"],
        account=payload["account"],
        book=payload["book"],
        counterparty=payload["counterparty"],
        instrument=payload["instrument"],
        side=payload["side"],
        quantity=Decimal(payload["quantity"]),
        price=Decimal(payload["price"]),
        currency=payload["currency"],
        notional_base=notional,
        trade_time=parse_time(payload["trade_time"]),
        trade_date=date.fromisoformat(payload["trade_date"]),
        settle_date=date.fromisoformat(payload["settle_date"]),
        status=status,
        validated_version=keep.validated_version if keep else None,
        validated_counterparty=keep.validated_counterparty if keep else "",
        validated_notional_base=keep.validated_notional_base if keep else None,
        validated_settle_date=keep.validated_settle_date if keep else None,
    )


def mark_validated(state: TradeState) -> TradeState:
    """``state``'s own version is now the one in force downstream."""
    return replace(
        state,
        status=VALIDATED,
        validated_version=state.version,
        validated_counterparty=state.counterparty,
        validated_notional_base=state.notional_base,
        validated_settle_date=state.settle_date,
    )


def process(messages: Sequence[Message], inputs: BatchInput) -> BatchWrites:
    """Decide every message of the batch in order (see the module docstring)."""
    run = _Run(inputs)
    for message in messages:
        run.message(message)
    return run.writes


class _Run:
    def __init__(self, inputs: BatchInput):
        self.inputs = inputs
        self.ledger = inputs.ledger
        self.window = widest_window(inputs.rules)
        # Each rule row validated once per batch, not once per trade.
        self.rules = [(row.rule_id, PreparedRule.of(row.config)) for row in inputs.rules]
        self.open: dict[str, int | NewException] = dict(inputs.open_exceptions)
        self.writes = BatchWrites()

    def message(self, message: Message) -> None:
        payload = message.payload
        held = self.ledger.state(payload["trade_id"])
        if held is not None and payload["trade_version"] <= held.version:
            self.writes.ignored += 1
            return
        if payload["action"] == "CANCEL":
            self._cancel(message, held)
        elif held is not None and held.status == CANCELLED:
            self.writes.ignored += 1
        else:
            self._evaluate(message, held)

    def _put(self, state: TradeState) -> None:
        self.ledger.put(state)
        self.writes.trades[state.trade_id] = state

    def _close_open(self, trade_id: str, status: str, version: int) -> None:
        held = self.open.pop(trade_id, None)
        if isinstance(held, NewException):
            held.status, held.closed_by_version = status, version
        elif held is not None:
            self.writes.closed[held] = (status, version)

    def _cancel(self, message: Message, held: TradeState | None) -> None:
        payload = message.payload
        self._close_open(payload["trade_id"], EXCEPTION_CANCELLED, payload["trade_version"])
        if held is None:
            try:
                amount = notional_base(payload, self.inputs.reference)
            except FactsError:
                amount = Decimal(0)  # a cancelled trade counts towards nothing
            self._put(state_from_payload(payload, notional=amount, status=CANCELLED, previous=None))
            return
        if held.in_force:
            self.writes.validated.append((message, validated_payload(payload, PASSED_BLOCK)))
        self._put(
            replace(held, version=payload["trade_version"], action="CANCEL", status=CANCELLED)
        )

    def _evaluate(self, message: Message, held: TradeState | None) -> None:
        payload = message.payload
        try:
            facts = trade_facts(payload, self.inputs.reference)
        except FactsError as error:
            self.writes.rejections.append((message, error.error_class, error.reason))
            return
        self._close_open(facts.trade_id, SUPERSEDED, facts.trade_version)
        verdict = Verdict(facts.trade_id, facts.trade_version, self._outcomes(facts))
        self.writes.verdicts.append(verdict)
        state = state_from_payload(
            payload, notional=facts.notional_base, status=WAITING, previous=held
        )
        failed = verdict.failed_rules
        if failed:
            exception = NewException(
                trade_id=facts.trade_id,
                trade_version=facts.trade_version,
                account=facts.account,
                book=facts.book,
                failed_rules=list(dict.fromkeys(failed)),
                payload=dict(payload),
            )
            self.writes.new_exceptions.append(exception)
            self.open[facts.trade_id] = exception
            self._put(state)
            return
        self._put(mark_validated(state))
        self.writes.validated.append((message, validated_payload(payload, PASSED_BLOCK)))
        if facts.price > 0:
            seen = LastPrice(facts.price, facts.currency, facts.trade_time)
            if self.ledger.price_seen(facts.instrument, seen):
                self.writes.prices[facts.instrument] = seen

    def _outcomes(self, facts: TradeFacts) -> tuple[RuleResult, ...]:
        context = self._context(facts)
        results = []
        # One rule row at a time so each result is stored against the row that produced it.
        for rule_id, rule in self.rules:
            if rule.applies(facts):
                outcome = rule.run(facts, context)
                results.append(RuleResult(rule_id, outcome.code, outcome.passed, outcome.detail))
        return tuple(results)

    def _context(self, facts: TradeFacts) -> Context:
        ledger, reference = self.ledger, self.inputs.reference
        return Context(
            restricted_instruments=self.inputs.restricted,
            last_price=ledger.last_price(facts.instrument, facts.currency),
            account_day_notional_base=ledger.day_notional(
                facts.trade_id, facts.account, facts.trade_date
            ),
            counterparty_credit_limit=reference.credit_limits.get(facts.counterparty),
            counterparty_exposure=ledger.exposure(
                facts.trade_id, facts.counterparty, facts.trade_date
            ),
            recent_trades=ledger.recent(
                facts.trade_id, facts.account, facts.instrument, facts.trade_time, self.window
            ),
        )
