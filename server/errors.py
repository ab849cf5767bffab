"""Exceptions every driver raises, so the base device turns each into the right Tango error."""

from .links import CommError

__all__ = ["CommError", "CommandRefused", "ConfigMismatch", "NotVerified", "PortConflict"]


class CommandRefused(Exception):
    """The instrument's state forbids the command (e.g. start in error lockout), or the
    instrument itself refused it (an error reply).

    The message says what the operator must do.
    """


class NotVerified(Exception):
    """A write or command was sent but the read-back does not show it took effect."""


class ConfigMismatch(CommError):
    """The instrument answers, but its replies do not fit the device's configuration (a status
    length another Family uses, a register block that does not decode). The device goes FAULT
    and the message names the property to check; resending or reconnecting will not help."""


class PortConflict(ConfigMismatch, ValueError):
    """Two devices name the same physical port with different line settings or protocols.

    A configuration error (hence also a ValueError): the port is opened once, with the first
    device's settings, and the other device must be configured to match."""
