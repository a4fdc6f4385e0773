"""The live book's mechanics: bulk reads under lock, bulk upserts, and the booked columns.

``services.positions_apply`` runs them in order inside the stage's batch transaction; end of day
shares :func:`value` and :func:`booked_fields` so live and snapshot rows are booked alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from django.db import connection

from backoffice.streaming.bulk import copy_insert
from reporting.models import PositionTrade
from reporting.pnl import PnlFigures, PositionState, valuation
from reporting.positions import (
    Checkpoint,
    Key,
    Mark,
    PositionMeta,
    PriceTick,
    TradeVersion,
    live_valuation_date,
    mark_for,
    state_to_json,
)
from reporting.selectors import CHECKPOINT_COLUMNS, FxTable, stored_meta, stored_state

FX_RATE_UNAVAILABLE = "no FX rate {currency}/{base} on or before {on}"

FIGURES = (
    "cost_basis",
    "market_value",
    "realized",
    "unrealized",
    "fees",
    "net_realized",
    "total",
)
BASE_FIGURES = tuple(f"base_{name}" for name in FIGURES)


@dataclass(frozen=True)
class Held:
    """A stored position as the live book needs it: its row id, exact state and meta."""

    pk: int
    state: PositionState
    meta: PositionMeta


_HELD_COLUMNS = (
    "id, account, instrument, state, book, base_currency, pnl_method, asset_class, currency,"
    " last_trade_time, last_trade_id, last_trade_version, last_trade_date, last_fill_price,"
    " trade_count"
)


def _held(row: Sequence[Any]) -> tuple[Key, Held]:
    (pk, account, instrument, state, book, base, method, asset_class, currency) = row[:9]
    last_time, last_id, last_version, last_date, last_price, count = row[9:]
    meta = stored_meta(
        book, base, method, asset_class, currency, (last_time, last_id, last_version), last_date,
        last_price, count,
    )  # fmt: skip
    return (account, instrument), Held(pk, stored_state(state), meta)


def prices_record(prices: Sequence[PriceTick], now: datetime) -> None:
    """Keep every price, and move the latest price and daily close forward (never back)."""
    if not prices:
        return
    copy_insert(
        "reporting_marketprice",
        ("isin", "as_of", "business_date", "price", "currency", "source", "received_at"),
        ((p.isin, p.as_of, p.business_date, p.price, p.currency, p.source, now) for p in prices),
        on_conflict="(isin, as_of) DO NOTHING",
    )
    latest: dict[str, PriceTick] = {}
    closes: dict[tuple[str, Any], PriceTick] = {}
    for p in prices:  # the first of equal timestamps wins, as in MarketPrice
        if p.isin not in latest or p.as_of > latest[p.isin].as_of:
            latest[p.isin] = p
        day = (p.isin, p.business_date)
        if day not in closes or p.as_of > closes[day].as_of:
            closes[day] = p
    _upsert_newer("reporting_latestprice", "(isin)", sorted(latest.values(), key=_price_order))
    _upsert_newer(
        "reporting_dailyclose", "(isin, business_date)", sorted(closes.values(), key=_price_order)
    )


def _price_order(p: PriceTick) -> tuple[str, Any]:
    return (p.isin, p.business_date)


def _upsert_newer(table: str, conflict: str, ticks: Sequence[PriceTick]) -> None:
    # The WHERE keeps the row with the later as_of: a price that arrives late never wins.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (isin, as_of, business_date, price, currency)"
            " SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::date[], %s::numeric[],"
            " %s::text[])"
            f" ON CONFLICT {conflict} DO UPDATE SET as_of = EXCLUDED.as_of,"
            " business_date = EXCLUDED.business_date, price = EXCLUDED.price,"
            f" currency = EXCLUDED.currency WHERE EXCLUDED.as_of > {table}.as_of",
            [
                [p.isin for p in ticks],
                [p.as_of for p in ticks],
                [p.business_date for p in ticks],
                [p.price for p in ticks],
                [p.currency for p in ticks],
            ],
        )


def lock_latest_prices(isins: Iterable[str]) -> dict[str, PriceTick]:
    wanted = sorted(set(isins))
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT isin, price, currency, as_of, business_date FROM reporting_latestprice"
            " WHERE isin = ANY(%s) ORDER BY isin FOR SHARE",
            [wanted],
        )
        return {
            isin: PriceTick(isin, price, currency, as_of, day, "")
            for isin, price, currency, as_of, day in cursor.fetchall()
        }


def lock_positions(keys: Iterable[Key], isins: Iterable[str]) -> dict[Key, Held]:
    """The stored positions of ``keys`` and of every instrument in ``isins``, locked in key order."""
    wanted, priced = sorted(set(keys)), sorted(set(isins))
    if not wanted and not priced:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_HELD_COLUMNS} FROM reporting_position WHERE (account, instrument) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[])) OR instrument = ANY(%s)"
            " ORDER BY account, instrument FOR UPDATE",
            [[a for a, _ in wanted], [i for _, i in wanted], priced],
        )
        return dict(_held(row) for row in cursor.fetchall())


TRADE_COLUMNS = (
    "trade_id",
    "version",
    "status",
    "account",
    "book",
    "base_currency",
    "pnl_method",
    "instrument",
    "asset_class",
    "currency",
    "side",
    "quantity",
    "price",
    "fees",
    "trade_date",
    "trade_time",
    "updated_at",
)


def _set_excluded(columns: Sequence[str]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)


def trades_record(versions: Sequence[TradeVersion], now: datetime) -> None:
    """Upsert the versions in force; the WHERE refuses an older version whatever the caller."""
    if not versions:
        return
    live, cancelled = PositionTrade.Status.LIVE.value, PositionTrade.Status.CANCELLED.value
    copy_insert(
        "reporting_positiontrade",
        TRADE_COLUMNS,
        (
            (
                v.trade_id,
                v.version,
                live if v.live else cancelled,
                v.account,
                v.book,
                v.base_currency,
                v.pnl_method.value,
                v.instrument,
                v.asset_class,
                v.currency,
                v.side,
                v.quantity,
                v.price,
                v.fees,
                v.trade_date,
                v.trade_time,
                now,
            )
            for v in versions
        ),
        on_conflict=f"(trade_id) DO UPDATE SET {_set_excluded(TRADE_COLUMNS[1:])}"
        " WHERE EXCLUDED.version > reporting_positiontrade.version",
    )


def booked_fields(figures: PnlFigures, mark: Mark, meta: PositionMeta) -> dict[str, Any]:
    """The columns live positions and end-of-day snapshots share (``models.Booked``)."""
    return {
        "book": meta.book,
        "asset_class": meta.asset_class,
        "pnl_method": meta.pnl_method.value,
        "currency": figures.currency,
        "quantity": figures.quantity,
        "mark_price": mark.price,
        "mark_source": mark.source,
        "base_currency": figures.base_currency,
        "fx_rate_to_base": figures.fx_rate_to_base,
        **{name: getattr(figures, name) for name in (*FIGURES, *BASE_FIGURES)},
    }


def value(
    state: PositionState, meta: PositionMeta, mark: Mark, fx: FxTable, on: date
) -> PnlFigures:
    """Book ``state`` at ``mark`` and translate it at the rate on or before ``on``."""
    rate = fx.rate(meta.currency, meta.base_currency, on)
    if rate is None:
        # Trades are refused at the door without a rate, so this means rates were removed.
        raise LookupError(
            FX_RATE_UNAVAILABLE.format(currency=meta.currency, base=meta.base_currency, on=on)
        )
    return valuation(state, mark.price, rate, meta.base_currency)


def position_row(
    key: Key,
    state: PositionState,
    meta: PositionMeta,
    marks: Mapping[str, PriceTick],
    fx: FxTable,
    now: datetime,
) -> dict[str, Any]:
    """The ``reporting_position`` columns of a position valued at its mark."""
    mark = mark_for(marks.get(key[1]), meta)
    on = live_valuation_date(meta, mark)
    last_time, last_id, last_version = meta.last
    return {
        "account": key[0],
        "instrument": key[1],
        **booked_fields(value(state, meta, mark, fx, on), mark, meta),
        "state": orjson.dumps(state_to_json(state)).decode(),
        "last_trade_time": last_time,
        "last_trade_id": last_id,
        "last_trade_version": last_version,
        "last_trade_date": meta.last_trade_date,
        "last_fill_price": meta.last_fill_price,
        "trade_count": meta.trade_count,
        "mark_as_of": mark.as_of,
        "valuation_date": on,
        "updated_at": now,
    }


def positions_write(rows: Sequence[dict[str, Any]]) -> None:
    """Upsert positions on (account, instrument): one COPY and one statement per batch."""
    if not rows:
        return
    columns = list(rows[0])
    copy_insert(
        "reporting_position",
        columns,
        (tuple(row.values()) for row in rows),
        on_conflict=f"(account, instrument) DO UPDATE SET {_set_excluded(columns[2:])}",
    )


_CHECKPOINT_COLUMNS = ("account", "instrument", *CHECKPOINT_COLUMNS, "created_at")


def checkpoints_prune(kept: Mapping[Key, int]) -> None:
    """Delete each position's checkpoints after its first ``kept[key]`` fills (0: all of them).

    A position's checkpoints are always on its current live fills, so their counts and replay
    keys rise together and "after the checkpoint a restatement starts from" is a count.
    """
    wanted = sorted(kept.items())
    if not wanted:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM reporting_positioncheckpoint c"
            " USING unnest(%s::text[], %s::text[], %s::int[]) AS k(account, instrument, kept)"
            " WHERE c.account = k.account AND c.instrument = k.instrument"
            " AND c.trade_count > k.kept",
            [[k[0] for k, _ in wanted], [k[1] for k, _ in wanted], [n for _, n in wanted]],
        )


def checkpoints_write(checkpoints: Sequence[tuple[Key, Checkpoint]], now: datetime) -> None:
    """Insert new checkpoints (one COPY); one already at the same count is a bug, and raises."""
    if not checkpoints:
        return
    copy_insert(
        "reporting_positioncheckpoint",
        _CHECKPOINT_COLUMNS,
        (
            (
                key[0],
                key[1],
                *c.meta.last,
                c.meta.trade_count,
                c.method.value,
                orjson.dumps(state_to_json(c.state)).decode(),
                c.meta.book,
                c.meta.base_currency,
                c.meta.pnl_method.value,
                c.meta.asset_class,
                c.meta.currency,
                c.meta.last_trade_date,
                c.meta.last_fill_price,
                now,
            )
            for key, c in checkpoints
        ),
    )
