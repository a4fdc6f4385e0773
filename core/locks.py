"""Transaction-level advisory locks on named keys: the one way the product serialises writers
of something that has no row to lock (a netting chain before its first version, a
counterparty's exposure over settle dates nobody has traded yet).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection


def lock_keys(keys: Iterable[str]) -> None:
    """Hold an advisory lock on each key until the caller's transaction ends.

    The locks are taken one after another in sorted key order (``WITH ORDINALITY`` fixes the
    order the function runs in), so every caller that locks through here takes any two keys in
    the same order and two transactions cannot deadlock on them. Keys are hashed to 64 bits;
    a collision only serialises two unrelated writers. Callers prefix their keys with what they
    stand for (``"counterparty:CP-NRTH"``) so one domain's names never meet another's.
    """
    ordered = sorted(set(keys))
    if not ordered:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS t(k, n)",
            [ordered],
        )
