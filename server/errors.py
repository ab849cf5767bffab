"""Exceptions every driver raises, so the base device turns each into the right Tango error."""

from .links import CommError

__all__ = ["CommError", "CommandRefused", "NotVerified"]


class CommandRefused(Exception):
    """The instrument's own state forbids the command (e.g. start in error lockout).

    The message says what the operator must do; nothing was sent.
    """


class NotVerified(Exception):
    """A write or command was sent but the read-back does not show it took effect."""
