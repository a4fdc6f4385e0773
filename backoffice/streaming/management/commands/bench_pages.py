"""``manage.py bench_pages --trades 1000000``: server time of every list page and API list with a
large trade table (a benchmark, not a test: nothing gates on it).

Seeds trade heads and versions with COPY until the database holds ``--trades`` of them (ids
``BP-...``, so they never collide with real trades), then requests each page through Django's test
client in this process — the time measured is the server's, without a network — and prints the
median of ``--repeat`` requests and the query count, and writes them to docs/performance.md.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext

from backoffice.config import BASE_DIR
from core import clock

PAGES = [
    "/",
    "/trades/",
    "/trades/?account=ACC-0003",
    "/trades/?status=CANCELLED",
    "/trades/?sort=-trade_date",
    "/compliance/",
    "/settlement/",
    "/settlement/fails/",
    "/settlement/payments/",
    "/settlement/breaks/",
    "/reporting/",
    "/reporting/pnl/",
    "/reporting/margin/",
    "/dead-letters/",
    "/api/v1/trades/",
    "/api/v1/trades/?account=ACC-0003",
    "/api/v1/exceptions/",
    "/api/v1/settlement/instructions/",
    "/api/v1/settlement/breaks/",
    "/api/v1/settlement/payments/",
    "/api/v1/reporting/positions/",
    "/api/v1/reporting/pnl/",
    "/api/v1/reporting/margin/",
]
ACCOUNTS = [f"ACC-{n:04d}" for n in range(1, 25)]


class Command(BaseCommand):
    help = "Time every list page and API list against a large trade table"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--trades", type=int, default=1_000_000)
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--docs", default=str(BASE_DIR / "docs" / "performance.md"))

    def handle(self, *args: Any, **options: Any) -> None:
        total = self._seed(options["trades"])
        user, _ = User.objects.get_or_create(
            username="bench-pages", defaults={"is_superuser": True, "is_staff": True}
        )
        client = Client()
        client.force_login(user)
        rows = []
        for url in PAGES:
            timings, queries, status = [], 0, 0
            for _ in range(options["repeat"]):
                reset_queries()
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - started) * 1000)
                queries, status = len(captured), response.status_code
            rows.append((url, status, statistics.median(timings), max(timings), queries))
            self.stdout.write(
                f"{url:<45} {status}  median {rows[-1][2]:7.1f} ms  max {rows[-1][3]:7.1f} ms  {queries} queries"
            )
        self._write(Path(options["docs"]), total, rows)

    def _seed(self, wanted: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM trades_trade")
            have = (cursor.fetchone() or (0,))[0]
        missing = wanted - have
        if missing > 0:
            self.stdout.write(f"seeding {missing:,} trades (COPY) ...")
            self._copy(have, missing)
        return max(have, wanted)

    def _copy(self, start: int, count: int) -> None:
        now = clock.now()
        raw = connection.connection
        assert raw is not None
        base_day = date(2026, 1, 2)
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY trades_trade (trade_id, current_version, status, account, book, instrument, trade_date,"
                " created_at, updated_at) FROM STDIN"
            ) as copy:
                for n in range(start, start + count):
                    day = base_day + timedelta(days=n % 300)
                    copy.write_row(
                        (
                            f"BP-{n:08d}",
                            1,
                            "CANCELLED" if n % 50 == 0 else "LIVE",
                            ACCOUNTS[n % 24],
                            "EQ-US",
                            "US0378331005",
                            day,
                            now - timedelta(seconds=n),
                            now - timedelta(seconds=n),
                        )
                    )
            with cursor.copy(
                "COPY trades_tradeversion (trade_id, version, action, account, book, counterparty, instrument, symbol,"
                " asset_class, csdr_class, market, side, quantity, price, currency, gross_amount, fees, net_amount,"
                " trade_date, trade_time, settle_date, settle_date_computed, venue, trader, payment_type,"
                " ssi_custodian_bic, ssi_safekeeping_account, ssi_cash_account, input_hash, source_topic,"
                " source_partition, source_offset, captured_at) FROM STDIN"
            ) as copy:
                for n in range(start, start + count):
                    day = base_day + timedelta(days=n % 300)
                    copy.write_row(
                        (
                            f"BP-{n:08d}",
                            1,
                            "NEW",
                            ACCOUNTS[n % 24],
                            "EQ-US",
                            "CP-NRTH",
                            "US0378331005",
                            "AAPL",
                            "EQUITY",
                            "LIQUID_SHARES",
                            "XNAS",
                            "BUY" if n % 2 else "SELL",
                            100,
                            "231.40",
                            "USD",
                            "23140.00",
                            "1.00",
                            "23141.00",
                            day,
                            datetime(day.year, day.month, day.day, 15, tzinfo=UTC),
                            day + timedelta(days=1),
                            True,
                            "XNAS",
                            "bench",
                            "DVP",
                            "",
                            "",
                            "",
                            "0" * 64,
                            "bench",
                            0,
                            n,
                            now,
                        )
                    )
        raw.commit()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE trades_trade; ANALYZE trades_tradeversion")

    def _write(
        self, path: Path, total: int, rows: list[tuple[str, int, float, float, int]]
    ) -> None:
        marker = "<!-- bench:pages -->"
        lines = [
            marker,
            f"Last run: {clock.now().isoformat(timespec='seconds')}, {total:,} trades in the database,"
            " server time (Django test client in-process), median of repeated requests.",
            "",
            "| page | status | median ms | max ms | queries |",
            "|---|---|---|---|---|",
            *[
                f"| `{url}` | {status} | {median:.1f} | {worst:.1f} | {queries} |"
                for url, status, median, worst, queries in rows
            ],
            marker,
        ]
        text = path.read_text() if path.is_file() else "# Performance\n"
        if marker not in text:
            text += f"\n## List pages with a large trade table (`manage.py bench_pages`)\n\n{marker}\n{marker}\n"
        head, _, rest = text.partition(marker)
        _, _, tail = rest.partition(marker)
        path.write_text(head + "\n".join(lines) + tail)
