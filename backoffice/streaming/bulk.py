"""Bulk writes for stage handlers, one statement whatever the batch size, in the caller's
transaction: append-only rows are COPYed straight into their table; rows that may conflict go
through a session-temporary staging table and one ``INSERT ... SELECT ... ON CONFLICT`` (COPY has
no conflict clause) — about twice the row rate of a pipelined executemany either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection


def copy_insert(
    table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, on_conflict: str = ""
) -> int:
    """Insert ``rows`` into ``table``; ``on_conflict`` is the SQL tail after ON CONFLICT, if any.

    Returns the number of rows the INSERT wrote (conflicting rows skipped or updated count as the
    database reports them).
    """
    raw = connection.connection
    if raw is None:
        connection.ensure_connection()
        raw = connection.connection
    assert raw is not None
    column_list = ", ".join(columns)
    if not on_conflict:
        # Nothing to resolve: the rows go straight in, with no staging copy to write and delete.
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            copied: int = cursor.rowcount
        return copied
    stage = f"_bulk_{table}_{abs(hash(tuple(columns))) % 10**8}"
    with raw.cursor() as cursor:
        # Every call: a rolled-back transaction takes a temp table created in it along.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS"
            f" SELECT {column_list} FROM {table} WITH NO DATA"
        )
        with cursor.copy(f"COPY {stage} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        tail = f" ON CONFLICT {on_conflict}" if on_conflict else ""
        cursor.execute(
            f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {stage}{tail}"
        )
        written: int = cursor.rowcount
        cursor.execute(f"DELETE FROM {stage}")  # a second call in this transaction starts empty
    return written
