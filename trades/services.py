"""Writes of the trades app: recording captured versions, refusals and trade heads in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

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

    Versions are immutable (unique per trade and version; a copy is ignored); a head moves only
    to a higher version, so two writers racing on one trade cannot move it backwards.
    """
    if applied:
        TradeVersion.objects.bulk_create(
            [_version_row(a, now) for a in applied], ignore_conflicts=True
        )
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
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO trades_trade (trade_id, current_version, status, account, book, instrument,"
            " trade_date, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (trade_id) DO UPDATE SET current_version = EXCLUDED.current_version,"
            " status = EXCLUDED.status, account = EXCLUDED.account, book = EXCLUDED.book,"
            " instrument = EXCLUDED.instrument, trade_date = EXCLUDED.trade_date,"
            " updated_at = EXCLUDED.updated_at"
            " WHERE trades_trade.current_version < EXCLUDED.current_version",
            [
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
            ],
        )


def _version_row(applied: Applied, now: datetime) -> TradeVersion:
    t = applied.trade
    return TradeVersion(
        trade_id=t.trade_id,
        version=t.trade_version,
        action=t.action,
        account=t.account,
        book=t.book,
        counterparty=t.counterparty,
        instrument=t.instrument,
        symbol=t.symbol,
        asset_class=t.asset_class,
        csdr_class=t.csdr_class,
        market=t.market,
        side=t.side,
        quantity=t.quantity,
        price=t.price,
        currency=t.currency,
        gross_amount=t.gross_amount,
        fees=t.fees,
        net_amount=t.net_amount,
        trade_date=t.trade_date,
        trade_time=t.trade_time,
        settle_date=t.settle_date,
        settle_date_computed=t.settle_date_computed,
        venue=t.venue,
        trader=t.trader,
        payment_type=t.payment_type,
        ssi_custodian_bic=t.ssi.custodian_bic if t.ssi else "",
        ssi_safekeeping_account=t.ssi.safekeeping_account if t.ssi else "",
        ssi_cash_account=t.ssi.cash_account if t.ssi else "",
        input_hash=t.input_hash,
        source_topic=applied.topic,
        source_partition=applied.partition,
        source_offset=applied.offset,
        captured_at=now,
    )
