"""One trade's path is one trace: each stage's span is the child of the span that emitted its input."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from backoffice.streaming import topics
from tests.conftest import send_json, wait_until
from tests.streaming.helpers import downstream_stats, trade
from tests.streaming.stages import CREATE_TABLES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"


def spans(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_trade_is_traced_across_stages_through_kafka_headers(processes, kafka_producer, tmp_path):
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLES)
    send_json(
        kafka_producer,
        topics.topic("trades.executed"),
        trade(1),
        headers=[("traceparent", f"00-{TRACE_ID}-{UPSTREAM_SPAN}-01".encode())],
    )
    send_json(
        kafka_producer,
        topics.topic("trades.executed"),
        trade(2),
        headers=[("traceparent", f"00-{'1' * 32}-{'2' * 16}-00".encode())],
    )
    kafka_producer.flush()
    traced = {"TRACE_SAMPLE_RATIO": "0"}
    processes.start(
        "consume",
        "--stage",
        "tests.streaming.stages:probe",
        env={**traced, "OTEL_TRACES_FILE": str(tmp_path / "probe.jsonl")},
        name="probe",
    )
    processes.start("relay_outbox", name="relay")
    processes.start(
        "consume",
        "--stage",
        "tests.streaming.stages:downstream",
        env={**traced, "OTEL_TRACES_FILE": str(tmp_path / "downstream.jsonl")},
        name="downstream",
    )
    wait_until(lambda: downstream_stats() == (2, 2), what="both trades downstream")
    processes.stop_all()  # flushes the span exporters

    [probe] = spans(tmp_path / "probe.jsonl")  # the unsampled trade (flags 00) made no span
    [downstream] = spans(tmp_path / "downstream.jsonl")
    assert probe["context"]["trace_id"] == downstream["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert probe["parent_id"] == f"0x{UPSTREAM_SPAN}"
    assert downstream["parent_id"] == probe["context"]["span_id"]
    assert probe["attributes"]["backoffice.trade_id"] == "T0000001"
    assert (probe["name"], downstream["name"]) == ("probe process", "downstream process")
