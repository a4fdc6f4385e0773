"""``/api/v1/reporting/``: positions, P&L (live and per business date), P&L history, margin.

Read-only: every endpoint needs the viewer role (``RolePermission``). Query parameters are
validated by an Input serializer (a bad date is a 400 naming the field); rows come from
``reporting.selectors``; amounts are decimal strings.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.roles import VIEWER, RolePermission
from reporting import selectors
from reporting.models import MarginCall, MarginSnapshot, PnlSnapshot, Position

BOOKED = [
    "book",
    "account",
    "instrument",
    "asset_class",
    "pnl_method",
    "currency",
    "quantity",
    "mark_price",
    "mark_source",
    "cost_basis",
    "market_value",
    "realized",
    "unrealized",
    "fees",
    "net_realized",
    "total",
    "base_currency",
    "fx_rate_to_base",
    "base_cost_basis",
    "base_market_value",
    "base_realized",
    "base_unrealized",
    "base_fees",
    "base_net_realized",
    "base_total",
]
GROUPS = ("book", "account")


class PositionFilterInputSerializer(serializers.Serializer[Any]):
    account = serializers.CharField(required=False)
    book = serializers.CharField(required=False)
    instrument = serializers.CharField(required=False)


class PositionOutputSerializer(serializers.ModelSerializer[Position]):
    class Meta:
        model = Position
        fields = [*BOOKED, "mark_as_of", "valuation_date", "trade_count", "updated_at"]


class SnapshotOutputSerializer(serializers.ModelSerializer[PnlSnapshot]):
    class Meta:
        model = PnlSnapshot
        fields = ["business_date", *BOOKED, "valuation_date", "trade_count"]


class PnlTotalOutputSerializer(serializers.Serializer[Any]):
    group = serializers.CharField()
    base_currency = serializers.CharField()
    base_market_value = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_realized = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_unrealized = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_fees = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_net_realized = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_total = serializers.DecimalField(max_digits=28, decimal_places=2)


class PnlInputSerializer(serializers.Serializer[Any]):
    date = serializers.DateField(required=False, help_text="a business date: its snapshot")
    book = serializers.CharField(required=False)
    account = serializers.CharField(required=False)


class PositionListApi(APIView):
    permission_classes = [RolePermission]
    required_role = VIEWER

    @extend_schema(
        summary="Live positions",
        parameters=[PositionFilterInputSerializer],
        responses=PositionOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = PositionFilterInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.positions(**query.validated_data)
        return Response(PositionOutputSerializer(rows, many=True).data)


class PnlApi(APIView):
    permission_classes = [RolePermission]
    required_role = VIEWER

    @extend_schema(
        summary="P&L rows and totals per book",
        description=(
            "With `date`, the end-of-day snapshot of that business date; without, the live "
            "positions. Totals are per book, in its base currency."
        ),
        parameters=[PnlInputSerializer],
    )
    def get(self, request: Request) -> Response:
        query = PnlInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data.get("date")
        filters = {k: query.validated_data.get(k) for k in ("book", "account")}
        if day is None:
            live = selectors.positions(**filters)
            rows: Any = PositionOutputSerializer(live, many=True).data
            totals = selectors.pnl_totals(live, by="book")
        else:
            snapshots = selectors.pnl_snapshots(business_date=day, **filters)
            rows = SnapshotOutputSerializer(snapshots, many=True).data
            totals = selectors.pnl_totals(snapshots, by="book")
        return Response(
            {
                "business_date": day,
                "source": "live" if day is None else "snapshot",
                "rows": rows,
                "totals": PnlTotalOutputSerializer(totals, many=True).data,
            }
        )


class PnlHistoryInputSerializer(serializers.Serializer[Any]):
    by = serializers.ChoiceField(choices=GROUPS, default="book")
    book = serializers.CharField(required=False)
    account = serializers.CharField(required=False)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)


class PnlHistoryOutputSerializer(serializers.Serializer[Any]):
    business_date = serializers.DateField()
    group = serializers.CharField()
    base_currency = serializers.CharField()
    base_total = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_realized = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_unrealized = serializers.DecimalField(max_digits=28, decimal_places=2)
    base_fees = serializers.DecimalField(max_digits=28, decimal_places=2)
    day_change = serializers.DecimalField(max_digits=28, decimal_places=2, allow_null=True)


class PnlHistoryApi(APIView):
    permission_classes = [RolePermission]
    required_role = VIEWER

    @extend_schema(
        summary="P&L history per book or account",
        description="Cumulative P&L per business date and the change since the previous one.",
        parameters=[PnlHistoryInputSerializer],
        responses=PnlHistoryOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = PnlHistoryInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        history = selectors.pnl_history(**query.validated_data)
        return Response(PnlHistoryOutputSerializer(history, many=True).data)


class MarginInputSerializer(serializers.Serializer[Any]):
    account = serializers.CharField(required=False)
    date = serializers.DateField(required=False, help_text="default: each account's latest")


class MarginOutputSerializer(serializers.ModelSerializer[MarginSnapshot]):
    class Meta:
        model = MarginSnapshot
        exclude = ["id", "created_at"]


class MarginApi(APIView):
    permission_classes = [RolePermission]
    required_role = VIEWER

    @extend_schema(
        summary="Exposure, margin requirement, equity and call per account",
        parameters=[MarginInputSerializer],
        responses=MarginOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = MarginInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.margin_snapshots(
            account=query.validated_data.get("account"),
            business_date=query.validated_data.get("date"),
        )
        return Response(MarginOutputSerializer(rows, many=True).data)


class MarginCallInputSerializer(serializers.Serializer[Any]):
    account = serializers.CharField(required=False)


class MarginCallOutputSerializer(serializers.ModelSerializer[MarginCall]):
    class Meta:
        model = MarginCall
        exclude = ["id"]


class MarginCallListApi(APIView):
    permission_classes = [RolePermission]
    required_role = VIEWER

    @extend_schema(
        summary="Issued margin calls, newest business date first",
        parameters=[MarginCallInputSerializer],
        responses=MarginCallOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = MarginCallInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.margin_calls(account=query.validated_data.get("account"))
        return Response(MarginCallOutputSerializer(rows, many=True).data)
