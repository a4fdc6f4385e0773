"""The capture stage: trades.executed -> normalised, enriched, versioned -> trades.captured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from backoffice.streaming import topics
from backoffice.streaming.consumer import Stage
from backoffice.streaming.envelope import Message, Outbound, Subscription
from backoffice.streaming.store import Rejection, StageContext, StageResult
from trades import selectors
from trades.capture import (
    CaptureRejected,
    Decision,
    EnrichedTrade,
    Head,
    decide,
    enrich,
)
from trades.services import Applied, Refused, trade_versions_record


def handle_capture(messages: Sequence[Message], ctx: StageContext) -> StageResult:
    """Capture a batch: enrich each trade, apply the versions that win, refuse the rest."""
    result = StageResult()
    # Cached per process until reference data changes: an edit is seen by the next batch.
    ref = selectors.capture_reference()
    enriched: list[tuple[Message, EnrichedTrade]] = []
    for message in messages:
        try:
            enriched.append((message, enrich(message.payload, ref)))
        except CaptureRejected as rejected:
            result.rejections.append(Rejection(message, rejected.error_class, rejected.reason))
    ids = [t.trade_id for _, t in enriched]
    heads = selectors.trade_heads(ids)
    hashes = selectors.version_hashes(ids)
    applied: list[Applied] = []
    refused: list[Refused] = []
    for message, trade in enriched:  # in offset order: later versions in the batch see earlier ones
        decision, detail = decide(heads.get(trade.trade_id), trade, hashes.get(trade.trade_id, {}))
        if decision is not Decision.APPLY:
            refused.append(
                Refused(
                    message.payload,
                    decision.value,
                    detail,
                    message.topic,
                    message.partition,
                    message.offset,
                )
            )
            continue
        previous = heads.get(trade.trade_id)
        heads[trade.trade_id] = Head(
            trade.trade_version, trade.action == "CANCEL", trade.input_hash
        )
        hashes.setdefault(trade.trade_id, {})[trade.trade_version] = trade.input_hash
        applied.append(Applied(trade, message.topic, message.partition, message.offset))
        result.events.append(
            Outbound(
                topic=topics.TRADES_CAPTURED,
                key=trade.account,
                schema="trades.captured",
                payload=captured_payload(trade, previous.version if previous else None),
                cause=message,
                correlation_id=trade.trade_id,
            )
        )
    trade_versions_record(applied=applied, refused=refused, now=ctx.now)
    return result


def captured_payload(trade: EnrichedTrade, previous_version: int | None) -> dict[str, Any]:
    """The trades.captured payload, built field by field (``asdict`` deep-copies: too slow here)."""
    payload = {name: getattr(trade, name) for name in _PAYLOAD_FIELDS}
    ssi = trade.ssi
    payload["ssi"] = (
        None
        if ssi is None
        else {
            "custodian_bic": ssi.custodian_bic,
            "safekeeping_account": ssi.safekeeping_account,
            "cash_account": ssi.cash_account,
        }
    )
    payload["previous_version"] = previous_version
    return payload


_PAYLOAD_FIELDS = [f.name for f in fields(EnrichedTrade) if f.name not in {"ssi", "input_hash"}]


CAPTURE = Stage(
    name="capture",
    subscriptions=[Subscription(topics.TRADES_EXECUTED, "trades.executed", enveloped=False)],
    handler=handle_capture,
)
