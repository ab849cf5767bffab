"""NC codec: the vectors of docs/neslab-nc.md (manual misprints corrected), families, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantds.devices.coleparmer import protocol
from plantds.devices.coleparmer.protocol import FrameError


# -- checksum and framing (§3, §11) ----------------------------------------------------------
@pytest.mark.parametrize(
    "frame",
    [
        "CA 00 01 20 00 DE",  # read internal temperature
        "CA 00 01 20 03 11 02 71 57",  # reply 62.5 °C
        "CA 00 01 F0 02 01 2C DF",  # set 30.0 °C: the carry is dropped
        "CC 00 03 F0 02 01 2C DD",  # same on RS-485, address 3
        "CA 00 01 F0 03 11 00 FA 00",  # a zero checksum is legal
        "CA 00 01 20 03 11 FF 97 34",  # RTE110 p.28 (its text misstates the sum as C8)
    ],
)
def test_checksum_table(frame):
    raw = bytes.fromhex(frame)
    assert protocol.checksum(raw[1:-1]) == raw[-1]
    decoded = protocol.decode_frame(raw)
    assert decoded.encode() == raw


def test_lead_byte_is_not_summed():
    body = bytes.fromhex("00 01 20 00")
    assert protocol.encode_frame(0x20, bus="RS232")[-1] == protocol.encode_frame(0x20, bus="RS485")[-1]
    assert protocol.checksum(body) == 0xDE


# The Polystat read table as it should have been printed (§11), plus the other §4 reads.
READ_REQUESTS = [
    (0x00, "CA 00 01 00 00 FE"),
    (0x09, "CA 00 01 09 00 F5"),
    (0x20, "CA 00 01 20 00 DE"),
    (0x21, "CA 00 01 21 00 DD"),
    (0x70, "CA 00 01 70 00 8E"),
    (0x40, "CA 00 01 40 00 BE"),
    (0x41, "CA 00 01 41 00 BD"),  # printed BE in POLY Table 1
    (0x60, "CA 00 01 60 00 9E"),
    (0x61, "CA 00 01 61 00 9D"),  # printed BE in POLY Table 1
    (0x74, "CA 00 01 74 00 8A"),  # printed 84 in RTE-DP Table 1
    (0x75, "CA 00 01 75 00 89"),
    (0x76, "CA 00 01 76 00 88"),
    (0x71, "CA 00 01 71 00 8D"),
    (0x72, "CA 00 01 72 00 8C"),
    (0x73, "CA 00 01 73 00 8B"),
    # ThermoFlex-only reads
    (0x02, "CA 00 01 02 00 FC"),
    (0x07, "CA 00 01 07 00 F7"),
    (0x10, "CA 00 01 10 00 EE"),
    (0x28, "CA 00 01 28 00 D6"),
    (0x29, "CA 00 01 29 00 D5"),
    (0x2A, "CA 00 01 2A 00 D4"),
    (0x2B, "CA 00 01 2B 00 D3"),
    (0x23, "CA 00 01 23 00 DB"),
]


@pytest.mark.parametrize("command,frame", READ_REQUESTS)
def test_read_requests(command, frame):
    assert protocol.read_request(command) == bytes.fromhex(frame)


def test_every_family_parameter_is_a_named_command():
    reads, sets = set(protocol.READ_COMMANDS.values()), set(protocol.SET_COMMANDS.values())
    for fam in protocol.FAMILIES.values():
        for parameter in fam.parameters.values():
            assert parameter.read in reads
            assert parameter.set is None or parameter.set in sets


@pytest.mark.parametrize(
    "misprint", ["CA 00 01 74 00 84", "CA 00 01 41 00 BE", "CA 00 01 61 00 BE"]
)
def test_manual_misprints_are_rejected(misprint):
    with pytest.raises(FrameError, match="checksum"):
        protocol.decode_frame(bytes.fromhex(misprint))


def test_rs485_request_at_address_5():
    assert protocol.read_request(0x20, address=5, bus="RS485") == bytes.fromhex("CC 00 05 20 00 DA")


def test_firmware_checksum_request_and_version_reply():
    assert protocol.encode_frame(0x02, b"\x01") == bytes.fromhex("CA 00 01 02 01 01 FA")
    reply = protocol.decode_frame(bytes.fromhex("CA 00 01 02 0A 30 38 34 39 39 32 2E 32 4E 20 E4"))
    assert reply.data.decode("ascii") == "084992.2N "


@pytest.mark.parametrize(
    "address,bus,message",
    [(2, "RS232", "always has address 1"), (0, "RS485", "1–100"), (101, "RS485", "1–100"),
     (1, "RS422", "unknown")],
)
def test_address_and_bus_are_checked(address, bus, message):
    with pytest.raises(ValueError, match=message):
        protocol.encode_frame(0x20, address=address, bus=bus)


@pytest.mark.parametrize(
    "raw,message",
    [
        ("CA 00 01 20 00", "shorter"),
        ("CB 00 01 20 00 DE", "lead byte"),
        ("CA 01 01 20 00 DD", "address MSB"),
        ("CA 00 01 0F 02 01 99 53 00 00", "announces"),  # PYN bug 11: n=2 with 4 data bytes
        ("CA 00 01 20 03 11 02 71 58", "checksum"),
    ],
)
def test_invalid_frames(raw, message):
    with pytest.raises(FrameError, match=message):
        protocol.decode_frame(bytes.fromhex(raw))


def test_decode_checks_expected_lead_and_address():
    raw = bytes.fromhex("CC 00 03 F0 02 01 2C DD")
    with pytest.raises(FrameError, match="expected CA"):
        protocol.decode_frame(raw, lead=0xCA)
    with pytest.raises(FrameError, match="expected 4"):
        protocol.decode_frame(raw, address=4)


# -- values and qualifiers (§6) ----------------------------------------------------------------
@pytest.mark.parametrize(
    "qb,decimals,unit",
    [(0x00, 0, ""), (0x01, 0, "degC"), (0x10, 1, ""), (0x11, 1, "degC"), (0x20, 2, ""),
     (0x21, 2, "degC"), (0x12, 1, "degF"), (0x13, 1, "L/min"), (0x3B, 3, "kPa"), (0x1E, 1, "unit 14")],
)
def test_qualifiers(qb, decimals, unit):
    assert protocol.decode_qualifier(qb) == (decimals, unit)


def test_qualifier_with_impossible_precision_is_rejected():
    with pytest.raises(FrameError, match="decimals"):
        protocol.decode_reading(bytes.fromhex("41 00 10"))


@pytest.mark.parametrize(
    "frame,value,decimals",
    [
        ("CA 00 01 20 03 11 02 71 57", 62.5, 1),
        ("CA 00 01 20 03 11 FF 97 34", -10.5, 1),  # bug 1: not 6553.5
        ("CA 00 01 F0 03 01 00 1E EC", 30.0, 0),  # whole degrees
    ],
)
def test_value_replies(frame, value, decimals):
    reading = protocol.decode_reading(protocol.decode_frame(bytes.fromhex(frame)).data)
    assert (reading.value, reading.decimals, reading.unit) == (value, decimals, "degC")


@pytest.mark.parametrize(
    "data,value",
    [("11 01 C8", 45.6), ("01 FF F4", -12.0), ("21 F8 30", -20.0), ("11 80 00", -3276.8),
     ("21 7F FF", 327.67), ("00 00 00", 0.0)],
)
def test_signed_values(data, value):
    assert protocol.decode_reading(bytes.fromhex(data)).value == value


def test_four_byte_thermoflex_value():
    reading = protocol.decode_reading(bytes.fromhex("10 FF FF FF 9C"))
    assert (reading.value, reading.width) == (-10.0, 4)


@pytest.mark.parametrize("data", ["11", "11 01", "11 01 C8 00", "11 01 C8 00 00 00"])
def test_value_reply_lengths(data):
    with pytest.raises(FrameError, match="data bytes"):
        protocol.decode_reading(bytes.fromhex(data))


# Writes: the manual's exact bytes at each precision (§6.3).
@pytest.mark.parametrize(
    "command,value,decimals,frame",
    [
        (0xF0, 30.0, 1, "CA 00 01 F0 02 01 2C DF"),
        (0xF0, -10.5, 1, "CA 00 01 F0 02 FF 97 76"),  # bug 2: signed encode
        (0xF0, 25.0, 1, "CA 00 01 F0 02 00 FA 12"),
        (0xF0, 20.00, 2, "CA 00 01 F0 02 07 D0 35"),
        (0xF0, 30, 0, "CA 00 01 F0 02 00 1E EE"),
        (0xC0, -5.0, 1, "CA 00 01 C0 02 FF CE 6F"),
    ],
)
def test_set_requests(command, value, decimals, frame):
    assert protocol.set_request(command, value, decimals) == bytes.fromhex(frame)


def test_set_request_rs485():
    assert protocol.set_request(0xF0, 30.0, 1, address=3, bus="RS485") == bytes.fromhex("CC 00 03 F0 02 01 2C DD")


@pytest.mark.parametrize(
    "value,decimals,raw",
    [(0.3, 1, 3), (2.675, 2, 268), (-2.675, 2, -268), (0.25, 1, 3), (-0.25, 1, -3), (29.96, 1, 300),
     (30.0, 0, 30), (-3276.8, 1, -32768), (327.67, 2, 32767)],
)
def test_to_raw_rounds_half_away_from_zero(value, decimals, raw):
    assert protocol.to_raw(value, decimals) == raw  # bug 5: int(0.3 / 0.1) gives 2


@pytest.mark.parametrize(
    "value,decimals,limits",
    [(3276.8, 1, "-3276.8 … 3276.7"), (-327.69, 2, "-327.68 … 327.67"), (40000, 0, "-32768 … 32767")],
)
def test_to_raw_names_the_limits(value, decimals, limits):
    with pytest.raises(ValueError, match=limits):
        protocol.to_raw(value, decimals)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_to_raw_rejects_non_finite(value):
    with pytest.raises(ValueError, match="finite"):
        protocol.to_raw(value, 1)


# -- families ----------------------------------------------------------------------------------
EXPECTED_PARAMETERS = {
    # attribute: families that have it (§4, §5)
    "InternalTemperature": {"Polystat", "RTE", "EX", "ThermoFlex", "Merlin"},
    "ExternalTemperature": {"Polystat", "RTE", "EX", "ThermoFlex"},
    "Setpoint": {"Polystat", "RTE", "EX", "ThermoFlex", "Merlin"},
    "LowTemperatureWarning": {"Polystat", "RTE", "EX", "ThermoFlex", "Merlin"},
    "HighTemperatureWarning": {"Polystat", "RTE", "EX", "ThermoFlex", "Merlin"},
    "LowTemperatureFault": {"Polystat", "ThermoFlex"},
    "HighTemperatureFault": {"Polystat", "ThermoFlex"},
    "HeatProportionalBand": {"Polystat", "RTE", "EX"},
    "HeatIntegral": {"Polystat", "RTE", "EX"},
    "HeatDerivative": {"Polystat", "RTE", "EX"},
    "CoolProportionalBand": {"Polystat", "RTE", "ThermoFlex", "Merlin"},
    "CoolIntegral": {"Polystat", "RTE", "ThermoFlex", "Merlin"},
    "CoolDerivative": {"Polystat", "RTE", "ThermoFlex", "Merlin"},
}


def test_family_names():
    assert set(protocol.FAMILIES) == {"Polystat", "RTE", "EX", "ThermoFlex", "Merlin"}
    with pytest.raises(ValueError, match="Polystat, RTE"):
        protocol.family("Arctic")


@pytest.mark.parametrize("attribute", sorted(EXPECTED_PARAMETERS))
def test_family_parameters(attribute):
    having = {name for name, fam in protocol.FAMILIES.items() if attribute in fam.parameters}
    assert having == EXPECTED_PARAMETERS[attribute]


def test_set_codes_follow_the_read_or_0x80_pattern():
    for fam in protocol.FAMILIES.values():
        for name, parameter in fam.parameters.items():
            if name.endswith("Temperature"):
                assert parameter.set is None
            else:
                assert parameter.set == parameter.read | 0x80


# -- Read Status (§8) --------------------------------------------------------------------------
def test_rte_synthetic_status_example():
    frame = protocol.decode_frame(bytes.fromhex("CA 00 01 09 05 00 00 00 0D 20 C3"))
    flags, booleans, severity = protocol.decode_status("RTE", frame.data)
    assert flags == ["unit on", "pump on", "heater on", "heat LED on"]
    assert booleans == {"UnitOn": True, "PumpOn": True, "CompressorOn": False, "HeaterOn": True}
    assert severity is None


@pytest.mark.parametrize(
    "family,data,flag,severity",
    [
        ("RTE", "00 01 00 00 00", "HTC fault", "fault"),  # bug 3: each byte's bits in place
        ("RTE", "80 00 00 00 00", "RTD1 open fault", "fault"),
        ("RTE", "00 00 04 08 00", "high temp warn", "warning"),
        ("RTE", "00 00 01 08 00", "low level warn", "warning"),
        ("RTE", "00 00 00 20 00", "unit faulted", "fault"),
        ("RTE", "00 00 00 00 80", "RTD2 controlling", None),
        ("EX", "00 00 08 00 00", "low level fault", "fault"),
        ("EX", "00 00 00 02 00", "d4 b.1", None),  # no compressor bit on an EX
        ("EX", "08 00 00 00 00", "d1 b.3", None),
        ("ThermoFlex", "00 00 04 00", "low flow fault", "fault"),
        ("ThermoFlex", "00 00 40 00", "low fixed flow warning", "warning"),
        ("ThermoFlex", "41 00 00 00", "high temp fault or warn", "warning"),  # running: warning
        ("ThermoFlex", "40 00 00 00", "high temp fault or warn", "fault"),  # stopped: fault
        ("ThermoFlex", "00 00 00 02", "powering up", None),
        ("Polystat", "02 00", "chiller faulted", "fault"),
        ("Polystat", "22 04", "d2 b.2", "fault"),  # fault detail, not yet decodable
        ("Merlin", "01 00", "chiller running", None),
    ],
)
def test_status_bits(family, data, flag, severity):
    flags, _, got_severity = protocol.decode_status(family, bytes.fromhex(data))
    assert flag in flags
    assert got_severity == severity


@pytest.mark.parametrize(
    "family,booleans",
    [
        ("RTE", {"UnitOn", "PumpOn", "CompressorOn", "HeaterOn"}),
        ("EX", {"UnitOn", "PumpOn", "HeaterOn"}),
        ("ThermoFlex", {"UnitOn"}),
        ("Polystat", {"UnitOn"}),
        ("Merlin", {"UnitOn"}),
    ],
)
def test_status_booleans_per_family(family, booleans):
    fam = protocol.family(family)
    _, got, _ = protocol.decode_status(family, bytes(fam.status_length))
    assert set(got) == booleans and not any(got.values())


@pytest.mark.parametrize("family,length", [("RTE", 5), ("EX", 5), ("ThermoFlex", 4),
                                           ("Polystat", 2), ("Merlin", 2)])
def test_status_length_is_checked(family, length):
    assert protocol.family(family).status_length == length
    for wrong in (length - 1, length + 1):
        with pytest.raises(FrameError, match=f"{family} sends {length}"):
            protocol.decode_status(family, bytes(wrong))


def test_status_bit_names_are_unique_per_family():
    for fam in protocol.FAMILIES.values():
        names = [bit.name for bit in fam.status_bits]
        assert len(names) == len(set(names))
        positions = [(bit.byte, bit.bit) for bit in fam.status_bits]
        assert len(positions) == len(set(positions))
        assert all(name in names for name in fam.booleans.values())


# -- Set On/Off array (§7) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "family,unit_on,length,frame",
    [
        ("RTE", True, None, "CA 00 01 81 08 01 02 02 02 02 02 02 02 66"),
        ("EX", False, None, "CA 00 01 81 08 00 02 02 02 02 02 02 02 67"),
        ("RTE", None, None, "CA 00 01 81 08 02 02 02 02 02 02 02 02 65"),
        ("Merlin", True, 5, "CA 00 01 81 05 01 02 02 02 02 6F"),
        ("Polystat", True, None, "CA 00 01 81 01 01 7B"),
        ("ThermoFlex", False, None, "CA 00 01 81 01 00 7C"),
        ("Merlin", None, None, "CA 00 01 81 01 02 7A"),
    ],
)
def test_on_off_requests(family, unit_on, length, frame):
    data = protocol.on_off_data(family, unit_on, length)
    assert protocol.encode_frame(protocol.SET_ON_OFF, data) == bytes.fromhex(frame)


def test_rte_serial_comm_off_frame():
    # The "make local" frame (d8 = 0) is not something on_off_data builds; check the rule only.
    assert protocol.encode_frame(0x81, bytes.fromhex("02 02 02 02 02 02 02 00")) == bytes.fromhex(
        "CA 00 01 81 08 02 02 02 02 02 02 02 00 67"
    )


def test_on_off_length_is_checked():
    with pytest.raises(ValueError, match="8"):
        protocol.on_off_data("RTE", True, 1)
    with pytest.raises(FrameError, match="uses"):
        protocol.decode_on_off("ThermoFlex", bytes.fromhex("01 00"))
    with pytest.raises(FrameError, match="other than 0 and 1"):
        protocol.decode_on_off("Polystat", bytes.fromhex("02"))


def test_on_off_reply():
    settings = protocol.decode_on_off("RTE", bytes.fromhex("01 00 01 00 00 01 00 01"))
    assert settings["unit on"] and settings["0.01 degC"] and settings["serial comm"]
    assert not settings["mute"]
    assert protocol.decode_on_off("Polystat", bytes.fromhex("00")) == {"unit on": False}


# -- error replies (§9) ------------------------------------------------------------------------
def test_error_reply_example():
    frame = protocol.decode_frame(bytes.fromhex("CA 00 01 0F 02 01 99 53"))
    error = protocol.decode_error("RTE", frame.data)
    assert (error.code, error.command, error.kind) == (1, 0x99, protocol.BAD_COMMAND)


@pytest.mark.parametrize(
    "family,code,meaning",
    [
        ("RTE", 1, "bad command"), ("RTE", 3, "bad checksum"), ("RTE", 2, "error 02 (not in the manual)"),
        ("EX", 3, "bad checksum"),
        ("ThermoFlex", 1, "bad command"), ("ThermoFlex", 2, "bad data"), ("ThermoFlex", 3, "bad checksum"),
        ("Polystat", 1, "bad command"), ("Polystat", 2, "bad checksum"),
        ("Polystat", 3, "error 03 (not in the manual)"),
        ("Merlin", 2, "bad checksum"),
    ],
)
def test_error_numbering_per_family(family, code, meaning):
    assert protocol.decode_error(family, bytes((code, 0x70))).meaning == meaning


def test_error_code_reverse_lookup():
    assert protocol.error_code("ThermoFlex", protocol.BAD_DATA) == 2
    assert protocol.error_code("Polystat", protocol.BAD_CHECKSUM) == 2
    assert protocol.error_code("RTE", protocol.BAD_CHECKSUM) == 3
    assert protocol.error_code("RTE", protocol.BAD_DATA) == 1  # no "bad data": bad command


def test_error_reply_length_is_checked():
    with pytest.raises(FrameError, match="expected 2"):
        protocol.decode_error("RTE", bytes.fromhex("01 99 00 00"))


# -- properties --------------------------------------------------------------------------------
buses = st.sampled_from(sorted(protocol.LEADS))


@st.composite
def frames(draw):
    bus = draw(buses)
    address = 1 if bus == "RS232" else draw(st.integers(1, 100))
    command = draw(st.integers(0, 255))
    data = draw(st.binary(max_size=10))
    return protocol.encode_frame(command, data, address=address, bus=bus), bus, address


@given(frames())
def test_frame_round_trip(case):
    raw, bus, address = case
    frame = protocol.decode_frame(raw, lead=protocol.LEADS[bus], address=address)
    assert frame.encode() == raw
    assert len(raw) == protocol.frame_length(raw[:5])


@settings(max_examples=300)
@given(frames(), st.data())
def test_any_single_byte_change_is_rejected(case, data):
    raw, bus, address = case
    index = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    damaged = raw[:index] + bytes((new,)) + raw[index + 1 :]
    with pytest.raises(FrameError):
        protocol.decode_frame(damaged, lead=protocol.LEADS[bus], address=address)


@given(frames(), st.data())
def test_truncated_or_extended_frames_are_rejected(case, data):
    raw, bus, address = case
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FrameError):
        protocol.decode_frame(raw[:cut], lead=protocol.LEADS[bus], address=address)
    extra = data.draw(st.binary(min_size=1, max_size=4))
    with pytest.raises(FrameError):
        protocol.decode_frame(raw + extra, lead=protocol.LEADS[bus], address=address)


@given(st.integers(-32768, 32767), st.integers(0, 2), st.integers(0, 15))
def test_reading_round_trip(raw, decimals, unit_index):
    reading = protocol.decode_reading(protocol.encode_reading(raw, decimals, unit_index))
    assert (reading.raw, reading.decimals, reading.width) == (raw, decimals, 2)
    assert reading.value == raw / 10**decimals


@given(st.integers(0, 2), st.integers(-32768, 32767), buses, st.integers(1, 100))
def test_set_value_survives_encode_and_echo(decimals, raw, bus, address):
    address = 1 if bus == "RS232" else address
    value = raw / 10**decimals
    request = protocol.decode_frame(protocol.set_request(0xF0, value, decimals, address=address, bus=bus))
    sent = int.from_bytes(request.data, "big", signed=True)
    assert sent == raw
    echo = protocol.encode_reading(sent, decimals)
    assert protocol.decode_reading(echo).value == value


@given(st.floats(-300, 300, allow_nan=False), st.integers(0, 2))
def test_to_raw_is_nearest(value, decimals):
    raw = protocol.to_raw(value, decimals)
    assert abs(raw / 10**decimals - value) <= 0.5 * 10**-decimals + 1e-9


@given(st.sampled_from(sorted(protocol.FAMILIES)), st.data())
def test_status_round_trip(family, data):
    fam = protocol.family(family)
    names = data.draw(st.sets(st.sampled_from([bit.name for bit in fam.status_bits])))
    flags, booleans, _ = protocol.decode_status(family, protocol.encode_status(family, names))
    assert set(flags) == names
    assert booleans == {attr: bit in names for attr, bit in fam.booleans.items()}


@given(st.sampled_from(sorted(protocol.FAMILIES)), st.data())
def test_every_set_status_bit_is_reported(family, data):
    fam = protocol.family(family)
    raw = data.draw(st.binary(min_size=fam.status_length, max_size=fam.status_length))
    flags, _, _ = protocol.decode_status(family, raw)
    assert len(flags) == len(set(flags)) == sum(bin(b).count("1") for b in raw)


@given(st.sampled_from(sorted(protocol.FAMILIES)), st.data())
def test_on_off_round_trip(family, data):
    fam = protocol.family(family)
    length = data.draw(st.sampled_from(fam.on_off_lengths))
    state = data.draw(st.lists(st.booleans(), min_size=length, max_size=length))
    settings = protocol.decode_on_off(family, bytes(state))
    assert list(settings.values()) == state
    assert list(settings) == list(fam.on_off[:length])


# -- the frame splitter both ends use (driver and simulator) ----------------------------------
_frames = st.lists(
    st.builds(lambda command, data: protocol.encode_frame(command, data), st.integers(0, 0xFF),
              st.binary(max_size=6)),
    min_size=1, max_size=6,
)
_noise = st.binary(max_size=5).map(lambda b: bytes(x for x in b if x != 0xCA))  # no lead byte


@settings(max_examples=300, deadline=None)
@given(_frames, st.lists(_noise, min_size=7, max_size=7), st.data())
def test_splitter_takes_every_frame_out_of_noise_in_any_pieces(frames, noise, data):
    stream = b"".join(n + f for n, f in zip(noise, frames)) + noise[len(frames)]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    splitter = protocol.FrameSplitter(0xCA, 1)
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        out += splitter.feed(stream[start:end])
    assert out == frames
    assert splitter.stray == sum(len(n) for n in noise[: len(frames) + 1])


@settings(max_examples=200, deadline=None)
@given(_frames, st.data())
def test_splitter_gives_only_whole_frames_and_asks_for_no_more_than_one(frames, data):
    stream = b"".join(frames)
    cut = data.draw(st.integers(0, len(stream) - 1))
    splitter = protocol.FrameSplitter(0xCA, 1)
    taken = splitter.feed(stream[:cut])
    whole = [f for i, f in enumerate(frames) if sum(map(len, frames[: i + 1])) <= cut]
    assert taken == whole
    # What a reader asks the port for completes the begun frame exactly (a driver never reads
    # into the next reply).
    begun = cut - sum(map(len, whole))
    expected = protocol.HEADER_LENGTH - begun if begun < protocol.HEADER_LENGTH else len(frames[len(whole)]) - begun
    assert splitter.missing() == expected


def test_splitter_skips_frames_for_another_address_and_implausible_headers():
    rs485 = dict(bus="RS485")
    other = protocol.encode_frame(0x20, b"\x01", address=2, **rs485)
    wanted = protocol.encode_frame(0x20, b"\x11\x02\x71", address=7, **rs485)
    refused = protocol.encode_frame(0x21, b"\x11\x02\x71", address=7, **rs485)
    splitter = protocol.FrameSplitter(0xCC, 7, lambda header: header[3] == 0x20)
    assert splitter.feed(other + refused + wanted) == [wanted]
    assert splitter.stray == len(other) + len(refused)
