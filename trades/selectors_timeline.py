"""A trade's timeline: what happened to it, from every stage, in time order.

Each stage contributes a *source*: a function from a trade id to timeline items (one query per
source, never per item). Trades registers capture and the audit trail here; another app plugs in
without touching this module, from its ``AppConfig.ready()``::

    from trades.selectors_timeline import TimelineItem, register_timeline_source

    def compliance_items(trade_id: str) -> list[TimelineItem]: ...

    register_timeline_source("compliance", compliance_items)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from backoffice.audit.models import AuditEntry
from trades.models import TradeRefusal, TradeVersion

OK = "ok"
INFO = "info"
WARN = "warn"
BAD = "bad"


@dataclass(frozen=True)
class TimelineItem:
    """One event in a trade's life: when, which stage, what happened and the detail."""

    at: datetime
    stage: str
    what: str
    detail: str = ""
    tone: str = INFO  # ok, info, warn or bad: the colour of its marker
    link: str = ""
    version: int | None = None


TimelineSource = Callable[[str], Iterable[TimelineItem]]

# Ordered by registration; a name registered again replaces its source (re-imports are harmless).
_SOURCES: dict[str, TimelineSource] = {}


def register_timeline_source(name: str, source: TimelineSource) -> None:
    """Add (or replace) the source called ``name``; its items join every trade's timeline."""
    _SOURCES[name] = source


def timeline_sources() -> dict[str, TimelineSource]:
    return dict(_SOURCES)


def trade_timeline(trade_id: str) -> list[TimelineItem]:
    """Every source's items for ``trade_id``, oldest first (ties keep the sources' order)."""
    items = [item for source in _SOURCES.values() for item in source(trade_id)]
    return sorted(items, key=lambda item: item.at)


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f")  # 100.000000 -> 100, 231.40000000 -> 231.4


def capture_items(trade_id: str) -> list[TimelineItem]:
    """The execution, each captured version and each refused message of the trade."""
    versions = list(TradeVersion.objects.filter(trade_id=trade_id).order_by("version"))
    items = [
        TimelineItem(
            at=v.captured_at,
            stage="capture",
            what=f"Captured v{v.version} ({v.get_action_display().lower()})",
            detail=(
                f"{v.side} {_amount(v.quantity)} {v.symbol} @ {_amount(v.price)} {v.currency}, "
                f"net {v.net_amount:,} {v.currency}, settles {v.settle_date.isoformat()}"
                f"{' (computed)' if v.settle_date_computed else ''}; "
                f"from {v.source_topic}[{v.source_partition}]@{v.source_offset}"
            ),
            tone=BAD if v.action == "CANCEL" else OK,
            version=v.version,
        )
        for v in versions
    ]
    if versions:  # the execution itself, as the first version reported it
        first = versions[0]
        items.insert(
            0,
            TimelineItem(
                at=first.trade_time,
                stage="execution",
                what=f"Executed on {first.venue}",
                detail=f"by {first.trader}, {first.side} {_amount(first.quantity)} {first.symbol}",
                version=first.version,
            ),
        )
    items += [
        TimelineItem(
            at=r.refused_at,
            stage="capture",
            what=f"Refused v{r.version} ({r.get_reason_display().lower()})",
            detail=r.detail,
            tone=WARN,
            version=r.version,
        )
        for r in TradeRefusal.objects.filter(trade_id=trade_id).order_by("refused_at", "id")
    ]
    return items


def audit_items(trade_id: str) -> list[TimelineItem]:
    """Human actions recorded against the trade (e.g. submitted through the API)."""
    return [
        TimelineItem(
            at=entry.at,
            stage="audit",
            what=f"{entry.action} by {entry.actor_name}",
            detail=entry.reason,
        )
        for entry in AuditEntry.objects.filter(object_type="trade", object_id=trade_id).order_by(
            "at", "id"
        )
    ]


register_timeline_source("capture", capture_items)
register_timeline_source("audit", audit_items)
