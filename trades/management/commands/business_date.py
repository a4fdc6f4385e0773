"""``manage.py business_date``: the date the back office is working on, for scripts.

It prints the same date the dashboard shows and every date-filtered page defaults to (the latest
business day of ``BUSINESS_CALENDAR`` on or before the clock's today), or a business day counted
from it: ``--business-days -2`` is two business days earlier. The demo uses it, so the trades it
streams, the days it closes at the custodian and the pages agree on what "today" is.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trades.selectors import UnknownCalendarError, business_date, market_calendar

NO_CALENDAR = (
    "business calendar {code!r} is not loaded ({error}): run `manage.py load_reference_data`"
    " or set BUSINESS_CALENDAR to a loaded calendar code"
)


class Command(BaseCommand):
    help = "Print the business date (YYYY-MM-DD), or a business day counted from it"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--business-days",
            type=int,
            default=0,
            help="count this many business days from the business date (negative: earlier)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day = business_date()
        if options["business_days"]:
            try:
                calendar = market_calendar(settings.BUSINESS_CALENDAR)
            except UnknownCalendarError as error:
                raise CommandError(
                    NO_CALENDAR.format(code=settings.BUSINESS_CALENDAR, error=error)
                ) from None
            day = calendar.add_business_days(day, options["business_days"])
        self.stdout.write(day.isoformat())
