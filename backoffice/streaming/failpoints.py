"""Fault injection for the crash tests: ``FAILPOINTS=mid_effects=3`` kills the process with
``os._exit`` the third time that point is reached. Unset (always, in production) it costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import sys

CRASH_EXIT_CODE = 86


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        points[name] = int(count or "1")
    return points


_armed = _parse(os.environ.get("FAILPOINTS", ""))
_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Crash here, like kill -9, when this point is armed and its count is reached."""
    if not _armed or name not in _armed:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= _armed[name]:
        sys.stderr.write(f"failpoint {name}: crashing (hit {_hits[name]})\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
