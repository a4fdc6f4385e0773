"""Roles are Django groups: viewer < operations < approver, and admin. One place defines them."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

VIEWER = "viewer"
OPERATIONS = "operations"
APPROVER = "approver"
ADMIN = "admin"

# Each role includes the ones to its left: an approver may also do what operations may.
_IMPLIED = {
    VIEWER: {VIEWER, OPERATIONS, APPROVER, ADMIN},
    OPERATIONS: {OPERATIONS, APPROVER, ADMIN},
    APPROVER: {APPROVER, ADMIN},
    ADMIN: {ADMIN},
}

NOT_ALLOWED = "You are not allowed to do this: it needs the {role} role."


ROLES = (VIEWER, OPERATIONS, APPROVER, ADMIN)


def roles_of(user: Any) -> frozenset[str]:
    """The roles ``user`` holds, implied ones included (one query)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return frozenset()
    if getattr(user, "is_superuser", False):
        return frozenset(ROLES)
    names = set(user.groups.values_list("name", flat=True))
    return frozenset(role for role in ROLES if names & _IMPLIED[role])


def has_role(user: Any, role: str) -> bool:
    """True when ``user`` is active and in ``role``'s group or one that implies it."""
    return role in roles_of(user)


class RolePermission(BasePermission):
    """DRF permission: ``required_role`` for reads on the view, ``write_role`` for other methods."""

    message = NOT_ALLOWED

    def has_permission(self, request: Request, view: Any) -> bool:
        read_role = getattr(view, "required_role", VIEWER)
        write_role = getattr(view, "write_role", OPERATIONS)
        role = read_role if request.method in ("GET", "HEAD", "OPTIONS") else write_role
        self.message = NOT_ALLOWED.format(role=role)
        return has_role(request.user, role)
