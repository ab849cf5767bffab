"""Serial-line timing for the simulators: when bytes handed to one direction of a line have
crossed it, so a simulator neither answers before the request could have arrived nor delivers a
reply faster than the line carries it. Pure arithmetic on a caller's clock (no I/O, no sleeping),
so the simulators pace with it and tests check it without a wall clock."""

from __future__ import annotations

import math

BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop bits


class LineClock:
    """One direction of a serial line at ``baudrate`` (or both of a line shared by requests and
    replies): a byte starts once the line is free and takes one character time; it is received
    when its stop bit ends. ``gap_chars``: the silence a frame needs before it (Modbus RTU: 3.5
    characters, by which the receiver also knows the previous frame has ended)."""

    def __init__(self, baudrate: int, gap_chars: float = 0.0):
        if baudrate <= 0:
            raise ValueError(f"baud rate {baudrate} must be positive")
        self.char_s = BITS_PER_BYTE / baudrate
        self.gap_s = gap_chars * self.char_s
        self._free_at = -math.inf
        self.bytes_carried = 0

    def send(self, count: int, now: float) -> list[float]:
        """Hand ``count`` bytes (one frame) to the line at ``now``; the time each one is
        received, in order (a frame handed over while the line is busy, or within the gap after
        the last frame, waits)."""
        start = max(now, self._free_at + self.gap_s)
        ends = [start + (i + 1) * self.char_s for i in range(count)]
        if ends:
            self._free_at = ends[-1]
        self.bytes_carried += count
        return ends
