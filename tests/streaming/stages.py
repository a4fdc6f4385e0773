"""Two small stages used to test the runtime itself, with effects in tables the tests create.

``probe`` reads trades.executed, records each trade in ``probe_effect`` (no unique constraint, so
a duplicated effect would show) and emits it to ``probe.out``; ``downstream`` reads probe.out and
records it in ``probe_downstream``. A trade whose account is ``POISON`` makes the handler raise;
one whose account is in ``probe_blocklist`` is rejected by the stage (delete the row to "fix" it).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from backoffice.streaming.consumer import Stage
from backoffice.streaming.envelope import Message, Outbound, Subscription
from backoffice.streaming.store import Rejection, StageContext, StageResult

PROBE_OUT = "probe.out"

CREATE_TABLES = """
CREATE TABLE IF NOT EXISTS probe_effect (trade_id text NOT NULL, trade_version int NOT NULL, quantity numeric NOT NULL);
CREATE TABLE IF NOT EXISTS probe_downstream (trade_id text NOT NULL, event_id uuid);
CREATE TABLE IF NOT EXISTS probe_blocklist (account text PRIMARY KEY);
TRUNCATE probe_effect, probe_downstream, probe_blocklist;
"""


def handle_probe(messages: Sequence[Message], ctx: StageContext) -> StageResult:
    result = StageResult()
    rows = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT account FROM probe_blocklist")
        blocked = {row[0] for row in cursor.fetchall()}
    for message in messages:
        account = message.payload["account"]
        if account == "POISON":
            raise RuntimeError(f"poison trade {message.payload['trade_id']}")
        if account in blocked:
            result.rejections.append(
                Rejection(message, "UnknownAccount", f"unknown account {account!r}")
            )
            continue
        rows.append(
            (
                message.payload["trade_id"],
                message.payload["trade_version"],
                message.payload["quantity"],
            )
        )
        result.events.append(
            Outbound(
                topic=PROBE_OUT,
                key=message.key,
                schema="trades.executed",
                payload=message.payload,
                cause=message,
            )
        )
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO probe_effect VALUES (%s, %s, %s)", rows)
    return result


def handle_downstream(messages: Sequence[Message], ctx: StageContext) -> StageResult:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO probe_downstream VALUES (%s, %s)",
            [(m.payload["trade_id"], m.event_id) for m in messages],
        )
    return StageResult()


probe = Stage(
    "probe", [Subscription("trades.executed", "trades.executed", enveloped=False)], handle_probe
)
downstream = Stage("downstream", [Subscription(PROBE_OUT, "trades.executed")], handle_downstream)
