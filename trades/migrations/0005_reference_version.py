"""A committed version number for reference data, so processes can cache their snapshot.

Every statement that writes a reference table (INSERT, UPDATE, DELETE, TRUNCATE, COPY included)
sets the one row of ``trades_reference_version`` to a fresh number from a sequence. The row is
transactional: a reader sees a new number only once the change that made it is committed, and a
rolled-back change leaves the number its data had. Numbers are never reused, so a cache keyed by
the number can never mistake one state for another (``trades.selectors.reference_cached``).

Not a Django model on purpose: the test runner's flush truncates every model's table, and the
row must survive it.
"""

from django.db import migrations

TABLES = (
    "trades_market",
    "trades_holiday",
    "trades_calendarcoverage",
    "trades_instrument",
    "trades_book",
    "trades_account",
    "trades_counterparty",
    "trades_standingsettlementinstruction",
)

FORWARD = [
    "CREATE SEQUENCE trades_reference_version_seq",
    # A random start: a database dropped and created again, or this migration reversed and
    # applied again, must not repeat numbers a running process may still hold.
    "SELECT setval('trades_reference_version_seq', 1 + floor(random() * 1e15)::bigint)",
    "CREATE TABLE trades_reference_version (version bigint NOT NULL)",
    "INSERT INTO trades_reference_version VALUES (nextval('trades_reference_version_seq'))",
    """
    CREATE FUNCTION trades_reference_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE trades_reference_version SET version = nextval('trades_reference_version_seq');
        RETURN NULL;
    END
    $$
    """,
    *(
        f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION trades_reference_changed()"
        for table in TABLES
    ),
]

BACKWARD = [
    *(f"DROP TRIGGER {table}_changed ON {table}" for table in TABLES),
    "DROP FUNCTION trades_reference_changed()",
    "DROP TABLE trades_reference_version",
    "DROP SEQUENCE trades_reference_version_seq",
]


class Migration(migrations.Migration):
    dependencies = [
        ("trades", "0004_calendarcoverage"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
