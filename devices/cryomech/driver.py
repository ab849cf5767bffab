"""Cryomech CPA driver: Modbus transactions over a shared link, start/stop with verification.

One refresh is ONE FC04 block read from PDU 1 (§8), decoded by :mod:`.protocol`.
Transport is pymodbus's synchronous client chosen by URL:

* ``tcp://host[:502]``        Modbus TCP, unit 1 by default
* ``rtu+tcp://host:port``     RTU framing through a serial-to-Ethernet gateway, unit 16
* ``serial:///dev/ttyUSB0``   Modbus RTU on a local port, unit 16 (anything after ``serial://``
                              goes to pyserial, so ``serial://socket://host:port`` works too)

Every driver naming the same endpoint shares one pymodbus client through :mod:`server.links`,
and holds the link's lock for each request, so slaves on one RS-485 line or gateway never see
interleaved transactions. The first driver to open a shared link sets its serial settings,
timeout and retries.

Section numbers (§) refer to ``docs/cryomech-cpa-modbus.md``.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from pymodbus import FramerType, ModbusException
from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from ...server.errors import CommandRefused, ConfigMismatch
from ...server.links import CommError, Link, acquire, no_delay, release, serial_target, split_url, tcp_key
from ...server.worker import Settle
from . import protocol as p

__all__ = ["CommError", "CommandRefused", "CpaDriver", "ModbusReplyError", "PanelRefused", "WrongReply"]

DEFAULT_TCP_PORT = 502
DEFAULT_UNIT = {"tcp": 1, "rtu+tcp": 16, "serial": 16}  # vendor samples (§1.2, §1.3)

# Standard Modbus exception codes, for messages an operator can act on.
EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}


# The panel reports Starting/Stopping within about a second of the write (§6.2).
SETTLE_S = 1.2
# A stop is done when the compressor stops or is already off for another reason (fault, recovery).
STOPPED_CODES = p.STOPPING_OR_IDLE | p.FAULT_CODES | p.RECOVERY_CODES


class ModbusReplyError(CommError):
    """The panel answered with a Modbus exception. The link works, but no value came back, so
    refresh treats it like any communication failure (device UNKNOWN, reason in the message)."""

    def __init__(self, code: int, unit: int, request: str):
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"Modbus exception 0x{code:02X} ({name}) from unit {unit} to {request}")


class PanelRefused(CommandRefused):
    """The panel answered the start/stop write with a Modbus exception: it is reachable and
    refused the command (e.g. the panel's remote control is off), so the link stays up."""


class WrongReply(CommError):
    """A reply that is not the answer to our request (another function code, register count
    or echo). It is never used; the link is dropped so nothing late is taken for the next."""


# Transaction ids carried over per endpoint, so a client reopened after a failure continues
# where the last one stopped: a reply delayed from before the reconnect (a gateway's buffer)
# then carries an old id, and pymodbus skips it instead of taking it for the new request.
_next_tid: dict[str, int] = {}
_TID_WRAP = 65000  # pymodbus wraps there itself


URL_FORMS = (
    "tcp://host[:502], rtu+tcp://host:port, serial:///dev/ttyUSB0, serial://socket://host:port "
    "or serial://rfc2217://host:port"
)


def _parse_url(url: str) -> tuple[str, str, Any]:
    """``url`` → (scheme, link key, client factory arguments)."""
    if url.lower().startswith("serial://"):
        device, key = serial_target(url[len("serial://") :], url, URL_FORMS)
        return "serial", key, device
    scheme, host, port, path = split_url(url)
    if scheme not in ("tcp", "rtu+tcp"):
        raise ValueError(f"Url {url!r}: scheme {scheme!r} unknown (expected {URL_FORMS})")
    if not host:
        raise ValueError(f"Url {url!r} has no host")
    if path not in ("", "/") or urlsplit(url).query or urlsplit(url).fragment:
        raise ValueError(f"Url {url!r}: a Modbus TCP endpoint takes no path or options "
                         f"(expected {URL_FORMS})")
    if port is None:
        if scheme == "rtu+tcp":  # gateways use anything (4001, 8899, 502...): no guessing
            raise ValueError(f"Url {url!r}: give the gateway's port, e.g. rtu+tcp://{host}:4001")
        port = DEFAULT_TCP_PORT
    return scheme, tcp_key(host, port), (host, port)


class CpaDriver:
    """Synchronous driver for one CPA panel, used from a single worker thread."""

    def __init__(
        self,
        url: str,
        unit_id: int | None = None,
        baudrate: int = 115200,
        parity: str = "N",
        stopbits: int = 1,
        timeout: float = 1.0,
        retries: int = 2,
        temperature_unit: str = "degC",
        pressure_unit: str = "bar",
        block_count: int | None = None,
        stop_value: int = p.STOP,
    ):
        self.url = url
        self.scheme, self.key, self._endpoint = _parse_url(url)
        self.unit_id = DEFAULT_UNIT[self.scheme] if unit_id is None else unit_id
        top = 255 if self.scheme == "tcp" else 247  # RTU addresses stop at 247
        if not 0 <= self.unit_id <= top:
            raise ValueError(f"unit id {self.unit_id} out of range 0..{top} for {self.scheme}")
        if baudrate <= 0:
            raise ValueError(f"baud rate {baudrate} must be positive")
        if parity not in ("N", "E", "O"):
            raise ValueError(f"parity {parity!r} must be 'N', 'E' or 'O'")
        if stopbits not in (1, 2):
            raise ValueError(f"stop bits {stopbits} must be 1 or 2")
        if not 0 < timeout < math.inf:  # NaN and infinity too: a deadline must end
            raise ValueError(f"timeout {timeout} s must be > 0")
        if retries < 0:
            raise ValueError(f"retries {retries} must be >= 0")
        if temperature_unit not in p.TEMPERATURE_UNITS:
            raise ValueError(f"TemperatureUnit {temperature_unit!r} not in {p.TEMPERATURE_UNITS}")
        if pressure_unit not in p.PRESSURE_UNITS:
            raise ValueError(f"PressureUnit {pressure_unit!r} not in {p.PRESSURE_UNITS}")
        if block_count not in (None, *p.BLOCK_COUNTS):
            raise ValueError(f"block count {block_count} must be 53 (CPA2), 55 (CPA3) or auto")
        if not 0 <= stop_value <= 0xFFFF or stop_value == p.START:
            raise ValueError(f"stop value 0x{stop_value:X} must be a 16-bit value other than START")
        self.baudrate, self.parity, self.stopbits = baudrate, parity, stopbits
        self.timeout, self.retries = timeout, retries
        self.temperature_unit, self.pressure_unit = temperature_unit, pressure_unit
        self.stop_value = stop_value
        self._configured_block_count = block_count
        self.block_count: int | None = block_count  # detected on connect when None
        self._link: Link | None = None

    # -- link ----------------------------------------------------------------------------------
    def _open_client(self) -> ModbusTcpClient | ModbusSerialClient:
        """The pymodbus client for this endpoint, connected (runs once per shared link)."""
        if self.scheme == "serial":
            client: ModbusTcpClient | ModbusSerialClient = ModbusSerialClient(
                self._endpoint,
                framer=FramerType.RTU,
                baudrate=self.baudrate,  # pymodbus would default to 19200: always explicit
                bytesize=8,
                parity=self.parity,
                stopbits=self.stopbits,
                timeout=self.timeout,
                retries=self.retries,
            )
        else:
            host, port = self._endpoint
            client = ModbusTcpClient(
                host,
                port=port,
                framer=FramerType.SOCKET if self.scheme == "tcp" else FramerType.RTU,
                timeout=self.timeout,
                retries=self.retries,
            )
        if not client.connect():
            client.close()
            raise CommError(f"cannot connect to {self.key}")
        client.transaction.next_tid = _next_tid.get(self.key, 0)
        if self.scheme != "serial":
            no_delay(client.socket)  # pymodbus leaves Nagle on
        return client

    def _link_settings(self) -> dict[str, Any]:
        if self.scheme == "tcp":
            return {"protocol": "Modbus TCP"}
        settings = {"protocol": "Modbus RTU"}
        if self.scheme == "serial":
            settings.update(baudrate=self.baudrate, parity=self.parity, stopbits=self.stopbits)
        return settings

    def connect(self) -> None:
        """Open (or join) the link and detect the register format when not configured."""
        if self._link is None:
            self._link = acquire(self.key, self._open_client, self._link_settings())
        with self._link.lock:
            self._link.transport()
        if self._configured_block_count is None:
            self.block_count = self._detect_block_count()

    def close(self) -> None:
        if self._link is not None:
            link, self._link = self._link, None
            release(link)

    def _detect_block_count(self) -> int:
        """55 registers when the panel serves the CPA3 format, else 53 (§3.2)."""
        try:
            self._read_input(p.BLOCK_START, p.BLOCK_COUNT_CPA3)
        except ModbusReplyError as exc:
            # A CPA2-format panel refuses the longer read as out of its map; any other
            # exception (busy, failure) says nothing about the format and is passed on.
            if exc.code not in (0x02, 0x03):
                raise
            self._read_input(p.BLOCK_START, p.BLOCK_COUNT_CPA2)
            return p.BLOCK_COUNT_CPA2
        return p.BLOCK_COUNT_CPA3

    def _transaction(self, request: str, function_code: int, call) -> Any:
        """Run ``call(client)`` under the link lock; map every failure to a CommError.

        pymodbus decodes whatever function code the reply carries (an FC03 block reads as
        registers just like the FC04 one asked for, an FC06 echo as one register), so the code
        is checked here: only our function code, or its exception, is an answer.
        """
        if self._link is None:
            raise CommError(f"{self.key} is not connected")
        link = self._link
        where = f"{self.key} unit {self.unit_id}"
        with link.lock:
            client = link.transport()
            try:
                reply = call(client)
            except (ModbusException, OSError) as exc:
                link.drop()  # a late reply must never be taken for the next request's
                raise CommError(f"{request} on {where} failed: {exc}") from exc
            finally:
                _next_tid[self.key] = client.transaction.next_tid % _TID_WRAP
            if reply.function_code & 0x7F != function_code:
                link.drop()
                raise WrongReply(
                    f"{request} on {where}: the reply has function code "
                    f"0x{reply.function_code:02X}; discarded"
                )
        if reply.isError():
            raise ModbusReplyError(getattr(reply, "exception_code", 0), self.unit_id, request)
        return reply

    def _read_input(self, address: int, count: int) -> list[int]:
        request = f"FC04 read of {count} input registers at PDU {address}"
        reply = self._transaction(
            request,
            0x04,
            lambda c: c.read_input_registers(address, count=count, device_id=self.unit_id),
        )
        if len(reply.registers) != count:
            self._link.drop()
            raise WrongReply(f"{request}: the reply holds {len(reply.registers)} registers")
        return reply.registers

    # -- reads -----------------------------------------------------------------------------------
    def refresh(self, checkpoint=None) -> dict[str, Any]:
        """One block read (a single transaction: jobs run before or after it), decoded into Tango attribute values (see protocol.decode_block)."""
        if self.block_count is None:
            self.block_count = self._detect_block_count()
        regs = self._read_input(p.BLOCK_START, self.block_count)
        try:
            return p.decode_block(regs, self.temperature_unit, self.pressure_unit)
        except ValueError as exc:
            # The panel answers, with a block this register map does not describe: another
            # register format, or not a CPA at this unit id. Rereading will not help.
            raise ConfigMismatch(
                f"the panel's register block does not decode ({exc}): check the PanelFormat "
                f"and UnitId properties (unit {self.unit_id}, {self.block_count} registers)"
            ) from exc

    def read_state(self) -> int:
        """Operating state code (30001) alone."""
        return self._read_input(p.BLOCK_START, 1)[0]

    # -- start / stop ----------------------------------------------------------------------------
    def write_start_stop(self, on: bool) -> None:
        """FC06 of 40001: 0x0001 starts, the configured stop value stops. The echo is checked."""
        value = p.START if on else self.stop_value
        request = f"FC06 write of 0x{value:04X} to 40001 (PDU {p.HOLDING_START_STOP})"
        try:
            reply = self._transaction(
                request,
                0x06,
                lambda c: c.write_register(p.HOLDING_START_STOP, value, device_id=self.unit_id),
            )
        except ModbusReplyError as exc:
            raise PanelRefused(f"the panel refused the {'start' if on else 'stop'}: {exc}") from exc
        echo = (reply.address, reply.registers[0] if reply.registers else None)
        if echo != (p.HOLDING_START_STOP, value):
            self._link.drop()
            raise WrongReply(f"{request}: echo was address {echo[0]}, value {echo[1]}")

    def switch(self, on: bool, state: int | None, attempts: int = 2, settle_s: float = SETTLE_S) -> Settle:
        """Start or stop the compressor; returns once the panel took the write (§6.2).

        A start is refused during an error lockout, judged from ``state`` (the panel's last
        reported state code, so the command costs one transaction). What follows the write is left to the
        worker (the client has its answer by then): it checks the state at each refresh for
        ``settle_s``, writes again once if the panel did not follow (a known panel quirk), but
        never while alarms are present, because each error trip counts toward a lockout (§6.3).
        """
        if attempts < 1:
            raise ValueError(f"attempts {attempts} must be >= 1")
        if on and state == p.LOCKOUT:
            raise CommandRefused(
                "Compressor is in error lockout (state 6): clear the lockout at the panel's "
                "lockout menu, wait for the 30-minute cool-down, then start again"
            )
        self.write_start_stop(on)
        return self._settle(on, 1, attempts, settle_s)

    def _settle(self, on: bool, attempt: int, attempts: int, settle_s: float) -> Settle:
        accepted = p.STARTING_OR_RUNNING if on else STOPPED_CODES
        value = p.START if on else self.stop_value

        def reached(values) -> str | None:
            code = values.get("OperatingStateCode")
            if code in accepted:
                return f"compressor {p.STATE_LABELS[p.state_enum_index(code)]} (state {code})"
            return None

        def on_timeout(_driver, values) -> Settle | str:
            if attempt < attempts and not values.get("AlarmCode"):
                self.write_start_stop(on)
                return self._settle(on, attempt + 1, attempts, settle_s)
            code = values.get("OperatingStateCode")
            alarms = ", ".join(values.get("Alarms") or ()) or "none"
            resent = f", resent {attempt - 1} time(s)" if attempt > 1 else ""
            return (
                f"{'start' if on else 'stop'} not obeyed (0x{value:04X} to 40001{resent}): panel "
                f"still {p.STATE_LABELS[p.state_enum_index(code)]} (state {code}); alarms: {alarms}"
            )

        awaited = "Starting" if on else "Stopping or Idling"
        doing = f"{'starting' if on else 'stopping'}: waiting for the panel to report {awaited}"
        return Settle(doing + (" (written again)" if attempt > 1 else ""), reached, settle_s, on_timeout)
