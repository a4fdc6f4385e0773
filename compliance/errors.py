"""What the four-eyes services refuse, with the exact sentence the user sees.

Each refusal is an exception carrying a constant message; the API maps the class to its HTTP
status (``Forbidden`` 403, ``Conflict`` 409, ``NotFound`` 404) and shows the message unchanged.
"""

from __future__ import annotations

EXCEPTION_NOT_FOUND = "No compliance exception with id {exception_id}."
NOT_OPEN = "This exception is {status}; only an OPEN exception can be decided."
PROPOSAL_PENDING = (
    "A {action} proposal by {maker} is already awaiting confirmation; it must be confirmed or "
    "withdrawn before another decision is proposed."
)
NO_ACTIVE_PROPOSAL = "There is no proposal awaiting confirmation on this exception."
MAKER_CANNOT_CONFIRM = "You proposed this decision; a different approver must confirm it."
ONLY_MAKER_WITHDRAWS = "Only {maker}, who proposed this decision, can withdraw it."
REASON_REQUIRED = "A reason is required."
UNKNOWN_ACTION = "Unknown action {action!r}: expected APPROVE or REJECT."
TRADE_MOVED_ON = (
    "Trade {trade_id} is now at version {version}; this exception (version {exception_version}) "
    "can no longer be decided."
)


class ComplianceError(Exception):
    """A refused four-eyes action; ``message`` is shown to the user as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Forbidden(ComplianceError):
    """The actor may not do this (role, or maker = checker)."""


class Conflict(ComplianceError):
    """The exception or proposal is not in a state that allows the action."""


class NotFound(ComplianceError):
    """The exception does not exist."""


class Invalid(ComplianceError):
    """The request itself is malformed (blank reason, unknown action)."""
