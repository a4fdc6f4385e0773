"""Obligations from validated trades (bulk, per batch).

A ``trades.validated`` NEW/AMEND puts that version of the trade in force; CANCEL withdraws it.
A version is applied only when newer than the one held for the ``trade_id`` (stale and repeated
versions are ignored); the chains whose obligations changed are then re-netted once per batch
(``settlement.services.renet``), however many of their trades moved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from backoffice.streaming.envelope import Message
from backoffice.streaming.store import Rejection
from core.locks import lock_keys
from settlement import netting
from settlement.models import Obligation
from settlement.services import chains
from settlement.services.renet import lock_chains

INVALID_OBLIGATION = "InvalidObligation"


@dataclass(frozen=True)
class _Row:
    """An obligation row to upsert (the trade version in force, or its cancellation)."""

    obligation: netting.Obligation
    cancelled: bool
    asset_class: str
    csdr_class: str
    market: str
    ssi: Mapping[str, str] | None


def _parse(message: Message) -> _Row:
    p = message.payload
    payment_type = netting.PaymentType(p["payment_type"])
    cash = Decimal(p["net_amount"]) if payment_type is netting.PaymentType.DVP else Decimal(0)
    obligation = netting.Obligation(
        obligation_id=p["trade_id"],
        trade_id=p["trade_id"],
        trade_version=p["trade_version"],
        account=p["account"],
        counterparty=p["counterparty"],
        instrument=p["instrument"],
        settle_date=date.fromisoformat(p["settle_date"]),
        currency=p["currency"],
        side=p["side"],
        quantity=Decimal(p["quantity"]),
        cash_amount=cash,
        payment_type=payment_type,
    )
    return _Row(
        obligation,
        p["action"] == "CANCEL",
        p["asset_class"],
        p["csdr_class"],
        p["market"],
        p["ssi"],
    )


def obligations_apply(
    *, messages: Sequence[Message], now: datetime
) -> tuple[set[str], list[Rejection]]:
    """Apply the newest version of each trade in ``messages``; return the chains that changed.

    Guarantee: per ``trade_id`` the held obligation only ever moves to a higher version (stale
    or repeated versions change nothing), in one locking read and one upsert for the batch; a
    version that cannot be an obligation (e.g. a negative net amount) is rejected with the
    reason. The returned chain ids include the old key of an amendment that moved the trade.
    """
    newest: dict[str, tuple[Message, _Row]] = {}
    rejections = []
    for message in messages:
        try:
            row = _parse(message)
        except ValueError as error:
            rejections.append(Rejection(message, INVALID_OBLIGATION, str(error)))
            continue
        seen = newest.get(row.obligation.trade_id)
        if seen is None or seen[1].obligation.trade_version < row.obligation.trade_version:
            newest[row.obligation.trade_id] = (message, row)
    # One trade at a time across consumers: an amendment can move a trade to another account,
    # whose partition another consumer reads, and the move must see the version it replaces.
    lock_keys(f"obligation:{trade_id}" for trade_id in newest)
    held = _lock_held(list(newest))
    fresh = [
        row
        for trade_id, (_, row) in newest.items()
        if trade_id not in held or held[trade_id].version < row.obligation.trade_version
    ]
    chain_ids = {h.chain_id for h in held.values()}
    chain_ids |= {netting.chain_id(r.obligation.key) for r in fresh}
    lock_chains(chain_ids)
    applied = _upsert(fresh, now)
    moves = [
        chains.Move(
            r.obligation.trade_id,
            held[r.obligation.trade_id].share if r.obligation.trade_id in held else None,
            None if r.cancelled else _side(r),
        )
        for r in fresh
        if r.obligation.trade_id in applied
    ]
    return chains.chains_move(moves, now), rejections


@dataclass(frozen=True)
class _Held:
    version: int
    chain_id: str
    share: chains.Share | None  # None when the held version is a cancellation


def _side(row: _Row) -> chains.Side:
    ob = row.obligation
    ssi = row.ssi or {}
    return chains.Side(
        netting.chain_id(ob.key),
        ob.signed_quantity,
        ob.signed_cash,
        ob.key,
        (
            row.asset_class,
            row.csdr_class,
            row.market,
            ssi.get("custodian_bic", ""),
            ssi.get("safekeeping_account", ""),
            ssi.get("cash_account", ""),
        ),
    )


def _lock_held(trade_ids: list[str]) -> dict[str, _Held]:
    if not trade_ids:
        return {}
    rows = (
        Obligation.objects.select_for_update()
        .filter(trade_id__in=trade_ids)
        .values_list(
            "trade_id", "trade_version", "status", "chain_id", "side", "quantity", "cash_amount"
        )
    )
    held = {}
    for trade_id, version, status, chain_id, side, quantity, cash in rows:
        share = None
        if status == Obligation.Status.ACTIVE:
            sign = 1 if side == netting.Side.BUY else -1
            share = chains.Share(chain_id, sign * quantity, -sign * cash)
        held[trade_id] = _Held(version, chain_id, share)
    return held


_UPSERT = """
INSERT INTO settlement_obligation AS o (
    trade_id, trade_version, status, chain_id, account, counterparty, instrument, asset_class,
    csdr_class, market, settle_date, currency, payment_type, side, quantity, cash_amount,
    ssi_custodian_bic, ssi_safekeeping_account, ssi_cash_account, updated_at)
SELECT * FROM unnest(
    %s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::text[], %s::text[], %s::text[], %s::date[], %s::text[], %s::text[], %s::text[],
    %s::numeric[], %s::numeric[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
ON CONFLICT (trade_id) DO UPDATE SET
    trade_version = EXCLUDED.trade_version, status = EXCLUDED.status,
    chain_id = EXCLUDED.chain_id, account = EXCLUDED.account,
    counterparty = EXCLUDED.counterparty, instrument = EXCLUDED.instrument,
    asset_class = EXCLUDED.asset_class, csdr_class = EXCLUDED.csdr_class,
    market = EXCLUDED.market, settle_date = EXCLUDED.settle_date,
    currency = EXCLUDED.currency, payment_type = EXCLUDED.payment_type, side = EXCLUDED.side,
    quantity = EXCLUDED.quantity, cash_amount = EXCLUDED.cash_amount,
    ssi_custodian_bic = EXCLUDED.ssi_custodian_bic,
    ssi_safekeeping_account = EXCLUDED.ssi_safekeeping_account,
    ssi_cash_account = EXCLUDED.ssi_cash_account, updated_at = EXCLUDED.updated_at
-- Only ever forward: a concurrent writer with a newer version wins, whatever the order.
WHERE o.trade_version < EXCLUDED.trade_version
RETURNING trade_id
"""


def _upsert(rows: Sequence[_Row], now: datetime) -> set[str]:
    if not rows:
        return set()
    obs = [r.obligation for r in rows]
    columns: list[list[Any]] = [
        [o.trade_id for o in obs],
        [o.trade_version for o in obs],
        [Obligation.Status.CANCELLED if r.cancelled else Obligation.Status.ACTIVE for r in rows],
        [netting.chain_id(o.key) for o in obs],
        [o.account for o in obs],
        [o.counterparty for o in obs],
        [o.instrument for o in obs],
        [r.asset_class for r in rows],
        [r.csdr_class for r in rows],
        [r.market for r in rows],
        [o.settle_date for o in obs],
        [o.currency for o in obs],
        [str(o.payment_type) for o in obs],
        [str(o.side) for o in obs],
        [o.quantity for o in obs],
        [o.cash_amount for o in obs],
        [(r.ssi or {}).get("custodian_bic", "") for r in rows],
        [(r.ssi or {}).get("safekeeping_account", "") for r in rows],
        [(r.ssi or {}).get("cash_account", "") for r in rows],
        [now] * len(rows),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, columns)
        return {row[0] for row in cursor.fetchall()}
