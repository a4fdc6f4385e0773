"""Every write of the reporting app: the live book, end of day, collateral.

The maths is in the pure modules (``pnl``, ``positions``, ``risk``); the bulk reads and writes
are in ``book`` (live) and ``eod`` (end of day). These functions are the entry points and say
what each guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction

from backoffice.audit.services import audit_record
from backoffice.money import quantize_money
from reporting import eod, selectors
from reporting.book import (
    Held,
    checkpoints_prune,
    checkpoints_write,
    lock_latest_prices,
    lock_positions,
    position_row,
    positions_write,
    prices_record,
    trades_record,
)
from reporting.models import CollateralBalance, EodRun, MarginSnapshot, PnlSnapshot, Position
from reporting.pnl import PositionState
from reporting.positions import (
    Checkpoint,
    Head,
    Key,
    Plan,
    PositionMeta,
    PriceTick,
    ReplayKey,
    TradeVersion,
    accepted,
    fold_on,
    plan,
    refold,
    resumable,
)
from reporting.selectors import FxTable

# Serialises end-of-day runs of one date (beat and a manual run_eod) without blocking others.
_EOD_LOCK = 0x45_4F_44  # "EOD"


@dataclass(frozen=True)
class BookResult:
    """What one batch did to the live book."""

    appended: int  # positions that took new fills incrementally
    restated: int  # positions rebuilt from their current trade versions
    remarked: int  # positions only revalued at a new price
    removed: int  # positions left without a live trade
    stale: int  # trade versions ignored: not newer than the one held


def positions_apply(
    *,
    trades: Sequence[TradeVersion],
    prices: Sequence[PriceTick],
    fx: FxTable,
    now: datetime,
) -> BookResult:
    """Apply a batch of trade versions and prices to the live positions.

    Runs in the caller's transaction (the stage's batch). A trade version is applied only if it
    is newer than the one held, so replays and stale versions change nothing. A position whose
    new fills all come after its last one takes them incrementally; any other change (amend,
    cancel, a late trade) restates it from its latest checkpoint before the earliest fill the
    batch changes, folding on the live versions after it: exact by construction, the same fold
    as from flat, since the fills up to the checkpoint are unchanged. Every touched position and
    every position in a newly priced instrument is revalued at its instrument's latest price and
    translated at the FX rate of its valuation date, with one rounding rule
    (``reporting.pnl.valuation``).
    """
    prices_record(prices, now)
    stored = selectors.stored_trades(t.trade_id for t in trades)
    fresh = accepted(trades, stored)
    keys = {t.key for t in fresh}
    keys |= {stored[t.trade_id].key for t in fresh if t.trade_id in stored}
    priced = {p.isin for p in prices}
    # Prices first, then positions, always in key order: two consumers of the same tables
    # (one on trades, one on prices) then queue instead of overwriting each other's marks.
    marks = lock_latest_prices({i for _, i in keys} | priced)
    locked = lock_positions(keys, priced)
    heads = {k: Head(held.meta.last, held.meta.pnl_method) for k, held in locked.items()}
    todo = plan(fresh, stored, heads)
    trades_record(fresh, now)

    built, remarked = _built(todo, locked, priced, now)
    live = {k: v for k, v in built.items() if v is not None}
    positions_write([position_row(k, s, m, marks, fx, now) for k, (s, m) in live.items()])
    gone = [locked[k].pk for k, v in built.items() if v is None and k in locked]
    Position.objects.filter(pk__in=gone).delete()
    return BookResult(
        appended=len(todo.append),
        restated=len(todo.restate),
        remarked=remarked,
        removed=len(gone),
        stale=len(trades) - len(fresh),
    )


def _built(
    todo: Plan, locked: Mapping[Key, Held], priced: set[str], now: datetime
) -> tuple[dict[Key, tuple[PositionState, PositionMeta] | None], int]:
    """Each changed position's new state (None: no live trade left), and how many re-marks.

    Appended and restated positions also get their checkpoints brought up to date: those after
    the point a restatement starts from are replaced, new ones added every K fills.
    """
    built: dict[Key, tuple[PositionState, PositionMeta] | None] = {}
    checkpoints: list[tuple[Key, Checkpoint]] = []
    # A new position starts with none, whatever an earlier position of the key left behind.
    kept = {key: 0 for key in todo.append if key not in locked}
    for key, fills in todo.append.items():
        held = locked.get(key)
        state, meta = (held.state, held.meta) if held else (PositionState(fills[0].currency), None)
        state, meta, passed = fold_on(state, meta, fills, fills[-1].pnl_method)
        assert meta is not None  # fills is never empty
        built[key] = (state, meta)
        checkpoints += [(key, c) for c in passed]
    restated, passed_restating, starts = _restated(todo.restate)
    built |= restated
    checkpoints += passed_restating
    checkpoints_prune(kept | starts)
    checkpoints_write(checkpoints, now)
    remarked = 0
    for key, held in locked.items():
        if key not in built and key[1] in priced:
            built[key] = (held.state, held.meta)
            remarked += 1
    return built, remarked


def _restated(
    points: Mapping[Key, ReplayKey | None],
) -> tuple[
    dict[Key, tuple[PositionState, PositionMeta] | None],
    list[tuple[Key, Checkpoint]],
    dict[Key, int],
]:
    """Restate each position from its latest checkpoint before its point (``Plan.restate``).

    Returns the positions, their new checkpoints, and how many fills each restatement started
    from (the checkpoints to keep). Reads only the live versions after each start, in one query;
    a second reads whole the few positions whose checkpoint was folded under a cost method the
    position no longer ends under (a cancelled last fill can reveal an older method).
    """
    bases = selectors.checkpoints_before({k: p for k, p in points.items() if p is not None})
    read = selectors.live_versions(points, after={k: b.meta.last for k, b in bases.items()})
    after = {k: read.get(k, []) for k in points}
    refused = [k for k, b in bases.items() if not resumable(b, after[k])]
    if refused:
        after |= selectors.live_versions(refused)
        for key in refused:
            del bases[key]
    built: dict[Key, tuple[PositionState, PositionMeta] | None] = {}
    checkpoints: list[tuple[Key, Checkpoint]] = []
    for key in points:
        built[key], passed = refold(bases.get(key), after.get(key, ()))
        checkpoints += [(key, c) for c in passed]
    starts = {k: bases[k].meta.trade_count if k in bases else 0 for k in points}
    return built, checkpoints, starts


def collateral_set(
    *,
    account: str,
    amount: Decimal,
    currency: str,
    actor: AbstractBaseUser | AnonymousUser | None,
    reason: str,
    now: datetime,
) -> CollateralBalance:
    """Set an account's opening collateral, with an audit row, in one transaction.

    The amount is booked in ``currency``'s minor units (half-even); margin translates it to the
    account's base currency at the end-of-day rate. Setting the same value again changes
    nothing and writes no audit row.
    """
    booked = quantize_money(amount, currency)
    with transaction.atomic():
        row = CollateralBalance.objects.select_for_update().filter(account=account).first()
        before = None if row is None else {"amount": row.amount, "currency": row.currency}
        after = {"amount": booked, "currency": currency}
        if before == after and row is not None:
            return row
        row, _ = CollateralBalance.objects.update_or_create(
            account=account, defaults={"amount": booked, "currency": currency, "updated_at": now}
        )
        audit_record(
            actor=actor,
            action="collateral.set",
            object_type="reporting.collateralbalance",
            object_id=account,
            at=now,
            before=before,
            after=after,
            reason=reason,
        )
    return row


@dataclass(frozen=True)
class EodResult:
    business_date: date
    positions: int
    accounts: int
    margin_calls_issued: int


def eod_snapshot_create(*, business_date: date, now: datetime) -> EodResult:
    """Build the P&L and margin snapshots of ``business_date`` and issue its margin calls.

    Idempotent and independent of the clock: the snapshots are rebuilt from the data as of the
    date (live trade versions traded on or before it, closes and FX rates on or before it) and
    upserted on (date, account, instrument) / (date, account); rows the data no longer supports
    are deleted, so a second run, or a late one, leaves identical rows. A margin call is issued
    at most once per account and date. One transaction; concurrent runs of one date queue.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_EOD_LOCK, business_date.toordinal()]
            )
        fx = FxTable()
        snapshots = eod.snapshot_rows(
            business_date, selectors.versions_as_of(business_date), fx, now
        )
        _replace(PnlSnapshot, business_date, snapshots, ("account", "instrument"))
        margins = eod.margin_rows(business_date, snapshots, fx, now)
        _replace(MarginSnapshot, business_date, margins, ("account",))
        calls = eod.margin_calls_issue(business_date, margins, now)
        EodRun.objects.update_or_create(
            business_date=business_date,
            defaults={
                "positions": len(snapshots),
                "accounts": len(margins),
                "margin_calls": len(calls),
                "last_run_at": now,
            },
            create_defaults={
                "positions": len(snapshots),
                "accounts": len(margins),
                "margin_calls": len(calls),
                "first_run_at": now,
                "last_run_at": now,
            },
        )
    return EodResult(business_date, len(snapshots), len(margins), len(calls))


Snapshot = TypeVar("Snapshot", PnlSnapshot, MarginSnapshot)


def _replace(
    model: type[Snapshot], business_date: date, rows: Sequence[Snapshot], key: tuple[str, ...]
) -> None:
    """Make ``model``'s rows of the date exactly ``rows`` (``created_at`` kept on update)."""
    unique: list[str] = ["business_date", *key]
    if rows:
        model.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=unique,
            update_fields=[
                f.name
                for f in model._meta.concrete_fields
                if f.name not in ("id", "created_at", *unique)
            ],
        )
    keep = {tuple(getattr(r, k) for k in key) for r in rows}
    existing = model.objects.filter(business_date=business_date).values_list("pk", *key)
    stale = [row[0] for row in existing if tuple(row[1:]) not in keep]
    model.objects.filter(pk__in=stale).delete()


def eod_run_pending(*, now: datetime) -> list[EodResult]:
    """Run end of day for every business date the data has reached since the last run.

    What Celery beat calls. The dates come from the data (``selectors.eod_pending_dates``), so
    running it often, twice, or late changes nothing but freshness.
    """
    return [eod_snapshot_create(business_date=d, now=now) for d in selectors.eod_pending_dates()]
