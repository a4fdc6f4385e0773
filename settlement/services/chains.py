"""Netting chain heads, kept by delta (``settlement.models.chains``).

When a trade's obligation moves (a new trade, an amendment, a cancellation), the chain it left
loses its signed amounts and the chain it is in gains the new ones, in the transaction that
moves it; when a custodian settles part of a version, its chain's settled totals grow by the
increment. Re-netting then reads one head per chain instead of the chain's whole day.

Callers hold the chains' locks (``renet.lock_chains``): a head's version is read to number the
membership intervals, and no one else may issue a version of that chain meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from settlement import netting

ZERO = Decimal(0)


@dataclass(frozen=True)
class Share:
    """An obligation's signed amounts (account side) in the chain it is in."""

    chain_id: str
    quantity: Decimal
    cash: Decimal


@dataclass(frozen=True)
class Side(Share):
    """An obligation being written: its amounts, its key and the reference columns a new head
    (or a new version) copies."""

    key: netting.NettingKey
    reference: tuple[str, str, str, str, str, str]  # asset, csdr, market, ssi bic/safe/cash


@dataclass(frozen=True)
class Move:
    """One trade's obligation before and after a batch (None: not in force)."""

    trade_id: str
    old: Share | None
    new: Side | None


@dataclass
class _Delta:
    chain_id: str
    side: Side | None = None  # set when an obligation is written into the chain now
    quantity: Decimal = ZERO
    cash: Decimal = ZERO
    count: int = 0
    members_changed: bool = False


# A chain's head is created empty by the first obligation that enters it, then every change is
# one delta: an insert carrying the delta itself would have to satisfy the head's constraints
# (a batch may take more obligations out of a chain than it puts in).
_CREATE = """
INSERT INTO settlement_chain (
    chain_id, account, counterparty, instrument, settle_date, currency, payment_type,
    asset_class, csdr_class, market, ssi_custodian_bic, ssi_safekeeping_account,
    ssi_cash_account, target_quantity, target_cash, obligations, members_changed, version,
    settled_quantity, settled_cash, any_settled, updated_at)
SELECT v.*, 0, 0, 0, false, 0, 0, 0, false, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::date[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
    AS v
ON CONFLICT (chain_id) DO NOTHING
"""
# The reference columns follow the obligation written last; a chain only losing one keeps its.
_SHIFT = """
UPDATE settlement_chain AS c SET
    target_quantity = c.target_quantity + v.q, target_cash = c.target_cash + v.c,
    obligations = c.obligations + v.n, members_changed = c.members_changed OR v.changed,
    asset_class = CASE WHEN v.fresh THEN v.asset_class ELSE c.asset_class END,
    csdr_class = CASE WHEN v.fresh THEN v.csdr_class ELSE c.csdr_class END,
    market = CASE WHEN v.fresh THEN v.market ELSE c.market END,
    ssi_custodian_bic = CASE WHEN v.fresh THEN v.bic ELSE c.ssi_custodian_bic END,
    ssi_safekeeping_account = CASE WHEN v.fresh THEN v.safekeeping
                                   ELSE c.ssi_safekeeping_account END,
    ssi_cash_account = CASE WHEN v.fresh THEN v.cash_acc ELSE c.ssi_cash_account END,
    updated_at = %s
FROM unnest(%s::text[], %s::numeric[], %s::numeric[], %s::int[], %s::bool[], %s::bool[],
            %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
    AS v(chain_id, q, c, n, changed, fresh, asset_class, csdr_class, market, bic, safekeeping,
         cash_acc)
WHERE c.chain_id = v.chain_id
"""
# Membership: a trade leaving closes its open interval at the next version (or drops it, if
# that version was never issued); a trade joining opens one at the next version.
_MEMBERS = """
WITH v(chain_id, trade_id, joins) AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::bool[])),
closed AS (
    UPDATE settlement_chain_member AS m SET left_version = c.version + 1
    FROM v JOIN settlement_chain AS c USING (chain_id)
    WHERE NOT v.joins AND m.chain_id = v.chain_id AND m.trade_id = v.trade_id
      AND m.left_version IS NULL AND m.joined_version <= c.version
    RETURNING 1
), dropped AS (
    DELETE FROM settlement_chain_member AS m USING v, settlement_chain AS c
    WHERE NOT v.joins AND c.chain_id = v.chain_id AND m.chain_id = v.chain_id
      AND m.trade_id = v.trade_id AND m.left_version IS NULL
      AND m.joined_version = c.version + 1
    RETURNING 1
)
INSERT INTO settlement_chain_member (chain_id, trade_id, joined_version, left_version)
SELECT v.chain_id, v.trade_id, c.version + 1, NULL
FROM v JOIN settlement_chain AS c USING (chain_id) WHERE v.joins
"""


def chains_move(moves: Sequence[Move], now: datetime) -> set[str]:
    """Shift each moved obligation's amounts from the chain it left to the chain it is in;
    return the chains whose heads changed (those to re-net).

    Guarantee: afterwards every chain's target equals the signed sum of its obligations in
    force and ``obligations`` their number, provided it did before; a trade joining or leaving a
    chain opens or closes its membership interval and flags the chain's membership as changed;
    an amendment within one chain changes only amounts. A fixed number of statements per batch.
    """
    deltas: dict[str, _Delta] = {}
    members: list[tuple[str, str, bool]] = []
    for move in moves:
        old_chain = move.old.chain_id if move.old is not None else None
        new_chain = move.new.chain_id if move.new is not None else None
        moved = old_chain != new_chain
        for share, sign in ((move.old, -1), (move.new, 1)):
            if share is None:
                continue
            delta = deltas.setdefault(share.chain_id, _Delta(share.chain_id))
            delta.quantity += sign * share.quantity
            delta.cash += sign * share.cash
            if moved:
                delta.count += sign
                delta.members_changed = True
                members.append((share.chain_id, move.trade_id, sign > 0))
        if move.new is not None:
            deltas[move.new.chain_id].side = move.new
    rows = list(deltas.values())
    fresh = [d.side for d in rows if d.side is not None]
    with connection.cursor() as cursor:
        if fresh:
            cursor.execute(_CREATE, [now, *_key_columns(fresh)])
        if rows:
            refs = [d.side.reference if d.side is not None else ("",) * 6 for d in rows]
            cursor.execute(
                _SHIFT,
                [
                    now,
                    [d.chain_id for d in rows],
                    [d.quantity for d in rows],
                    [d.cash for d in rows],
                    [d.count for d in rows],
                    [d.members_changed for d in rows],
                    [d.side is not None for d in rows],
                    *([ref[i] for ref in refs] for i in range(6)),
                ],
            )
            if cursor.rowcount != len(rows):
                # An obligation in force always has its chain's head: a missing one is a bug.
                raise RuntimeError(f"{len(rows) - cursor.rowcount} chain head(s) missing")
        if members:
            cursor.execute(_MEMBERS, [list(column) for column in zip(*members, strict=True)])
    return set(deltas)


def _key_columns(sides: Sequence[Side]) -> list[list[Any]]:
    keys = [s.key for s in sides]
    return [
        [s.chain_id for s in sides],
        [k.account for k in keys],
        [k.counterparty for k in keys],
        [k.instrument for k in keys],
        [k.settle_date for k in keys],
        [k.currency for k in keys],
        [str(k.payment_type) for k in keys],
        *([s.reference[i] for s in sides] for i in range(6)),
    ]


def chains_settled_add(increments: Mapping[str, tuple[Decimal, Decimal]], now: datetime) -> None:
    """Add settled increments (signed quantity, cash per chain) to the chains' settled totals.

    Every settled increment counts: a CANCEL version carries no amounts, so none settle on it.
    """
    rows = [(c, q, k) for c, (q, k) in increments.items() if q or k]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE settlement_chain AS c SET settled_quantity = c.settled_quantity + v.q,"
            " settled_cash = c.settled_cash + v.c, any_settled = true, updated_at = %s"
            " FROM unnest(%s::text[], %s::numeric[], %s::numeric[]) AS v(chain_id, q, c)"
            " WHERE c.chain_id = v.chain_id",
            [now, *(list(column) for column in zip(*rows, strict=True))],
        )


def chains_instructed(versions: Iterable[tuple[str, int]], now: datetime) -> None:
    """Record each chain's newly issued version; its membership is instructed from here on."""
    rows = list(versions)
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE settlement_chain AS c SET version = v.version, members_changed = false,"
            " updated_at = %s FROM unnest(%s::text[], %s::int[]) AS v(chain_id, version)"
            " WHERE c.chain_id = v.chain_id",
            [now, *(list(column) for column in zip(*rows, strict=True))],
        )
