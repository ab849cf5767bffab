"""plantds: Tango device servers for a facility's plant equipment."""

__version__ = "0.1.0"
