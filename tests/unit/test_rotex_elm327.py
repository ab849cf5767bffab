"""ELM327 text handling: reply lines, received frames, error texts, prompt-driven I/O."""

from __future__ import annotations

import socket
import threading

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from plantds.devices.rotex.elm327 import (
    Elm327,
    ElmError,
    check_reply,
    frame_line,
    is_transient_failure,
    parse_frame,
    payload_from_line,
    payload_line,
    reply_lines,
)
from plantds.server.links import CommError


# -- reply lines ------------------------------------------------------------------------------
def test_reply_lines_drop_echo_blanks_and_prompt():
    assert reply_lines(b"ATZ\r\r\rELM327 v1.5\r\r>", "ATZ") == ["ELM327 v1.5"]
    assert reply_lines(b"OK\r\r>", "AT H1") == ["OK"]
    assert reply_lines(b"AT H1\rOK\r\r>", "AT H1") == ["OK"]


def test_reply_lines_keep_frames_apart():
    # pyHPSU joined these into one string and matched on its first character.
    raw = b"180 D2 00 FA 01 D6 01 0C\r180 22 0A 0F 00 EB 00 00\r\r>"
    assert reply_lines(raw, "31 00 FA 01 D6 00 00") == [
        "180 D2 00 FA 01 D6 01 0C", "180 22 0A 0F 00 EB 00 00"]


def test_reply_lines_cut_an_echo_glued_to_the_answer():
    # A clone with echo still on answered "AT PP 2F ONOK" (pyHPSU issue #46).
    assert reply_lines(b"AT PP 2F ONOK\r\r>", "AT PP 2F ON") == ["OK"]


def test_reply_lines_accept_crlf():
    assert reply_lines(b"\r\nNO DATA\r\n\r\n>", "31 00 02 00 00 00 00") == ["NO DATA"]


# -- frames -----------------------------------------------------------------------------------
@pytest.mark.parametrize("line, frame", [
    ("180 D2 00 FA 01 D6 01 0C", (0x180, bytes.fromhex("D200FA01D6010C"))),
    ("180D200FA01D6010C", (0x180, bytes.fromhex("D200FA01D6010C"))),  # AT S0
    ("600 22 0A 0F 00 EB 00 00", (0x600, bytes.fromhex("220A0F00EB0000"))),
])
def test_parse_frame(line, frame):
    assert parse_frame(line) == frame


@pytest.mark.parametrize("line", [
    "NO DATA", "OK", "?", "ELM327 v1.5", "CAN ERROR", "STOPPED", "BUFFER FULL",
    "180 D2 00 FA 01 D6 01<RX ERROR",  # a spoiled frame must not be half-read
    "18DAF110 03 22 F1 90",            # 29-bit header
    "180 7 D2 00 FA 01 D6 01 0C",      # DLC shown (AT D1): not the layout we asked for
    "18", "", "FFF 01 02",
])
def test_non_frames_are_not_frames(line):
    assert parse_frame(line) is None


@given(st.integers(0, 0x7FF), st.binary(max_size=8), st.booleans())
def test_parse_frame_reads_what_the_adapter_prints(arbitration_id, data, spaces):
    fields = [f"{arbitration_id:03X}"] + [f"{b:02X}" for b in data]
    line = (" " if spaces else "").join(fields)
    assert parse_frame(line) == (arbitration_id, data)
    assert frame_line(arbitration_id, data, spaces=spaces) == line  # what the emulation prints


@given(st.binary(min_size=1, max_size=8), st.none() | st.integers(1, 15))
def test_a_payload_line_is_read_back_as_its_bytes_and_response_count(data, responses):
    line = payload_line(data, responses)
    assert payload_from_line(line) == (data, responses)
    assert payload_from_line(line.replace(" ", "").lower()) == (data, responses)


@pytest.mark.parametrize("responses", [0, 16, -1])
def test_a_response_count_is_one_hex_digit_1_to_f(responses):
    with pytest.raises(ValueError, match="1-F"):
        payload_line(b"\x31", responses)


@pytest.mark.parametrize("line", ["", "3", "31 0", "31 00 FA 01 D6 00 00 00 00", "31 0G", "AT Z",
                                  "31 00 FA 01 D6 00 00 00 00 1", "31 00 0"])
def test_what_is_not_a_payload_line(line):
    assert payload_from_line(line) is None


@given(st.text(max_size=40))
def test_parse_frame_never_raises(line):
    frame = parse_frame(line)
    assert frame is None or (0 <= frame[0] <= 0x7FF and len(frame[1]) <= 20)


def test_payload_line():
    assert payload_line(bytes.fromhex("3100FA01D60000")) == "31 00 FA 01 D6 00 00"
    # The datasheet's example of a response count: "01 05 1" returns after one response.
    assert payload_line(bytes.fromhex("0105"), 1) == "01 05 1"
    assert payload_from_line("01 05 1") == (b"\x01\x05", 1)


# -- error texts ------------------------------------------------------------------------------
@pytest.mark.parametrize("line", ["CAN ERROR", "BUS ERROR", "?"])
def test_bus_failures_fail_the_link(line):
    with pytest.raises(CommError):
        check_reply([line], "31 00 FA 01 D6 00 00")


@pytest.mark.parametrize("lines", [["NO DATA"], ["180 D2 00 FA 01 D6 01 0C"], ["BUFFER FULL"]])
def test_no_data_and_transient_failures_are_not_link_failures(lines):
    check_reply(lines, "31 00 FA 01 D6 00 00")


@pytest.mark.parametrize("line, transient", [
    ("BUFFER FULL", True), ("DATA ERROR", True), ("180 D2 00<RX ERROR", True),
    ("STOPPED", True), ("NO DATA", False), ("OK", False),
])
def test_transient_failures(line, transient):
    assert is_transient_failure(line) is transient


# -- prompt-driven I/O against a scripted adapter on a real socket -------------------------------
class ScriptedAdapter:
    """A TCP peer answering each command line with a canned reply (or nothing at all)."""

    def __init__(self, replies: dict[bytes, bytes]):
        self.replies = replies
        self.received: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            buffer = b""
            while chunk := conn.recv(1024):
                buffer += chunk
                while b"\r" in buffer:
                    line, buffer = buffer.split(b"\r", 1)
                    self.received.append(line)
                    conn.sendall(self.replies.get(line, b"?\r\r>"))

    def close(self) -> None:
        self._listener.close()
        self._thread.join(2.0)


@pytest.fixture
def adapter_factory():
    made = []

    def make(replies):
        adapter = ScriptedAdapter(replies)
        port = serial.serial_for_url(f"socket://127.0.0.1:{adapter.port}")
        made.append((adapter, port))
        return adapter, Elm327(port, "test")

    yield make
    for adapter, port in made:
        port.close()
        adapter.close()


def test_command_reads_up_to_the_prompt(adapter_factory):
    adapter, elm = adapter_factory({b"ATI": b"ATI\rELM327 v1.5\r\r>", b"ATE0": b"OK\r\r>"})
    assert elm.command("ATI") == ["ELM327 v1.5"]
    elm.expect_ok("ATE0")
    assert adapter.received == [b"ATI", b"ATE0"]


def test_missing_prompt_is_an_error_not_a_hang(adapter_factory):
    _, elm = adapter_factory({b"31 00 02 00 00 00 00": b"180 D2 00 02 01 01 00 00\r"})
    with pytest.raises(ElmError, match="no '>' prompt"):
        elm.command("31 00 02 00 00 00 00", timeout=0.2)


def test_unexpected_answer_to_a_setting_is_named(adapter_factory):
    _, elm = adapter_factory({b"AT H1": b"?\r\r>"})
    with pytest.raises(ElmError, match=r"'AT H1' answered \['\?'\], expected 'OK'"):
        elm.expect_ok("AT H1")


def test_clone_without_programmable_parameters_is_named(adapter_factory):
    adapter, elm = adapter_factory({b"ATZ": b"\r\rELM327 v1.5\r\r>", b"ATE0": b"ATE0\rOK\r\r>"})
    with pytest.raises(CommError, match=r"clone does not support programmable parameters"):
        elm.initialise()
    assert adapter.received == [b"ATZ", b"ATE0", b"AT PP 2F SV 19"]


def _elm_session(port: int, lines: list[str]) -> list[str]:
    """Send each line as a terminal would and collect the adapter's answer up to its prompt."""
    import socket as _socket

    answers = []
    with _socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        for line in lines:
            conn.sendall(line.encode() + b"\r")
            buffer = b""
            while not buffer.endswith(b">"):
                chunk = conn.recv(256)
                assert chunk, f"adapter closed during {line!r}"
                buffer += chunk
            answers.append(buffer.decode(errors="replace"))
    return answers


@pytest.mark.parametrize("client", ["FHEM", "pyHPSU"])
def test_peer_drivers_setup_sequences_without_caf0_get_the_heat_pumps_frames(client):
    """Real adapters apply CAN auto formatting to ISO 15765 protocols only; on protocol C the
    CAN options say "no formatting", so clients that never send AT CAF0 read the frames."""
    from plantds.devices.rotex.simulator import HpsuSimulator

    sim = HpsuSimulator(elm_port=0, latency_s=0.005, drift=False).start()
    try:
        sim.set_value("mode_01", "heat")
        # the one-time adapter set-up both projects document (PPs apply after a reset)
        setup = ["AT PP 2F SV 19", "AT PP 2F ON", "AT Z"]
        if client == "FHEM":
            session = ["AT E1", "AT SP C", "AT V1", "AT H0", "AT SH 680", "AT CRA 180",
                       "31 00 FA 01 12 00 00"]
        else:  # pyHPSU: ATE0, PP 2F ON, SP C, then ATSH and the payload per request
            session = ["ATE0", "AT PP 2F ON", "AT SP C", "ATSH680", "31 00 FA 01 12 00 00"]
        answers = _elm_session(sim.elm_port, setup + session)
        reply = answers[-1]
        assert "NO DATA" not in reply and "FA 01 12 03" in reply.replace("FA0112", "FA 01 12 "), reply
    finally:
        sim.stop()
