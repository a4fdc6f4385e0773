"""Reads behind the trade blotter, the trade page and the trades API.

A trade's head (``Trade``) carries what the blotter filters and sorts on, with indexes; what it
shows besides (side, quantity, amounts) lives on the current ``TradeVersion``. A page of heads is
read first and their versions in one more query, so a page costs two queries whatever its size,
and an export streams heads in chunks, two queries per chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce

from trades.models import Trade, TradeRefusal, TradeVersion

EXPORT_CHUNK = 2000
# How a filtered page is read (see ``for_page``): through the filter's own index, then sorted,
# when PostgreSQL estimates fewer matches than this; else by walking the sort order's index.
# Trade date and trade id follow arrival order, so their matches lie together, possibly far from
# the newest: for them a walk is risky up to many matches. Other filters' matches are spread
# through time, so a walk finds a page quickly unless they are rare.
SORT_BELOW_ROWS_IN_TIME = 100_000
SORT_BELOW_ROWS = 5_000
IN_TIME = frozenset({"trade_date", "trade_id"})


@dataclass(frozen=True, slots=True)
class BlotterRow:
    """A trade head with its current version (None only while a head has no version row)."""

    trade: Trade
    version: TradeVersion | None


@dataclass(frozen=True)
class TradeDetail:
    trade: Trade
    versions: list[TradeVersion]  # oldest first
    refusals: list[TradeRefusal]  # oldest first

    @property
    def current(self) -> TradeVersion | None:
        return next((v for v in self.versions if v.version == self.trade.current_version), None)


def trade_list() -> QuerySet[Trade]:
    """Every trade head, most recently changed first (the blotter's and the API's base)."""
    return Trade.objects.order_by("-updated_at", "-id")


def estimated_rows(queryset: QuerySet[Trade]) -> int:
    """PostgreSQL's estimate of how many rows ``queryset`` matches (EXPLAIN: no rows are read)."""
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def for_page(queryset: QuerySet[Trade]) -> QuerySet[Trade]:
    """``queryset`` (filtered and ordered) arranged so that reading one page of it stays cheap.

    Unfiltered, or when many rows match, walking the index of the sort order finds a page at
    once. When few match, that walk can pass over most of the table first, and PostgreSQL's
    planner, assuming matches are spread evenly, walks anyway. Then the same order is given as
    expressions no index provides (``COALESCE(col, col)``), so the planner fetches the matches
    through the filter's index and sorts them: bounded by one scan, whatever the data's layout.
    """
    if queryset.query.is_empty() or not queryset.query.where:
        return queryset
    fields = _filtered_fields(queryset.query.where)
    limit = SORT_BELOW_ROWS_IN_TIME if fields & IN_TIME else SORT_BELOW_ROWS
    if estimated_rows(queryset) >= limit:
        return queryset
    order = []
    for field in queryset.query.order_by:
        if not isinstance(field, str):
            return queryset  # already expressions
        name = field.lstrip("-")
        expression = Coalesce(F(name), F(name))
        order.append(expression.desc() if field.startswith("-") else expression.asc())
    return queryset.order_by(*order)


def _filtered_fields(node: Any) -> set[str]:
    """The model fields a WHERE tree filters on."""
    found: set[str] = set()
    for child in getattr(node, "children", []):
        target = getattr(getattr(child, "lhs", None), "target", None)
        if target is not None:
            found.add(target.name)
        else:
            found |= _filtered_fields(child)
    return found


def blotter_rows(trades: Sequence[Trade]) -> list[BlotterRow]:
    """``trades`` with their current versions attached, in the same order (one query)."""
    wanted = {(t.trade_id, t.current_version) for t in trades}
    found = {
        (v.trade_id, v.version): v
        for v in TradeVersion.objects.filter(trade_id__in={t for t, _ in wanted})
        if (v.trade_id, v.version) in wanted
    }
    return [BlotterRow(t, found.get((t.trade_id, t.current_version))) for t in trades]


def iter_blotter_rows(
    trades: QuerySet[Trade], *, chunk_size: int = EXPORT_CHUNK
) -> Iterator[BlotterRow]:
    """Stream every trade of ``trades`` (in its order) with its current version, chunk by chunk."""
    heads: Iterable[Trade] = trades.iterator(chunk_size=chunk_size)
    iterator = iter(heads)
    while chunk := list(islice(iterator, chunk_size)):
        yield from blotter_rows(chunk)


def trade_detail(trade_id: str) -> TradeDetail | None:
    """A trade's head, every version and every refusal (three queries); None when unknown."""
    trade = Trade.objects.filter(trade_id=trade_id).first()
    if trade is None:
        return None
    return TradeDetail(
        trade=trade,
        versions=list(TradeVersion.objects.filter(trade_id=trade_id).order_by("version")),
        refusals=list(TradeRefusal.objects.filter(trade_id=trade_id).order_by("refused_at", "id")),
    )


# Fields compared between consecutive versions on the trade page: what an amendment changed.
COMPARED_FIELDS = (
    "action",
    "account",
    "book",
    "counterparty",
    "instrument",
    "side",
    "quantity",
    "price",
    "currency",
    "gross_amount",
    "fees",
    "net_amount",
    "trade_date",
    "settle_date",
    "venue",
    "trader",
    "payment_type",
)


def version_changes(versions: Sequence[TradeVersion]) -> dict[int, list[str]]:
    """For each version after the first, the fields (as labels) that differ from the one before."""
    changes: dict[int, list[str]] = {}
    for before, after in pairwise(versions):
        changes[after.version] = [
            name.replace("_", " ")
            for name in COMPARED_FIELDS
            if getattr(before, name) != getattr(after, name)
        ]
    return changes
