"""The append-only audit trail of every human action."""
