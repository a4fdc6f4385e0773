"""Reads: what the compliance stage loads per batch, and what the API and admin show.

The batch loaders run one query per kind of thing for the whole batch, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from backoffice.streaming.envelope import Message
from compliance.batch import OPEN, BatchInput, RuleRow, widest_window
from compliance.facts import Reference, parse_time
from compliance.ledger import (
    LIVE,
    LastPrice,
    Ledger,
    TradeState,
    day_contribution,
    exposure_contribution,
)
from compliance.models import (
    AccountDayTotal,
    ComplianceException,
    ComplianceRule,
    ComplianceTrade,
    ExceptionProposal,
    ExposureTotal,
    ReferencePrice,
    RestrictedInstrument,
    VersionVerdict,
)
from compliance.rules import REGISTRY, RecentTrade, RuleConfig
from core.locks import lock_keys
from trades.selectors import fx_rates_on, reference_snapshot

BAD_PARAMS = "<params must be an object of name: value>"


def rule_config(
    *,
    code: str,
    enabled: bool,
    threshold: Decimal | None,
    params: Any,
    scope_books: Iterable[str],
    scope_accounts: Iterable[str],
    scope_instruments: Iterable[str],
) -> RuleConfig:
    """A rule row's fields as the pure engine's ``RuleConfig``.

    Parameter values are compared as text; a ``params`` that is not an object becomes an unknown
    parameter, so the row fails closed with a detail saying what is wrong.
    """
    if isinstance(params, Mapping):
        parsed = {str(k): str(v) for k, v in params.items()}
    else:
        parsed = {BAD_PARAMS: ""}
    return RuleConfig(
        code=code,
        enabled=enabled,
        threshold=threshold,
        params=MappingProxyType(parsed),
        scope_books=frozenset(scope_books),
        scope_accounts=frozenset(scope_accounts),
        scope_instruments=frozenset(scope_instruments),
    )


def rule_rows() -> list[RuleRow]:
    """Every rule row in registry order, then by id (disabled ones included)."""
    rank = {code: n for n, code in enumerate(REGISTRY)}
    rows = [
        RuleRow(
            rule_id=rule.pk,
            config=rule_config(
                code=rule.code,
                enabled=rule.enabled,
                threshold=rule.threshold,
                params=rule.params,
                scope_books=rule.scope_books,
                scope_accounts=rule.scope_accounts,
                scope_instruments=rule.scope_instruments,
            ),
        )
        for rule in ComplianceRule.objects.all()
    ]
    return sorted(rows, key=lambda r: (rank.get(r.config.code, len(rank)), r.rule_id))


def restricted_isins() -> frozenset[str]:
    return frozenset(RestrictedInstrument.objects.values_list("isin", flat=True))


def batch_reference(trade_dates: Iterable[date]) -> Reference:
    """Reference data for a batch: one snapshot and one FX query per distinct trade date."""
    snapshot = reference_snapshot()
    return Reference(
        instrument_status={isin: i.status for isin, i in snapshot.instruments.items()},
        calendars=snapshot.calendars,
        credit_limits={code: c.credit_limit for code, c in snapshot.counterparties.items()},
        fx={day: fx_rates_on(day) for day in set(trade_dates)},
    )


def batch_input(messages: Sequence[Message]) -> BatchInput:
    """Everything ``compliance.batch.process`` needs for ``messages``, in a fixed set of queries.

    The batch's trade rows are locked first (``FOR UPDATE``, in trade_id order): a four-eyes
    confirmation locks its trade row too, so a decision and a newer version of the same trade
    are applied one after the other, never interleaved.
    """
    payloads = [m.payload for m in messages]
    rules = rule_rows()
    trade_ids = sorted({p["trade_id"] for p in payloads})
    states = _locked_states(trade_ids)
    # An amendment can move a trade to another account or counterparty: lock its old ones too.
    limits_lock(
        accounts={p["account"] for p in payloads} | {s.account for s in states},
        counterparties={p["counterparty"] for p in payloads}
        | {s.validated_counterparty for s in states if s.validated_counterparty},
    )
    ledger = Ledger(
        states=states,
        day_totals=_day_totals(payloads, states),
        exposures=_exposures(payloads, states),
        recent=_recent(payloads, trade_ids, widest_window(rules)),
        last_prices=_last_prices({p["instrument"] for p in payloads}),
    )
    open_exceptions = dict(
        ComplianceException.objects.filter(trade_id__in=trade_ids, status=OPEN).values_list(
            "trade_id", "id"
        )
    )
    return BatchInput(
        ledger=ledger,
        rules=rules,
        reference=batch_reference(date.fromisoformat(p["trade_date"]) for p in payloads),
        restricted=restricted_isins(),
        open_exceptions=open_exceptions,
    )


def trade_state(row: ComplianceTrade) -> TradeState:
    return TradeState(
        trade_id=row.trade_id,
        version=row.version,
        action=row.action,
        account=row.account,
        book=row.book,
        counterparty=row.counterparty,
        instrument=row.instrument,
        side=row.side,
        quantity=row.quantity,
        price=row.price,
        currency=row.currency,
        notional_base=row.notional_base,
        trade_time=row.trade_time,
        trade_date=row.trade_date,
        settle_date=row.settle_date,
        status=row.status,
        validated_version=row.validated_version,
        validated_counterparty=row.validated_counterparty,
        validated_notional_base=row.validated_notional_base,
        validated_settle_date=row.validated_settle_date,
    )


def _locked_states(trade_ids: list[str]) -> list[TradeState]:
    rows = (
        ComplianceTrade.objects.select_for_update()
        .filter(trade_id__in=trade_ids)
        .order_by("trade_id")
    )
    return [trade_state(row) for row in rows]


def limits_lock(*, accounts: Iterable[str], counterparties: Iterable[str]) -> None:
    """Serialise every writer of these accounts' day totals and counterparties' exposure until
    the transaction ends.

    The stage's batches and four-eyes decisions take these transaction-level advisory locks,
    before they read a limit's running total, so two compliance
    consumers (or a consumer and an approver) can never both let trades through against the
    same headroom: the second reads the total the first committed. A lock per key, not per row,
    because a counterparty's exposure is a range of settle dates and a new date is a new row.
    """
    lock_keys(
        [f"compliance.account:{a}" for a in accounts]
        + [f"compliance.counterparty:{c}" for c in counterparties]
    )


def _day_totals(
    payloads: Sequence[Mapping[str, Any]], states: Sequence[TradeState]
) -> dict[tuple[str, date], Decimal]:
    """Running account-day totals of every trade outside the batch: the stored totals (kept by
    the database, ``AccountDayTotal``) less what the batch's own trades contribute to them."""
    accounts = {p["account"] for p in payloads}
    days = {date.fromisoformat(p["trade_date"]) for p in payloads}
    totals = {
        (account, day): total
        for account, day, total in AccountDayTotal.objects.filter(
            account__in=accounts, trade_date__in=days
        ).values_list("account", "trade_date", "total")
    }
    for state in states:
        if (found := day_contribution(state)) is not None and found[0] in totals:
            totals[found[0]] -= found[1]
    return totals


def _exposures(
    payloads: Sequence[Mapping[str, Any]], states: Sequence[TradeState]
) -> list[tuple[str, date, Decimal]]:
    """Running exposure per (counterparty, settle date) of every trade outside the batch, from
    the earliest trade date on (only what is still unsettled then can count)."""
    earliest = min(date.fromisoformat(p["trade_date"]) for p in payloads)
    totals = {
        (counterparty, day): total
        for counterparty, day, total in ExposureTotal.objects.filter(
            counterparty__in={p["counterparty"] for p in payloads}, settle_date__gte=earliest
        ).values_list("counterparty", "settle_date", "total")
    }
    for state in states:
        found = exposure_contribution(state)
        if found is not None and (found[0], found[1]) in totals:
            totals[(found[0], found[1])] -= found[2]
    return [(counterparty, day, total) for (counterparty, day), total in totals.items() if total]


def _recent(
    payloads: Sequence[Mapping[str, Any]], trade_ids: list[str], window: timedelta
) -> list[tuple[str, str, RecentTrade]]:
    """Live trades that a wash-trade or duplicate check of this batch can meet: for each
    (account, instrument, price) of the batch, those at that price within ``window`` of its
    trades there.

    Both window checks (``batch.WINDOW_RULES``) only ever match a trade at the trade's own
    price, so the trades at other prices, most of the window, are not read: on a busy day that
    was some fifteen rows a trade that no rule looked at, a quarter of the stage's time spent
    fetching and indexing them. One range per key, not one for the batch.
    """
    if not window:
        return []
    ranges: dict[tuple[str, str, Decimal], tuple[datetime, datetime]] = {}
    for p in payloads:
        key = (p["account"], p["instrument"], Decimal(p["price"]))
        at = parse_time(p["trade_time"])
        lo, hi = ranges.get(key, (at, at))
        ranges[key] = (min(lo, at), max(hi, at))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.account, c.instrument, c.trade_id, c.side, c.quantity, c.price, c.trade_time"
            f" FROM {ComplianceTrade._meta.db_table} c"
            " JOIN unnest(%s::text[], %s::text[], %s::numeric[], %s::timestamptz[],"
            " %s::timestamptz[]) AS p(account, instrument, price, lo, hi)"
            " ON c.account = p.account AND c.instrument = p.instrument AND c.price = p.price"
            " AND c.trade_time BETWEEN p.lo AND p.hi"
            " WHERE c.status = ANY(%s) AND NOT (c.trade_id = ANY(%s))",
            [
                [a for a, _, _ in ranges],
                [i for _, i, _ in ranges],
                [price for _, _, price in ranges],
                [lo - window for lo, _ in ranges.values()],
                [hi + window for _, hi in ranges.values()],
                sorted(LIVE),
                trade_ids,
            ],
        )
        rows = cursor.fetchall()
    return [
        (account, isin, RecentTrade(trade_id, side, quantity, price, at))
        for account, isin, trade_id, side, quantity, price, at in rows
    ]


def _last_prices(isins: set[str]) -> dict[str, LastPrice]:
    rows = ReferencePrice.objects.filter(isin__in=isins).values_list(
        "isin", "price", "currency", "as_of"
    )
    return {isin: LastPrice(price, currency, as_of) for isin, price, currency, as_of in rows}


# -- the exception queue (API) ---------------------------------------------------------------


def exception_list(
    *, status: str | None = None, account: str | None = None, book: str | None = None
) -> QuerySet[ComplianceException]:
    """Exceptions, newest first, optionally filtered by status, account and book."""
    queryset = ComplianceException.objects.all()
    if status:
        queryset = queryset.filter(status=status)
    if account:
        queryset = queryset.filter(account=account)
    if book:
        queryset = queryset.filter(book=book)
    return queryset.order_by("-created_at", "-id")


def exception_get(exception_id: int) -> ComplianceException | None:
    return ComplianceException.objects.filter(pk=exception_id).first()


@dataclass(frozen=True)
class RuleEvaluation:
    """One rule row's result on a trade version, expanded from its ``VersionVerdict``."""

    trade_id: str
    trade_version: int
    rule_id: int
    code: str
    passed: bool
    detail: str
    evaluated_at: datetime


def verdict_evaluations(verdict: VersionVerdict) -> list[RuleEvaluation]:
    """The verdict's results, one per applicable rule row, in evaluation order."""
    return [
        RuleEvaluation(
            trade_id=verdict.trade_id,
            trade_version=verdict.trade_version,
            rule_id=r["rule_id"],
            code=r["code"],
            passed=r["passed"],
            detail=r["detail"],
            evaluated_at=verdict.evaluated_at,
        )
        for r in verdict.results
    ]


def exception_evaluations(exception: ComplianceException) -> list[RuleEvaluation]:
    """The result of every rule row on the exception's trade version (none if not judged)."""
    verdict = VersionVerdict.objects.filter(
        trade_id=exception.trade_id, trade_version=exception.trade_version
    ).first()
    return verdict_evaluations(verdict) if verdict else []


def exception_proposals(exception: ComplianceException) -> QuerySet[ExceptionProposal]:
    return ExceptionProposal.objects.filter(exception=exception).order_by("proposed_at", "id")


def active_proposal(exception_id: int) -> ExceptionProposal | None:
    return ExceptionProposal.objects.filter(
        exception_id=exception_id, status=ExceptionProposal.Status.ACTIVE
    ).first()
