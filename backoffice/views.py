"""Project-level views: the dashboard, the API docs page, error pages, health and metrics."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.http import etag
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backoffice.charts import bar_chart
from backoffice.config import BASE_DIR
from backoffice.roles import VIEWER
from backoffice.streaming import selectors as streaming_selectors
from backoffice.streaming.models import ConsumerHeartbeat, DeadLetter
from backoffice.ui import dashboard_cards, role_required
from core import clock
from trades.models import Trade
from trades.selectors import business_date

STYLESHEET = BASE_DIR / "static" / "ui" / "app.css"
PAGE_NOT_FOUND = "There is nothing at this address."
SERVER_ERROR = "Something went wrong on our side; it has been logged. Try again in a moment."


@dataclass(frozen=True)
class StageLine:
    """One stage on the dashboard: the heartbeat totals plus rate and open dead letters."""

    stage: str
    consumers: int
    alive: int
    processed: int
    per_second: Decimal
    lag: int
    dead_letters: int
    last_seen: datetime | None

    @property
    def health(self) -> str:
        if self.alive == 0:
            return "bad"
        if self.alive < self.consumers or self.dead_letters:
            return "warn"
        return "ok"


def _rates() -> dict[str, Decimal]:
    """Messages per second since start, summed over each stage's live consumers."""
    cutoff = clock.now() - streaming_selectors.STALE_AFTER
    rates: dict[str, Decimal] = {}
    for stage, processed, started, seen in ConsumerHeartbeat.objects.filter(
        last_seen__gte=cutoff
    ).values_list("stage", "processed", "started_at", "last_seen"):
        seconds = Decimal(max((seen - started).total_seconds(), 1))
        rates[stage] = rates.get(stage, Decimal(0)) + Decimal(processed) / seconds
    return {stage: rate.quantize(Decimal("0.1")) for stage, rate in rates.items()}


def stage_lines() -> list[StageLine]:
    rates = _rates()
    open_letters = streaming_selectors.dead_letter_counts()
    lines = [
        StageLine(
            stage=row.stage,
            consumers=row.consumers,
            alive=row.alive,
            processed=row.processed,
            per_second=rates.get(row.stage, Decimal(0)),
            lag=row.lag,
            dead_letters=open_letters.pop(row.stage, 0),
            last_seen=row.last_seen,
        )
        for row in streaming_selectors.stage_overview()
    ]
    # A stage with dead letters but no consumer running still belongs on the board.
    lines += [
        StageLine(stage, 0, 0, 0, Decimal(0), 0, count, None)
        for stage, count in sorted(open_letters.items())
    ]
    return lines


def trades_on(day: date) -> dict[str, int]:
    return Trade.objects.filter(trade_date=day).aggregate(
        total=Count("id"),
        new=Count("id", filter=Q(status=Trade.Status.LIVE, current_version=1)),
        amended=Count("id", filter=Q(status=Trade.Status.LIVE, current_version__gt=1)),
        cancelled=Count("id", filter=Q(status=Trade.Status.CANCELLED)),
    )


@role_required(VIEWER)
def home(request: HttpRequest) -> HttpResponseBase:
    stages = stage_lines()
    business_day = business_date()
    today = trades_on(business_day)
    chart = bar_chart(
        [("New", today["new"]), ("Amended", today["amended"]), ("Cancelled", today["cancelled"])],
        title="Today's trades by status",
        width=460,
    )
    recent = DeadLetter.objects.filter(status=DeadLetter.Status.NEW).defer(
        "key", "value", "headers"
    )
    return render(
        request,
        "home.html",
        {
            "stages": stages,
            "today": today,
            "today_date": business_day,
            "today_chart": chart,
            "dead_letters_open": sum(line.dead_letters for line in stages),
            "outbox_backlog": streaming_selectors.outbox_backlog(),
            "consumers": (sum(s.alive for s in stages), sum(s.consumers for s in stages)),
            "recent_dead_letters": recent.order_by("-id")[:5],
            "cards": dashboard_cards(request),
        },
    )


@cache
def _stylesheet() -> tuple[bytes, str]:
    body = STYLESHEET.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:16]}"'


@etag(lambda request: _stylesheet()[1])
def stylesheet(request: HttpRequest) -> HttpResponse:
    """The app's one hand-written stylesheet; no third-party asset, so the UI works offline."""
    response = HttpResponse(_stylesheet()[0], content_type="text/css; charset=utf-8")
    response["Cache-Control"] = f"max-age={int(timedelta(minutes=10).total_seconds())}"
    return response


@role_required(VIEWER)
def api_docs(request: HttpRequest) -> HttpResponseBase:
    """The OpenAPI schema as a readable page, drawn server-side (no Swagger UI from a CDN)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    return render(
        request,
        "api_docs.html",
        {
            "info": schema.get("info", {}),
            "operations": _operations(schema),
            "components": [
                (name, _fields(body))
                for name, body in sorted(schema.get("components", {}).get("schemas", {}).items())
            ],
        },
    )


def _ref_name(node: dict[str, Any]) -> str:
    """The component a schema node points at ("TradeList" from "#/components/schemas/...")."""
    target = node.get("$ref") or node.get("items", {}).get("$ref") or ""
    name = str(target).rsplit("/", 1)[-1]
    return f"{name}[]" if name and "items" in node else name or str(node.get("type", ""))


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            found.append(
                {
                    "path": path,
                    "method": method.upper(),
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        (
                            p["name"],
                            p["in"],
                            p.get("required", False),
                            _ref_name(p.get("schema", {})),
                            p.get("description", ""),
                        )
                        for p in op.get("parameters", [])
                    ],
                    "request": _ref_name(body.get("schema", {})) if body else "",
                    "responses": [
                        (
                            code,
                            r.get("description", ""),
                            _response_body(r),
                        )
                        for code, r in op.get("responses", {}).items()
                    ],
                }
            )
    return found


def _response_body(response: dict[str, Any]) -> str:
    content: dict[str, Any] = response.get("content", {})
    for media in content.values():
        return _ref_name(media.get("schema", {}))
    return ""


def _fields(body: dict[str, Any]) -> list[tuple[str, str, bool, str]]:
    required = set(body.get("required", []))
    return [
        (
            name,
            _ref_name(field)
            if "$ref" in field or "items" in field
            else " ".join(filter(None, [str(field.get("type", "")), str(field.get("format", ""))])),
            name in required,
            str(field.get("description", "")),
        )
        for name, field in body.get("properties", {}).items()
    ]


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else ""
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = exception.args[0] if exception and exception.args else None
    message = detail if isinstance(detail, str) else PAGE_NOT_FOUND
    return render(request, "404.html", {"message": message}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: the database may be what failed, so the page must not query it.
    return HttpResponse(loader.render_to_string("500.html", {"message": SERVER_ERROR}), status=500)


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
