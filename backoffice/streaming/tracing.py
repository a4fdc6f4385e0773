"""W3C Trace Context (``traceparent``) carried in Kafka headers, so one trade's path is visible."""

from __future__ import annotations

import os
import random
import re
import secrets
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace: what an event caused by this one carries."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)


_SAMPLE_RATIO = float(os.environ.get("TRACE_SAMPLE_RATIO", "0.01"))


def new_trace() -> TraceContext:
    """A new trace, sampled (flags 01) with probability TRACE_SAMPLE_RATIO.

    Ids come from the process's Mersenne Twister (seeded from the OS at start): W3C asks for
    random, unique ids, not secret ones, and a system call per inbound trade was 3 % of capture.
    """
    sampled = _SAMPLE_RATIO >= 1 or (_SAMPLE_RATIO > 0 and random.random() < _SAMPLE_RATIO)
    trace_id = random.getrandbits(128) or 1  # all zeros is not a valid id
    span_id = random.getrandbits(64) or 1
    return TraceContext(f"{trace_id:032x}", f"{span_id:016x}", "01" if sampled else "00")


def parse_traceparent(value: bytes | str | None) -> TraceContext | None:
    """The context in a ``traceparent`` header, or None when it is absent or malformed."""
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = _TRACEPARENT.match(text.strip())
    if match is None or match[1] == "0" * 32 or match[2] == "0" * 16:
        return None
    return TraceContext(match[1], match[2], match[3])
