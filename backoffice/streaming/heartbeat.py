"""A consumer's sign of life in PostgreSQL (throttled), read by status.sh and the dashboard."""

from __future__ import annotations

import logging
import os
import socket
import time

from django.db import DatabaseError, connection

from core import clock

log = logging.getLogger("backoffice.streaming")

INTERVAL_SECONDS = 2.0


class Heartbeat:
    def __init__(self, consumer_id: str, stage: str, group: str):
        self.consumer_id, self.stage, self.group = consumer_id, stage, group
        self.started_at = clock.now()
        self.processed = 0
        self.dead_lettered = 0
        self._last = 0.0

    def add(self, *, processed: int, dead_lettered: int) -> None:
        self.processed += processed
        self.dead_lettered += dead_lettered

    def beat(self, *, lag: int, partitions: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < INTERVAL_SECONDS:
            return
        self._last = now
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    'INSERT INTO streaming_consumerheartbeat (consumer_id, stage, "group", pid, host,'
                    " started_at, last_seen, processed, dead_lettered, lag, partitions)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (consumer_id) DO UPDATE SET last_seen = EXCLUDED.last_seen,"
                    " processed = EXCLUDED.processed, dead_lettered = EXCLUDED.dead_lettered,"
                    " lag = EXCLUDED.lag, partitions = EXCLUDED.partitions, started_at = EXCLUDED.started_at, pid = EXCLUDED.pid",
                    [
                        self.consumer_id,
                        self.stage,
                        self.group,
                        os.getpid(),
                        socket.gethostname(),
                        self.started_at,
                        clock.now(),  # the one clock, which the dashboard's staleness reads too
                        self.processed,
                        self.dead_lettered,
                        lag,
                        partitions,
                    ],
                )
        except DatabaseError as error:  # a heartbeat is never worth failing a batch for
            connection.close()
            log.info("heartbeat skipped: %s", error)

    def stop(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM streaming_consumerheartbeat WHERE consumer_id = %s",
                    [self.consumer_id],
                )
        except DatabaseError:
            connection.close()
