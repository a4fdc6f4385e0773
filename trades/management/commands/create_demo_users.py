"""``manage.py create_demo_users``: the demo groups and one login per role.

Idempotent: groups and users are created when missing, memberships and flags are put right, and a
password is set only when it does not already match, so running it again changes nothing.
Demo passwords are ``demo-<username>``; never run this against a production database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from backoffice.streaming.command import require_services

GROUPS = ("viewer", "operations", "approver", "admin")


@dataclass(frozen=True)
class DemoUser:
    username: str
    group: str
    superuser: bool = False

    @property
    def password(self) -> str:
        return f"demo-{self.username}"


DEMO_USERS = (
    DemoUser("analyst", "operations"),
    DemoUser("approver", "approver"),
    DemoUser("viewer", "viewer"),
    DemoUser("admin", "admin", superuser=True),
)


def demo_users_create() -> list[tuple[DemoUser, bool]]:
    """Ensure the four groups and demo users exist as documented; return (user, created) pairs.

    Guarantee: after it returns each demo user exists, is active, belongs to exactly its group
    and logs in with ``demo-<username>``; only ``admin`` is staff and superuser.
    """
    result = []
    with transaction.atomic():
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in GROUPS}
        for demo in DEMO_USERS:
            user, created = User.objects.get_or_create(username=demo.username)
            changed = created
            for attr, wanted in (
                ("is_active", True),
                ("is_staff", demo.superuser),
                ("is_superuser", demo.superuser),
            ):
                if getattr(user, attr) != wanted:
                    setattr(user, attr, wanted)
                    changed = True
            if not user.check_password(demo.password):
                user.set_password(demo.password)
                changed = True
            if changed:
                user.save()
            if set(user.groups.all()) != {groups[demo.group]}:
                user.groups.set([groups[demo.group]])
            result.append((demo, created))
    return result


class Command(BaseCommand):
    help = "Create the demo groups and users (password demo-<username>)"

    def handle(self, *args: Any, **options: Any) -> None:
        require_services(kafka=False)
        for demo, created in demo_users_create():
            state = "created" if created else "exists"
            self.stdout.write(
                f"{demo.username:<9} password {demo.password:<14} group {demo.group:<11} ({state})"
            )
