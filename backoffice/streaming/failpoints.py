"""Fault injection for the crash tests and chaos: ``FAILPOINTS=mid_effects=3`` kills the process
with ``os._exit`` the third time that point is reached; ``FAILPOINTS=after_poll=2/pause15`` stops
it there for 15 seconds instead, the second time, and lets it go on (a consumer parked past
``max.poll.interval.ms`` loses its partitions while it still holds the batch it polled: a zombie).
Unset (always, in production) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

CRASH_EXIT_CODE = 86


@dataclass(frozen=True)
class Armed:
    hit: int  # the hit at which it fires
    pause: float = 0.0  # seconds to stop for; 0: crash


def _parse(spec: str) -> dict[str, Armed]:
    points: dict[str, Armed] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, rest = item.partition("=")
        count, _, action = rest.partition("/")
        pause = float(action.removeprefix("pause")) if action.startswith("pause") else 0.0
        points[name] = Armed(int(count or "1"), pause)
    return points


_armed = _parse(os.environ.get("FAILPOINTS", ""))
_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Crash here, like kill -9 (or pause here), when this point is armed and its hit comes."""
    if not _armed or name not in _armed:
        return
    armed = _armed[name]
    _hits[name] = _hits.get(name, 0) + 1
    if armed.pause:
        if _hits[name] == armed.hit:
            sys.stderr.write(f"failpoint {name}: pausing {armed.pause:g} s (hit {_hits[name]})\n")
            sys.stderr.flush()
            time.sleep(armed.pause)  # the fault itself: a process that stops answering
        return
    if _hits[name] >= armed.hit:
        sys.stderr.write(f"failpoint {name}: crashing (hit {_hits[name]})\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
