"""OpenTelemetry spans that follow a trade across stages through the ``traceparent`` header.

Each sampled message gets a CONSUMER span per stage whose parent is the span that emitted it; the
events the stage emits carry that span as their ``traceparent``, so one trade's path is one trace.
Sampling is decided where a trace starts (``TRACE_SAMPLE_RATIO``, default 1 %) and carried in the
header's flags. Exporter: ``OTEL_TRACES_EXPORTER`` = ``file`` (default: JSON lines in
``var/log/traces-<service>.jsonl``, or ``OTEL_TRACES_FILE``), ``console`` or ``none``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags

from backoffice.config import BASE_DIR
from backoffice.streaming.envelope import Message
from backoffice.streaming.tracing import TraceContext

_provider: TracerProvider | None = None


def _json_line(span: ReadableSpan) -> str:
    line: str = span.to_json(indent=None)
    return line + os.linesep


def setup(service: str) -> None:
    """Install the tracer provider for this process (once); ``none`` disables spans."""
    global _provider
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "file").lower()
    if kind == "none" or _provider is not None:
        return
    if kind == "console":
        exporter = ConsoleSpanExporter(formatter=_json_line)
    else:
        path = Path(
            os.environ.get("OTEL_TRACES_FILE")
            or BASE_DIR / "var" / "log" / f"traces-{service}.jsonl"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        exporter = ConsoleSpanExporter(out=path.open("a", encoding="utf-8"), formatter=_json_line)
    _provider = TracerProvider(resource=Resource.create({"service.name": f"backoffice.{service}"}))
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)


def shutdown() -> None:
    if _provider is not None:
        _provider.shutdown()


def start_spans(stage: str, messages: Sequence[Message]) -> tuple[list[Message], list[Span]]:
    """Open a span for each sampled message; the message now carries that span's context."""
    if _provider is None:
        return list(messages), []
    tracer = trace.get_tracer("backoffice.streaming")
    traced: list[Message] = []
    spans: list[Span] = []
    for message in messages:
        if message.trace.flags != "01":
            traced.append(message)
            continue
        parent = SpanContext(
            trace_id=int(message.trace.trace_id, 16),
            span_id=int(message.trace.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        span = tracer.start_span(
            f"{stage} process",
            context=trace.set_span_in_context(NonRecordingSpan(parent)),
            kind=SpanKind.CONSUMER,
            attributes=_attributes(stage, message),
        )
        context = span.get_span_context()
        spans.append(span)
        traced.append(
            replace(
                message,
                trace=TraceContext(f"{context.trace_id:032x}", f"{context.span_id:016x}", "01"),
            )
        )
    return traced, spans


def _attributes(stage: str, message: Message) -> dict[str, Any]:
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": message.topic,
        "messaging.kafka.partition": message.partition,
        "messaging.kafka.offset": message.offset,
        "backoffice.stage": stage,
        "backoffice.trade_id": message.correlation_id or "",
        "backoffice.schema": f"{message.schema} v{message.version}",
    }


def end_spans(spans: Sequence[Span], *, error: str | None = None) -> None:
    for span in spans:
        if error:
            span.set_attribute("error.type", error)
        span.end()
