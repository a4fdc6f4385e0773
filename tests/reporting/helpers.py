"""Building ``trades.validated`` and ``marketdata.prices`` events, and running the stage on them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from backoffice.money import quantize_money
from backoffice.streaming import topics
from backoffice.streaming.envelope import Outbound, decode, encode
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import BatchOutcome, Record, apply_batch
from reporting.stage import STAGE, handle

AAPL = "US0378331005"
MSFT = "US5949181045"
SAP = "DE0007164600"
NOW = datetime(2024, 12, 20, 22, 0, tzinfo=UTC)

BOOKS = {
    "EQ-US": ("USD", "FIFO"),
    "EQ-EU": ("EUR", "AVERAGE"),
    "MACRO": ("USD", "FIFO"),
    "RATES-EU": ("EUR", "AVERAGE"),
}
INSTRUMENTS = {AAPL: ("USD", "XNAS"), MSFT: ("USD", "XNAS"), SAP: ("EUR", "XETR")}
SUBSCRIPTIONS = {s.topic: s for s in STAGE.subscriptions}
# Offsets only need to grow within a test database; one counter for the whole run does that.
_offsets = iter(range(10**9))


def validated(
    trade_id: str,
    *,
    version: int = 1,
    action: str | None = None,
    account: str = "ACC-0001",
    book: str = "EQ-US",
    instrument: str = AAPL,
    side: str = "BUY",
    quantity: str = "100",
    price: str = "200.00",
    fees: str = "0.00",
    time: str = "2024-12-20T14:31:00Z",
    method: str | None = None,
) -> dict[str, Any]:
    """A complete, schema-valid ``trades.validated`` payload."""
    base, book_method = BOOKS[book]
    currency, market = INSTRUMENTS[instrument]
    gross = quantize_money(Decimal(quantity) * Decimal(price), currency)
    fee = Decimal(fees)
    return {
        "trade_id": trade_id,
        "trade_version": version,
        "action": action or ("NEW" if version == 1 else "AMEND"),
        "previous_version": None if version == 1 else version - 1,
        "account": account,
        "book": book,
        "book_base_currency": base,
        "pnl_method": method or book_method,
        "counterparty": "CP-GSCO",
        "instrument": instrument,
        "symbol": {AAPL: "AAPL", MSFT: "MSFT", SAP: "SAP"}[instrument],
        "asset_class": "EQUITY",
        "csdr_class": "LIQUID_SHARES",
        "market": market,
        "side": side,
        "quantity": quantity,
        "price": price,
        "currency": currency,
        "gross_amount": f"{gross:f}",
        "fees": fees,
        "net_amount": f"{gross + fee if side == 'BUY' else gross - fee:f}",
        "trade_date": time[:10],
        "trade_time": time,
        "settle_date": time[:10],
        "settle_date_computed": True,
        "venue": market,
        "trader": "jdoe",
        "payment_type": "DVP",
        "ssi": None,
        "compliance": {
            "outcome": "PASSED",
            "exception_id": None,
            "approved_by": None,
            "override_reason": None,
        },
    }


def price(
    isin: str, value: str, *, as_of: str = "2024-12-20T21:00:00Z", currency: str | None = None
) -> dict[str, Any]:
    return {
        "isin": isin,
        "price": value,
        "currency": currency or INSTRUMENTS.get(isin, ("USD", ""))[0],
        "as_of": as_of,
        "business_date": as_of[:10],
        "source": "TEST",
    }


def encoded(payload: dict[str, Any], *, occurred_at: datetime = NOW) -> tuple[str, Any]:
    """The logical topic and the envelope the upstream stage (or produce_prices) would publish."""
    is_trade = "trade_id" in payload
    event = Outbound(
        topic=topics.TRADES_VALIDATED if is_trade else topics.MARKETDATA_PRICES,
        key=payload["account"] if is_trade else payload["isin"],
        schema="trades.validated" if is_trade else "marketdata.prices",
        payload=payload,
    )
    return event.topic, encode(
        event, registry=registry(), event_id=uuid.uuid4(), occurred_at=occurred_at
    )


def run(*payloads: dict[str, Any], now: datetime = NOW) -> BatchOutcome:
    """One batch through the runtime's transaction (``store.apply_batch``), minus Kafka."""
    records = []
    for payload in payloads:
        topic, event = encoded(payload)
        offset = next(_offsets)
        headers = [(k, v.encode()) for k, v in event.headers.items()]
        message = decode(
            subscription=SUBSCRIPTIONS[topic],
            partition=0,
            offset=offset,
            key=event.key,
            value=event.value,
            headers=headers,
            registry=registry(),
        )
        records.append(Record(topic, 0, offset, event.key, event.value, headers, message=message))
    return apply_batch(
        stage="reporting", group="reporting-test", handler=handle, records=records, now=now
    )


def run_each(payloads: Sequence[dict[str, Any]], now: datetime = NOW) -> None:
    """Each payload in its own batch (the incremental path as often as possible)."""
    for payload in payloads:
        run(payload, now=now)
