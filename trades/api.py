"""``/api/v1/trades/``: list and filter trades, read one with every version, submit one.

Reading needs the viewer role, submitting the operations role (``RolePermission``). Lists page
with a cursor on the primary key (keyset: no OFFSET, no COUNT), so page 10,000 costs what page 1
does. A page of trades costs two queries: the heads, then their current versions.
"""

from __future__ import annotations

import base64
from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from backoffice.roles import OPERATIONS, VIEWER, RolePermission
from core import clock
from trades.filters import TradeFilter
from trades.idempotency import (
    IDEMPOTENCY_HEADER,
    IdempotencyKeyReused,
    key_problem,
    trade_submit,
)
from trades.models import Trade
from trades.selectors_blotter import blotter_rows, for_page, trade_detail
from trades.serializers import (
    SubmissionOutputSerializer,
    TradeDetailOutputSerializer,
    TradeListOutputSerializer,
    TradeSubmitInputSerializer,
)
from trades.views import TRADE_NOT_FOUND

REPLAYED_HEADER = "Idempotent-Replayed"
INVALID_CURSOR = "Invalid cursor: follow the previous page's `next` link."


class TradeKeysetPagination(BasePagination):
    """Newest first by id; each page ends with a ``next`` link holding the last id seen.

    Keyset, not OFFSET: page 10,000 reads what page 1 does. Each page is read through
    ``for_page``, so a filter that matches few trades does not walk the whole id index.
    """

    page_size = 50
    max_page_size = 250
    _prefix = "id:"

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request = request
        size = self._size(request)
        queryset = queryset.order_by("-id")
        after = self._after(request.query_params.get("cursor"))
        if after is not None:
            queryset = queryset.filter(id__lt=after)
        rows = list(for_page(queryset)[: size + 1])
        self.last_id = rows[size - 1].pk if len(rows) > size else None
        return rows[:size]

    def get_paginated_response(self, data: Any) -> Response:
        link = None
        if self.last_id is not None:
            cursor = base64.urlsafe_b64encode(f"{self._prefix}{self.last_id}".encode()).decode()
            link = replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)
        return Response({"next": link, "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {"type": "string", "format": "uri", "nullable": True},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Where the page starts: take it from the previous page's `next`.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "description": f"Trades per page (default {self.page_size}, at most {self.max_page_size}).",
                "schema": {"type": "integer"},
            },
        ]

    def _size(self, request: Request) -> int:
        try:
            wanted = int(request.query_params.get("page_size", self.page_size))
        except ValueError:
            return self.page_size
        return min(max(wanted, 1), self.max_page_size)

    def _after(self, cursor: str | None) -> int | None:
        if not cursor:
            return None
        try:
            text = base64.urlsafe_b64decode(cursor.encode()).decode()
            if text.startswith(self._prefix):
                return int(text[len(self._prefix) :])
        except (ValueError, UnicodeDecodeError):
            pass
        raise ValidationError({"cursor": [INVALID_CURSOR]})


class TradeListApi(GenericAPIView[Trade]):
    permission_classes = [RolePermission]
    required_role = VIEWER
    write_role = OPERATIONS
    filter_backends = [DjangoFilterBackend]
    filterset_class = TradeFilter
    pagination_class = TradeKeysetPagination
    serializer_class = TradeListOutputSerializer

    def get_queryset(self) -> Any:
        return Trade.objects.all()

    @extend_schema(
        summary="List trades",
        description="Newest first (by id), keyset-paginated: follow `next` for the next page.",
        responses=TradeListOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        trades = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rows = blotter_rows(trades or [])
        return self.get_paginated_response(TradeListOutputSerializer(rows, many=True).data)

    @extend_schema(
        summary="Submit a trade",
        description=(
            "The body is a trade as the `trades.executed` contract defines it. It is validated, "
            "then published to `trades.executed` for capture; 202 means accepted for capture. "
            "Send a unique `Idempotency-Key` with each trade: a retry with the same key and "
            "body gets the first response again, the same key with another body gets 409."
        ),
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="A new unique key per trade (e.g. a UUID); reuse it only to retry.",
            )
        ],
        request=OpenApiTypes.OBJECT,
        responses={
            202: SubmissionOutputSerializer,
            400: OpenApiResponse(description="Missing key, or field errors"),
            409: OpenApiResponse(description="The key was used with a different body"),
        },
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        problem = key_problem(key)
        if problem is not None or key is None:
            return Response({IDEMPOTENCY_HEADER: [problem]}, status=status.HTTP_400_BAD_REQUEST)
        submitted = TradeSubmitInputSerializer(data=request.data)
        submitted.is_valid(raise_exception=True)
        try:
            result = trade_submit(
                payload=submitted.validated_data,
                key=key,
                actor=request.user,  # type: ignore[arg-type]
                now=clock.now(),
            )
        except IdempotencyKeyReused as reused:
            return Response({"detail": str(reused)}, status=status.HTTP_409_CONFLICT)
        return Response(
            result.body,
            status=result.status,
            headers={"Location": result.body["url"], REPLAYED_HEADER: str(result.replayed).lower()},
        )


class TradeDetailApi(GenericAPIView[Trade]):
    permission_classes = [RolePermission]
    required_role = VIEWER
    serializer_class = TradeDetailOutputSerializer

    @extend_schema(summary="A trade with every version and every refused message")
    def get(self, request: Request, trade_id: str) -> Response:
        detail = trade_detail(trade_id)
        if detail is None:
            raise NotFound(TRADE_NOT_FOUND.format(trade_id=trade_id))
        return Response(TradeDetailOutputSerializer(detail).data)
