"""Exceptions every driver raises, so the base device turns each into the right Tango error."""

from .links import CommError

__all__ = ["CommError", "CommandRefused", "NotVerified"]


class CommandRefused(Exception):
    """The instrument's state forbids the command (e.g. start in error lockout), or the
    instrument itself refused it (an error reply).

    The message says what the operator must do.
    """


class NotVerified(Exception):
    """A write or command was sent but the read-back does not show it took effect."""
