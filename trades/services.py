"""Writes of the trades app: recording captured versions, refusals and trade heads in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backoffice.streaming.bulk import copy_insert
from trades.capture import EnrichedTrade
from trades.models import TradeRefusal, TradeVersion


@dataclass(frozen=True)
class Applied:
    trade: EnrichedTrade
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Refused:
    payload: dict[str, Any]
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int


def trade_versions_record(
    *, applied: Sequence[Applied], refused: Sequence[Refused], now: datetime
) -> None:
    """Insert captured versions and refusals and move trade heads forward, in bulk.

    Versions are immutable and COPYed straight in: the stage applies a version only above the
    head it read, so a second copy of one is a race between two writers, and its unique
    constraint fails the later batch (applied again message by message, it finds the version
    held and refuses it). A head moves only to a higher version, so two writers racing on one
    trade cannot move it backwards.
    """
    if applied:
        _insert_versions(applied, now)
        _advance_heads([a.trade for a in applied], now)
    if refused:
        TradeRefusal.objects.bulk_create(
            [
                TradeRefusal(
                    trade_id=r.payload["trade_id"],
                    version=r.payload["trade_version"],
                    action=r.payload["action"],
                    reason=r.reason,
                    detail=r.detail,
                    payload=r.payload,
                    source_topic=r.topic,
                    source_partition=r.partition,
                    source_offset=r.offset,
                    refused_at=now,
                )
                for r in refused
            ],
            ignore_conflicts=True,
        )


def _advance_heads(trades: Sequence[EnrichedTrade], now: datetime) -> None:
    latest: dict[str, EnrichedTrade] = {}
    for trade in trades:
        held = latest.get(trade.trade_id)
        if held is None or trade.trade_version > held.trade_version:
            latest[trade.trade_id] = trade
    copy_insert(
        "trades_trade",
        (
            "trade_id",
            "current_version",
            "status",
            "account",
            "book",
            "instrument",
            "trade_date",
            "created_at",
            "updated_at",
        ),
        (
            (
                t.trade_id,
                t.trade_version,
                "CANCELLED" if t.action == "CANCEL" else "LIVE",
                t.account,
                t.book,
                t.instrument,
                t.trade_date,
                now,
                now,
            )
            for t in latest.values()
        ),
        on_conflict="(trade_id) DO UPDATE SET current_version = EXCLUDED.current_version,"
        " status = EXCLUDED.status, account = EXCLUDED.account, book = EXCLUDED.book,"
        " instrument = EXCLUDED.instrument, trade_date = EXCLUDED.trade_date,"
        " updated_at = EXCLUDED.updated_at WHERE trades_trade.current_version < EXCLUDED.current_version",
    )


_VERSION_COLUMNS = (
    "trade_id", "version", "action", "account", "book", "counterparty", "instrument", "symbol",
    "asset_class", "csdr_class", "market", "side", "quantity", "price", "currency", "gross_amount",
    "fees", "net_amount", "trade_date", "trade_time", "settle_date", "settle_date_computed", "venue",
    "trader", "payment_type", "ssi_custodian_bic", "ssi_safekeeping_account", "ssi_cash_account",
    "input_hash", "source_topic", "source_partition", "source_offset", "captured_at",
)  # fmt: skip


def _insert_versions(applied: Sequence[Applied], now: datetime) -> None:
    copy_insert(
        TradeVersion._meta.db_table,
        _VERSION_COLUMNS,
        (_version_values(a, now) for a in applied),
    )


def _version_values(applied: Applied, now: datetime) -> tuple[Any, ...]:
    t, ssi = applied.trade, applied.trade.ssi
    return (
        t.trade_id, t.trade_version, t.action, t.account, t.book, t.counterparty, t.instrument,
        t.symbol, t.asset_class, t.csdr_class, t.market, t.side, t.quantity, t.price, t.currency,
        t.gross_amount, t.fees, t.net_amount, t.trade_date, t.trade_time, t.settle_date,
        t.settle_date_computed, t.venue, t.trader, t.payment_type,
        ssi.custodian_bic if ssi else "", ssi.safekeeping_account if ssi else "",
        ssi.cash_account if ssi else "", t.input_hash, applied.topic, applied.partition,
        applied.offset, now,
    )  # fmt: skip
