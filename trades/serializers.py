"""Input and output shapes of the trades API.

The input is the inbound contract itself: ``schemas/trades.executed/v1.json`` is the one
definition of a valid trade. It is checked field by field, so a client learns about every bad
field at once (a 400 with field errors), then as a whole, then against reference data so an
unknown account or instrument is refused here instead of becoming a dead letter later.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import fastjsonschema
from rest_framework import serializers

from backoffice.streaming.schemas import SchemaError, registry
from trades.idempotency import INBOUND_SCHEMA, INBOUND_VERSION
from trades.models import Account, Counterparty, Instrument, Trade, TradeRefusal, TradeVersion

NOT_AN_OBJECT = "The body must be a JSON object with the trade's fields."
REQUIRED = "This field is required."
UNKNOWN_FIELD = "Unknown field: the trade contract has no such field."
DECIMAL_AS_STRING = 'Send decimals as JSON strings (e.g. "100.25"), never as numbers.'
UNKNOWN_ACCOUNT = "Unknown account {value!r}."
CLOSED_ACCOUNT = "Account {value!r} is closed."
UNKNOWN_COUNTERPARTY = "Unknown counterparty {value!r}."
UNKNOWN_INSTRUMENT = "Unknown instrument {value!r} (ISIN)."
CURRENCY_MISMATCH = "The instrument trades in {expected}, not {value}."


@cache
def _field_validators() -> dict[str, Any]:
    body = registry().get(INBOUND_SCHEMA, INBOUND_VERSION).body
    return {
        name: fastjsonschema.compile({"$schema": body["$schema"], **schema})
        for name, schema in body["properties"].items()
    }


def schema_field_errors(payload: Any) -> dict[str, list[str]]:
    """Every field's problems under the inbound schema, keyed by field ("non_field_errors" too)."""
    if not isinstance(payload, dict):
        return {"non_field_errors": [NOT_AN_OBJECT]}
    body = registry().get(INBOUND_SCHEMA, INBOUND_VERSION).body
    properties: dict[str, Any] = body["properties"]
    errors: dict[str, list[str]] = {}
    for name in body["required"]:
        if name not in payload:
            errors[name] = [REQUIRED]
    for name, value in payload.items():
        validate = _field_validators().get(name)
        if validate is None:
            errors[name] = [UNKNOWN_FIELD]
            continue
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException as error:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and properties[name].get("type") == "string":
                errors[name] = [DECIMAL_AS_STRING]
            else:
                errors[name] = [str(error.message).replace("data ", "Value ", 1)]
    if not errors:
        try:  # the whole-document check stays the authority (e.g. for future cross-field rules)
            registry().validate(INBOUND_SCHEMA, INBOUND_VERSION, payload)
        except SchemaError as error:
            errors["non_field_errors"] = [str(error)]
    return errors


def reference_errors(payload: dict[str, Any]) -> dict[str, list[str]]:
    """Unknown or closed account, unknown counterparty or instrument, wrong currency."""
    errors: dict[str, list[str]] = {}
    account = Account.objects.filter(code=payload["account"]).values_list("status", flat=True)
    status = account.first()
    if status is None:
        errors["account"] = [UNKNOWN_ACCOUNT.format(value=payload["account"])]
    elif status != "ACTIVE":
        errors["account"] = [CLOSED_ACCOUNT.format(value=payload["account"])]
    if not Counterparty.objects.filter(code=payload["counterparty"]).exists():
        errors["counterparty"] = [UNKNOWN_COUNTERPARTY.format(value=payload["counterparty"])]
    currency = (
        Instrument.objects.filter(isin=payload["instrument"])
        .values_list("currency", flat=True)
        .first()
    )
    if currency is None:
        errors["instrument"] = [UNKNOWN_INSTRUMENT.format(value=payload["instrument"])]
    elif currency != payload["currency"]:
        errors["currency"] = [
            CURRENCY_MISMATCH.format(expected=currency, value=payload["currency"])
        ]
    return errors


class TradeSubmitInputSerializer(serializers.BaseSerializer[dict[str, Any]]):
    """The body of ``POST /api/v1/trades/``: a trade exactly as ``trades.executed`` carries it."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors = schema_field_errors(data)
        if not errors:
            errors = reference_errors(data)
        if errors:
            raise serializers.ValidationError(errors)
        return dict(data)


class VersionOutputSerializer(serializers.ModelSerializer[TradeVersion]):
    class Meta:
        model = TradeVersion
        exclude = ("id", "input_hash")


class RefusalOutputSerializer(serializers.ModelSerializer[TradeRefusal]):
    class Meta:
        model = TradeRefusal
        exclude = ("id",)


class TradeHeadOutputSerializer(serializers.ModelSerializer[Trade]):
    class Meta:
        model = Trade
        exclude = ("id",)


class TradeListOutputSerializer(serializers.Serializer[Any]):
    """One blotter row: the head's fields and the current version's economics."""

    trade_id = serializers.CharField(source="trade.trade_id")
    version = serializers.IntegerField(source="trade.current_version")
    status = serializers.CharField(source="trade.status")
    account = serializers.CharField(source="trade.account")
    book = serializers.CharField(source="trade.book")
    instrument = serializers.CharField(source="trade.instrument")
    trade_date = serializers.DateField(source="trade.trade_date")
    updated_at = serializers.DateTimeField(source="trade.updated_at")
    symbol = serializers.CharField(source="version.symbol", default=None)
    counterparty = serializers.CharField(source="version.counterparty", default=None)
    side = serializers.CharField(source="version.side", default=None)
    quantity = serializers.DecimalField(
        source="version.quantity", max_digits=20, decimal_places=6, default=None
    )
    price = serializers.DecimalField(
        source="version.price", max_digits=20, decimal_places=8, default=None
    )
    currency = serializers.CharField(source="version.currency", default=None)
    net_amount = serializers.DecimalField(
        source="version.net_amount", max_digits=24, decimal_places=2, default=None
    )
    settle_date = serializers.DateField(source="version.settle_date", default=None)
    url = serializers.SerializerMethodField()

    def get_url(self, row: Any) -> str:
        from django.urls import reverse

        return reverse("api-trade-detail", args=[row.trade.trade_id])


class TradeDetailOutputSerializer(serializers.Serializer[Any]):
    trade = TradeHeadOutputSerializer()
    versions = VersionOutputSerializer(many=True)
    refusals = RefusalOutputSerializer(many=True)


class SubmissionOutputSerializer(serializers.Serializer[Any]):
    trade_id = serializers.CharField()
    trade_version = serializers.IntegerField()
    action = serializers.CharField()
    status = serializers.CharField()
    event_id = serializers.UUIDField()
    url = serializers.CharField()
