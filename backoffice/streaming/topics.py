"""Topic names. Every name is resolved through ``topic()`` so a prefix can isolate environments."""

from __future__ import annotations

from django.conf import settings

TRADES_EXECUTED = "trades.executed"
TRADES_CAPTURED = "trades.captured"
TRADES_VALIDATED = "trades.validated"
TRADES_REJECTED = "trades.rejected"
SETTLEMENT_INSTRUCTIONS = "settlement.instructions"
SETTLEMENT_STATUS = "settlement.status"
CUSTODIAN_STATEMENTS = "custodian.statements"
MARKETDATA_PRICES = "marketdata.prices"

DLQ_SUFFIX = ".dlq"


def prefix() -> str:
    return settings.STREAMING.topic_prefix


def topic(name: str) -> str:
    """The physical topic for a logical name (``trades.executed`` -> ``<prefix>trades.executed``)."""
    return f"{prefix()}{name}"


def logical(physical: str) -> str:
    """The logical name of a physical topic (inverse of ``topic``)."""
    pre = prefix()
    return physical[len(pre) :] if pre and physical.startswith(pre) else physical


def dead_letter_topic(name: str) -> str:
    return f"{name}{DLQ_SUFFIX}"


def group(stage: str) -> str:
    """Consumer-group id of a stage, prefixed like topics."""
    return f"{prefix()}backoffice.{stage}"
