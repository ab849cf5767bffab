"""Cryomech CPA panel simulator: pymodbus's server on a real TCP port, plus faults to inject.

Two layers, both in one background thread with its own asyncio loop:

* a pymodbus ``ModbusTcpServer`` (socket or RTU framing) on an internal loopback port. Its
  ``SimDevice`` action callback is the panel: every FC04 read refreshes the input registers from
  a small compressor model, every write of 40001 is a start/stop command, and an injected Modbus
  exception is returned from there, so exception frames are pymodbus's own;
* a byte relay on the public port, which is what clients connect to. It does what a Modbus
  server cannot do per request: refuse connections while "offline", drop live connections,
  delay replies, and pace bytes at a serial baud rate (10 bits per byte) in both directions:
  a request reaches the panel only once it could have crossed the line, its reply likewise, and
  with RTU framing every frame keeps the 3.5-character silence after the one before.

Timers of the state machine (starting, stopping) run in wall-clock seconds; ``time_scale`` only
speeds up the physics (temperatures, pressures, running hours).

Section numbers (§) refer to ``docs/cryomech-cpa-modbus.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import math
import threading
import time
from collections.abc import Sequence

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from ...server.serial_line import LineClock
from ...server.sim_faults import Fault, add_fault_arguments
from ...server.simulator import Simulator
from . import protocol as p

FRAMERS = {"socket": FramerType.SOCKET, "rtu": FramerType.RTU}
RECEIVED_KEPT = 65536  # bytes of client requests kept for inspection
RTU_GAP_CHARS = 3.5  # Modbus RTU silence between frames (each chunk relayed is one frame)
COOLANT_SUPPLY_C = 20.0
STATIC_PRESSURE_BAR = 16.0  # equalised helium charge while stopped
# Running targets (degC, bar, A) and first-order time constants (model seconds).
RUNNING_TARGETS = {
    "CoolantOutTemperature": (COOLANT_SUPPLY_C + 8.0, 30.0),
    "OilTemperature": (38.0, 120.0),
    "HeliumTemperature": (75.0, 180.0),
    "HighPressure": (20.0, 5.0),
    "LowPressure": (6.0, 5.0),
    "MotorCurrent": (16.0, 1.0),
}
STOPPED_TARGETS = {
    "CoolantOutTemperature": (COOLANT_SUPPLY_C, 60.0),
    "OilTemperature": (COOLANT_SUPPLY_C, 300.0),
    "HeliumTemperature": (COOLANT_SUPPLY_C, 300.0),
    "HighPressure": (STATIC_PRESSURE_BAR, 10.0),
    "LowPressure": (STATIC_PRESSURE_BAR, 10.0),
    "MotorCurrent": (0.2, 0.5),  # an idle motor still reads a little current (§8)
}
STARTING_CURRENT_A = 25.0  # inrush while starting
AVERAGE_TAU_S = 20.0  # the panel averages pressures over ~20 s (§8)
DELTA_OFFSET_BAR = 0.03  # ΔP average reads slightly negative when equalised (§3.1)
LOCKOUT_TRIPS, LOCKOUT_WINDOW_S = 6, 3600.0  # 6 errors within an hour lock the panel out (§6.3)


class CompressorModel:
    """State machine and first-order physics of a CPA compressor, advanced lazily to ``now``.

    Internal units: degC, bar (gauge), A, h. Not thread-safe: the simulator holds its lock.
    """

    def __init__(self, *, start_s: float, stop_s: float, time_scale: float, now: float):
        self.start_s, self.stop_s, self.time_scale = start_s, stop_s, time_scale
        self.state = p.IDLE
        self.warnings = self.alarms = 0
        self.ignore_starts = 0
        self.hours = 1000.0
        self.values = {name: target for name, (target, _) in STOPPED_TARGETS.items()}
        self.values["CoolantInTemperature"] = COOLANT_SUPPLY_C
        self.values["LowPressureAverage"] = self.values["LowPressure"]
        self.values["HighPressureAverage"] = self.values["HighPressure"]
        self._phase_end = math.inf  # when starting becomes running, or stopping idle
        self._trips: list[float] = []  # model times of error trips, for the lockout
        self._model_time = 0.0
        self._last = now

    # -- commands and faults (call ``advance`` first) --------------------------------------------
    def command(self, value: int, now: float) -> bool:
        """A write of 40001; False for a value the panel does not know."""
        if value == p.START:
            self._start(now)
        elif value in (p.STOP, p.STOP_VENDOR):
            if self.state in p.STARTING_OR_RUNNING:
                self._enter(p.STOPPING, now + self.stop_s)
        else:
            return False
        return True

    def _start(self, now: float) -> None:
        if self.state in (p.LOCKOUT, p.HELIUM_COOL_DOWN) or self.state in p.STARTING_OR_RUNNING:
            return  # lockout and helium cool-down hold starts; running is already running
        if self.ignore_starts:  # the known quirk: acknowledged, not obeyed (§6.2)
            self.ignore_starts -= 1
            return
        self.alarms = 0  # a start request resets latched errors (PT420 §7.7)
        self._enter(p.STARTING, now + self.start_s)

    def trip(self, alarms: int) -> None:
        """Errors stop the compressor and latch (state 7); six within an hour lock it out."""
        self.alarms = alarms
        self._trips = [t for t in self._trips if self._model_time - t < LOCKOUT_WINDOW_S]
        self._trips.append(self._model_time)
        self._enter(p.LOCKOUT if len(self._trips) >= LOCKOUT_TRIPS else p.ERROR)

    def force_state(self, code: int) -> None:
        self._enter(code)

    def clear_faults(self) -> None:
        self.warnings = self.alarms = self.ignore_starts = 0
        self._trips.clear()
        self._enter(p.IDLE)

    def _enter(self, state: int, phase_end: float = math.inf) -> None:
        self.state, self._phase_end = state, phase_end

    # -- time --------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Integrate up to ``now``, switching phase exactly when a timer expires."""
        while self._last < now:
            step_end = min(now, self._phase_end)
            self._integrate((step_end - self._last) * self.time_scale)
            self._last = step_end
            if step_end == self._phase_end:
                self._enter(p.RUNNING if self.state == p.STARTING else p.IDLE)

    def _integrate(self, dt: float) -> None:
        self._model_time += dt
        energized = self.state in p.STARTING_OR_RUNNING
        for name, (target, tau) in (RUNNING_TARGETS if energized else STOPPED_TARGETS).items():
            if name == "MotorCurrent" and self.state == p.STARTING:
                target = STARTING_CURRENT_A
            self.values[name] += (target - self.values[name]) * -math.expm1(-dt / tau)
        smoothing = -math.expm1(-dt / AVERAGE_TAU_S)
        for raw in ("LowPressure", "HighPressure"):
            avg = raw + "Average"
            self.values[avg] += (self.values[raw] - self.values[avg]) * smoothing
        if self.state == p.RUNNING:
            self.hours += dt / 3600.0

    def snapshot(self) -> dict[str, object]:
        """Engineering values (degC, bar) in the keys of :func:`protocol.encode_block`."""
        v = self.values
        return {
            **v,
            "DeltaPressureAverage": (
                v["HighPressureAverage"] - v["LowPressureAverage"] - DELTA_OFFSET_BAR
            ),
            "HoursOfOperation": self.hours,
            "OperatingStateCode": self.state,
            "CompressorRunning": self.state in p.STARTING_OR_RUNNING,
            "WarningCode": self.warnings,
            "AlarmCode": self.alarms,
        }


def _code(text: str) -> int:
    return int(text, 0)  # 0x40, 0b101 or 64


class CpaSimulator(Simulator):
    """A CPA digital panel on ``host:port`` speaking Modbus TCP (``framer='socket'``) or RTU
    framing over TCP (``framer='rtu'``, as through a serial-to-Ethernet gateway)."""

    # The compressor's own faults (beside offline/online, drop, delay, corrupt), by name.
    FAULTS = {
        "exception": Fault("CODE|none", "answer every request with this Modbus exception (e.g. 4); none: stop",
                           lambda sim, c: sim.set_exception(None if c == "none" else _code(c))),
        "warnings": Fault("MASK", "set the warning bits (e.g. 0x4); 0 clears", lambda sim, m: sim.set_warnings(_code(m))),
        "alarms": Fault("MASK", "set alarm bits: the compressor trips (state 7)", lambda sim, m: sim.set_alarms(_code(m))),
        "lockout": Fault("", "error lockout (state 6): starts are ignored", lambda sim: sim.lockout()),
        "state": Fault("CODE", "show this raw operating state code", lambda sim, c: sim.force_state(_code(c))),
        "ignore-start": Fault("[COUNT]", "acknowledge but ignore the next start write(s)",
                              lambda sim, n="1": sim.ignore_next_start(_code(n))),
        "clear": Fault("", "clear warnings, alarms and lockout, as at the panel", lambda sim: sim.clear_faults()),
    }

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        framer: str = "socket",
        unit_id: int | None = None,
        baudrate: int | None = None,
        model: str = "CPA1114",
        cpa3: bool = False,
        pressure_scale: int = 1,
        temperature_scale: int = 1,
        serial_number: int = 1234,
        software_revision: str | None = None,
        start_s: float = 1.0,
        stop_s: float = 1.0,
        time_scale: float = 1.0,
    ):
        if framer not in FRAMERS:
            raise ValueError(f"framer {framer!r} is not 'socket' or 'rtu'")
        if unit_id is not None and not 1 <= unit_id <= 247:
            raise ValueError(f"unit id {unit_id} out of range 1..247 (None answers every id)")
        if baudrate is not None and baudrate <= 0:
            raise ValueError(f"baud rate {baudrate} must be positive")
        self.host, self._requested_port, self.framer = host, port, framer
        self.unit_id, self.baudrate = unit_id, baudrate
        self.identity = {
            "Model": model,
            "PanelSerialNumber": serial_number,
            "SoftwareRevision": software_revision or ("3.2.5" if cpa3 else "2.154"),
        }
        self.cpa3 = cpa3
        self._block_count = p.BLOCK_COUNT_CPA3 if cpa3 else p.BLOCK_COUNT_CPA2
        self._scales = (pressure_scale, temperature_scale)
        self._lock = threading.Lock()
        self._model = CompressorModel(
            start_s=start_s, stop_s=stop_s, time_scale=time_scale, now=time.monotonic()
        )
        self._registers()  # a bad model, revision or scale fails here, not at the first read
        self._exception: ExcCodes | None = None
        self._delay = 0.0
        self._corrupt = 0  # replies still to spoil
        self._online = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._handlers: set[asyncio.Task] = set()
        self._received = bytearray()  # every byte clients sent, for tests of the wire format
        self.port: int | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> "CpaSimulator":
        self._thread = threading.Thread(target=self._thread_main, name="cpa-simulator", daemon=True)
        self._thread.start()
        self._started.wait(10.0)
        if self._start_error is not None:
            raise self._start_error
        if self.port is None:
            raise RuntimeError("CPA simulator did not start within 10 s")
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if thread.is_alive() and self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        thread.join(10.0)

    @property
    def urls(self) -> list[str]:
        scheme = "tcp" if self.framer == "socket" else "rtu+tcp"
        return [f"{scheme}://{self.host}:{self.port}"]

    def banner(self) -> str:
        unit = "any unit id" if self.unit_id is None else f"unit {self.unit_id}"
        fmt = "CPA3" if self.cpa3 else "CPA2"
        return f"Cryomech {self.identity['Model']} simulator ({fmt} format, {unit}) at {self.url}"

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._start_error = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        modbus = ModbusTcpServer(
            self._devices(), framer=FRAMERS[self.framer], address=("127.0.0.1", 0)
        )
        await modbus.serve_forever(background=True)
        try:
            inner_port = modbus.transport.sockets[0].getsockname()[1]
            relay = await asyncio.start_server(
                lambda r, w: self._relay(r, w, inner_port), self.host, self._requested_port
            )
            self.port = relay.sockets[0].getsockname()[1]
            self._started.set()
            try:
                await self._stopped.wait()
            finally:
                relay.close()
                await self._drop_all()
                if self._handlers:  # let each relay close its pair before the loop ends
                    await asyncio.wait(list(self._handlers), timeout=5.0)
                await relay.wait_closed()
        finally:
            await modbus.shutdown()

    def _devices(self) -> list[SimDevice]:
        def layout() -> tuple[list[SimData], ...]:
            bits = [SimData(0, values=False, datatype=DataType.BITS)]  # no coils/inputs used
            holding = [SimData(p.HOLDING_START_STOP, values=0, datatype=DataType.REGISTERS)]
            # PDU 0 is accepted by real panels (content undocumented), so it exists here too.
            inputs = [
                SimData(0, count=self._block_count + 1, values=0, datatype=DataType.REGISTERS)
            ]
            return (bits, list(bits), holding, inputs)

        if self.unit_id is None:
            return [SimDevice(0, simdata=layout(), action=self._panel)]
        # Another id gets what a TCP gateway answers for a slave that stays silent.
        return [
            SimDevice(self.unit_id, simdata=layout(), action=self._panel),
            SimDevice(0, simdata=layout(), action=self._absent),
        ]

    # -- the panel: pymodbus calls this for every register access ------------------------------
    async def _panel(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: Sequence[int] | Sequence[bool] | None,
    ) -> ExcCodes | None:
        with self._lock:
            if self._exception is not None:
                return self._exception
            now = time.monotonic()
            self._model.advance(now)
            if function_code == 4:
                regs = self._registers()
                first = p.BLOCK_START - start_address
                registers[first : first + len(regs)] = regs
            elif set_values is not None:  # FC06/FC16 of 40001 (other addresses do not exist)
                if not self._model.command(int(set_values[0]), now):
                    return ExcCodes.ILLEGAL_VALUE
        return None

    async def _absent(self, *_args) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    def _registers(self) -> list[int]:
        pressure_scale, temperature_scale = self._scales
        regs = p.encode_block(
            {**self._model.snapshot(), **self.identity},
            cpa3=self.cpa3,
            pressure_scale=pressure_scale,
            temperature_scale=temperature_scale,
        )
        regs[p.REGISTER["Undocumented30034"].index] = 0x0001  # real panels: non-zero, unexplained
        return regs

    # -- the relay: connections, delay, pacing --------------------------------------------------
    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inner_port: int
    ) -> None:
        if not self._online:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", inner_port)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self._connections.add(pair)
        handler = asyncio.current_task()
        self._handlers.add(handler)
        request_line = reply_line = None
        if self.baudrate and self.framer == "rtu":
            # One line for both: each frame waits for the 3.5-character silence after the last
            # one (the panel knows a request has ended only then; the master waits as long).
            request_line = reply_line = LineClock(self.baudrate, gap_chars=RTU_GAP_CHARS)
        elif self.baudrate:
            request_line, reply_line = LineClock(self.baudrate), LineClock(self.baudrate)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, request_line, delayed=False)),
            asyncio.create_task(self._pump(up_reader, writer, reply_line, delayed=True)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._connections.discard(pair)
            self._handlers.discard(handler)
            for w in pair:
                w.close()

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        line: LineClock | None,
        delayed: bool,
    ):
        try:
            while data := await src.read(4096):
                if not delayed:
                    with self._lock:
                        self._received += data
                        del self._received[:-RECEIVED_KEPT]
                if delayed and self._delay > 0:
                    await asyncio.sleep(self._delay)
                if delayed:
                    data = self._spoiled(data)
                if line is not None:
                    await self._paced_write(dst, data, line)
                else:
                    dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass  # either side went away: the relay closes both

    async def _paced_write(self, dst: asyncio.StreamWriter, data: bytes, line: LineClock) -> None:
        """Write each byte when it would have been received at the far end of the line."""
        loop = asyncio.get_running_loop()
        ends, sent = line.send(len(data), loop.time()), 0
        while sent < len(data):
            if (wait := ends[sent] - loop.time()) > 0:
                await asyncio.sleep(wait)
            due = max(sent + 1, bisect.bisect_right(ends, loop.time()))  # all received by now
            dst.write(data[sent:due])
            sent = due

    async def _drop_all(self) -> None:
        for pair in list(self._connections):
            for w in pair:
                w.close()

    def _in_loop(self, coro_factory) -> None:
        """Run a coroutine in the simulator's loop and wait for it (callable from any thread)."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(coro_factory(), self._loop).result(5.0)

    def received_bytes(self, clear: bool = False) -> bytes:
        """All bytes clients have sent (requests as on the wire); ``clear`` starts afresh."""
        with self._lock:
            data = bytes(self._received)
            if clear:
                self._received.clear()
        return data

    # -- transport faults -----------------------------------------------------------------------
    def drop_connections(self) -> None:
        """Close every open client connection (the client sees the connection lost)."""
        self._in_loop(self._drop_all)

    def set_online(self, online: bool) -> None:
        """Offline: open connections are dropped and new ones closed as soon as accepted."""
        self._online = online
        if not online:
            self.drop_connections()

    def set_delay(self, seconds: float) -> None:
        """Hold every reply for ``seconds`` (beyond a client's timeout it looks like silence)."""
        if seconds < 0:
            raise ValueError(f"delay {seconds} s must be >= 0")
        self._delay = seconds

    def corrupt_next(self, count: int = 1) -> None:
        """The next ``count`` replies fail their check: RTU framing gets a wrong CRC, Modbus TCP
        a protocol identifier that is not 0 (TCP itself has no checksum to break)."""
        if count < 0:
            raise ValueError(f"count {count} must be >= 0")
        with self._lock:
            self._corrupt += count

    def _spoiled(self, reply: bytes) -> bytes:
        """The reply as it goes out: spoiled while ``corrupt_next`` has some left (taken under
        the lock, so two connections never spend the same one)."""
        with self._lock:
            if self._corrupt <= 0:
                return reply
            self._corrupt -= 1
        spoiled = bytearray(reply)
        spoiled[-1 if self.framer == "rtu" else 2] ^= 0xFF  # the CRC's high byte / MBAP protocol id
        return bytes(spoiled)

    def set_exception(self, code: int | None) -> None:
        """Answer every request with Modbus exception ``code`` (e.g. 2, 4, 6); None to stop."""
        if code is not None:
            try:
                code = ExcCodes(code)
            except ValueError:
                valid = ", ".join(f"0x{c:02X}" for c in ExcCodes)
                raise ValueError(f"Modbus exception code {code} unknown (valid: {valid})") from None
        self._exception = code

    # -- instrument faults and panel settings -----------------------------------------------------
    def _with_model(self, change) -> None:
        with self._lock:
            self._model.advance(time.monotonic())
            change(self._model)

    def set_warnings(self, mask: int) -> None:
        """Warnings do not stop the compressor; they stay until cleared here."""
        p.encode_u32(mask)

        def change(m: CompressorModel) -> None:
            m.warnings = mask

        self._with_model(change)

    def set_alarms(self, mask: int) -> None:
        """Non-zero alarms trip the compressor: state 7 (Error), latched until a start or clear."""
        p.encode_u32(mask)

        def change(m: CompressorModel) -> None:
            if mask:
                m.trip(mask)
            else:
                m.alarms = 0  # the condition went away; the state stays latched

        self._with_model(change)

    def lockout(self) -> None:
        """Error lockout (state 6): start writes are acknowledged and ignored."""
        self._with_model(lambda m: m.force_state(p.LOCKOUT))

    def force_state(self, code: int) -> None:
        """Show any raw state code (e.g. 8, 15, or an undefined 4) until the next command."""
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"state code {code} is not a 16-bit register value")
        self._with_model(lambda m: m.force_state(code))

    def clear_faults(self) -> None:
        """What the operator does at the panel: warnings, alarms and lockout cleared, idle."""
        self._with_model(CompressorModel.clear_faults)

    def ignore_next_start(self, n: int = 1) -> None:
        """The next ``n`` start writes are acknowledged but not obeyed (SOCS #551)."""
        if n < 0:
            raise ValueError(f"count {n} must be >= 0")

        def change(m: CompressorModel) -> None:
            m.ignore_starts = n

        self._with_model(change)

    def set_scales(self, pressure: int | None = None, temperature: int | None = None) -> None:
        """The panel's Units of Measure screen: values are served in these scales from now on."""
        pressure_scale, temperature_scale = self._scales
        if pressure is not None:
            p.pressure_scale_unit(pressure)
            pressure_scale = pressure
        if temperature is not None:
            p.temperature_scale_unit(temperature)
            temperature_scale = temperature
        with self._lock:
            self._scales = (pressure_scale, temperature_scale)

    @property
    def operating_state(self) -> int:
        with self._lock:
            self._model.advance(time.monotonic())
            return self._model.state

    def values(self) -> dict[str, object]:
        """The model's engineering values now (degC, bar, A, h), for tests."""
        with self._lock:
            self._model.advance(time.monotonic())
            return self._model.snapshot()


# -- command line: plantds simulate cpa ------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0 = any free port)")
    parser.add_argument("--rtu", action="store_true", help="RTU framing over TCP (gateway)")
    parser.add_argument("--baud", type=int, default=None, help="pace bytes at this baud rate")
    parser.add_argument("--cpa3", action="store_true", help="55-register CPA3 format")
    parser.add_argument("--unit", type=int, default=None, help="answer only this unit id")
    parser.add_argument("--model", default="CPA1114", help="model string, e.g. CPA289C")
    parser.add_argument("--pressure-scale", choices=p.PRESSURE_UNITS, default="bar")
    parser.add_argument("--temperature-scale", choices=p.TEMPERATURE_UNITS, default="degC")
    parser.add_argument("--time-scale", type=float, default=1.0, help="speed up the physics")
    add_fault_arguments(parser, CpaSimulator.faults())


def run(args: argparse.Namespace) -> int:
    scale = {unit: code for code, unit in p.PRESSURE_SCALES.items()}
    tscale = {unit: code for code, unit in p.TEMPERATURE_SCALES.items()}
    return CpaSimulator(
        host=args.host,
        port=args.port,
        framer="rtu" if args.rtu else "socket",
        unit_id=args.unit,
        baudrate=args.baud,
        model=args.model,
        cpa3=args.cpa3,
        pressure_scale=scale[args.pressure_scale],
        temperature_scale=tscale[args.temperature_scale],
        time_scale=args.time_scale,
    ).serve(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plantds simulate cpa", description="CPA simulator")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
