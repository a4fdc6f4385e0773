"""Migration operations for physical storage that Django's models do not describe.

Neither changes what a query returns, only what a write costs; both reverse.
"""

from __future__ import annotations

from django.db import migrations


def SetFillfactor(table: str, percent: int) -> migrations.RunSQL:  # noqa: N802 - reads as an operation
    """Leave ``100 - percent`` % of each new page free, so an update of a row can stay on its page
    (a HOT update, with no new index entries) as long as no indexed column changes."""
    return migrations.RunSQL(
        f"ALTER TABLE {table} SET (fillfactor = {percent})",
        f"ALTER TABLE {table} RESET (fillfactor)",
    )


def DropPatternIndexes(table: str, column: str) -> migrations.RunSQL:  # noqa: N802
    """Drop the ``varchar_pattern_ops`` index Django adds beside a unique or primary varchar
    ``column`` (for ``LIKE 'prefix%'``), found by its definition since its name is a hash."""
    return migrations.RunSQL(
        f"""
        DO $$
        DECLARE name regclass;
        BEGIN
          FOR name IN
            SELECT i.indexrelid::regclass FROM pg_index i
            WHERE i.indrelid = '{table}'::regclass
              AND pg_get_indexdef(i.indexrelid) LIKE '%({column} varchar_pattern_ops)'
          LOOP
            EXECUTE format('DROP INDEX %s', name);
          END LOOP;
        END $$;
        """,
        f"CREATE INDEX {table}_{column}_like ON {table} ({column} varchar_pattern_ops)",
    )
