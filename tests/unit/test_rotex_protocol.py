"""Rotex HPSU CAN telegrams: vectors from docs/rotex-hpsu-can.md (§2, §5.2, §6.1) and fuzzing."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plantds.devices.rotex.protocol import (
    MSG_READ, MSG_RESPONSE, MSG_WRITE, Telegram, address_bytes, decode_value, decode_word,
    decimals, encode_read, encode_telegram, encode_value, encode_write, label_for,
    match_response, node_of_request_bytes, parse_telegram, write_range,
)
from plantds.devices.rotex.table import load_commands

COMMANDS = load_commands()
OWN = 0x680        # the "PC" address FHEM, ioBroker and ESPHome use; replies start D2 00
DISPLAY = 0x10A


def h(text):
    return bytes.fromhex(text)


# -- addressing (§2) ---------------------------------------------------------------------------

@pytest.mark.parametrize("target, msg_type, expected", [
    (0x180, MSG_READ, (0x31, 0x00)), (0x300, MSG_READ, (0x61, 0x00)),
    (0x400, MSG_READ, (0x81, 0x00)), (0x500, MSG_READ, (0xA1, 0x00)),
    (0x600, MSG_READ, (0xC1, 0x00)), (0x190, MSG_RESPONSE, (0x32, 0x10)),
    (0x310, MSG_RESPONSE, (0x62, 0x10)), (0x680, MSG_RESPONSE, (0xD2, 0x00)),
    (DISPLAY, MSG_RESPONSE, (0x22, 0x0A)), (0x180, MSG_WRITE, (0x30, 0x00)),
])
def test_address_bytes(target, msg_type, expected):
    assert address_bytes(target, msg_type) == expected
    assert node_of_request_bytes(*expected) == target


@given(st.integers(0, 0x7FF), st.integers(0, 15))
def test_address_round_trip(target, msg_type):
    b0, b1 = address_bytes(target, msg_type)
    assert node_of_request_bytes(b0, b1) == target and b0 & 0x0F == msg_type


@pytest.mark.parametrize("target, msg_type", [(0x800, 1), (-1, 1), (0x180, 16)])
def test_address_bytes_refuses_what_does_not_fit(target, msg_type):
    with pytest.raises(ValueError):
        address_bytes(target, msg_type)


# -- requests (§3) -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, frame", [
    ("t_hs", "31 00 FA 01 D6 00 00"), ("t_dhw", "31 00 0E 00 00 00 00"),
    ("t_hs_set", "31 00 02 00 00 00 00"), ("t_hc_set", "61 00 04 00 00 00 00"),
    ("t_hc", "C1 00 0F 00 00 00 00"), ("t_room", "81 00 FA 00 11 00 00"),
    ("tvbh2", "31 00 FA C1 02 00 00"),            # pyHPSU's 5-byte request, padded to 7
    ("t_screed_day7", "61 00 FA 0B BF 00 00"),    # fixed index
    ("comp_active", "A1 00 61 00 00 00 00"),
])
def test_read_request_vectors(name, frame):
    assert encode_read(COMMANDS[name]) == h(frame)


def test_every_read_request_is_the_pyhpsu_payload_padded_to_seven_bytes():
    fixed = {"t_screed_day7", "t_screed_day22", "aux_fct"}
    for cmd in COMMANDS.values():
        request = encode_read(cmd)
        assert len(request) == 7
        if cmd.name not in fixed:
            assert request == h(cmd.request).ljust(7, b"\0"), cmd.name


def test_parse_request_and_reply_from_the_sheet():
    assert parse_telegram(0x190, h("31 00 FA 01 D6 00 00")) == Telegram(
        sender=0x190, target=0x180, msg_type=MSG_READ, index=0x01D6, fa=True, value=0)
    assert parse_telegram(0x180, h("32 10 FA 01 D6 01 0C")) == Telegram(
        sender=0x180, target=0x190, msg_type=MSG_RESPONSE, index=0x01D6, fa=True, value=0x010C)
    assert parse_telegram(0x180, h("32 10 0E 01 B1 00 00")).index == 0x0E
    assert parse_telegram(0x190, h("31 00 FA C1 02")).value is None   # 5-byte request


@pytest.mark.parametrize("arbitration_id, frame", [
    (0x180, ""), (0x180, "32 10"), (0x180, "32 10 FA 01"), (0x180, "32 10 FA 01 D6 01 0C 00 00"),
    (0x800, "32 10 FA 01 D6 01 0C"),
])
def test_parse_refuses_what_cannot_be_a_telegram(arbitration_id, frame):
    with pytest.raises(ValueError):
        parse_telegram(arbitration_id, h(frame))


def test_encode_telegram_builds_replies_in_both_forms():
    assert encode_telegram(OWN, MSG_RESPONSE, 0x01D6, 0x010C) == h("D2 00 FA 01 D6 01 0C")
    assert encode_telegram(0x190, MSG_RESPONSE, 0x0E, 0x01B1) == h("32 10 0E 01 B1 00 00")
    assert encode_telegram(OWN, MSG_RESPONSE, 0x0E, 0x01B1, fa=True) == h("D2 00 FA 00 0E 01 B1")
    assert encode_telegram(OWN, MSG_RESPONSE, 0x01D6, -50) == h("D2 00 FA 01 D6 FF CE")
    with pytest.raises(ValueError):
        encode_telegram(OWN, MSG_RESPONSE, 0x01D6, 0, fa=False)
    with pytest.raises(ValueError):
        encode_telegram(OWN, MSG_RESPONSE, 0x01D6, 0x10000)


@given(st.integers(0, 0x7FF), st.integers(0, 15), st.integers(0, 0xFFFF),
       st.integers(-0x8000, 0xFFFF), st.booleans())
def test_telegram_round_trip(target, msg_type, index, value, fa):
    fa = fa or index >= 0xFA
    frame = encode_telegram(target, msg_type, index, value, fa)
    assert len(frame) == 7
    assert parse_telegram(0x123, frame) == Telegram(0x123, target, msg_type, index, fa,
                                                    value & 0xFFFF)


# -- decoding: the vectors of §5.2 -------------------------------------------------------------

@pytest.mark.parametrize("name, reply, expected", [
    ("t_hs", "32 10 FA 01 D6 01 0C", 26.8),
    ("t_hs_set", "32 10 02 01 01 00 00", 25.7),
    ("t_dhw", "32 10 0E 01 B1 00 00", 43.3),
    ("t_dhw_set", "32 10 03 01 CC 00 00", 46.0),
    ("t_return", "32 10 16 00 DF 00 00", 22.3),
    ("flow_rate", "32 10 FA 01 DA 05 70", 1392),
    ("t_hc", "22 0A 0F 00 EB 00 00", 23.5),
    ("status_pump", "32 10 FA 0A 8C 00 01", 1),
    ("runtime_comp", "32 10 FA 06 A5 01 98", 408),
    ("qch", "32 10 FA 06 A7 08 AF", 2223),
    ("mode_01", "32 10 FA 01 12 03 00", 3),
    ("t_hs", "32 10 FA 01 D6 FF CE", -5.0),
])
def test_decode_vectors(name, reply, expected):
    value = decode_value(COMMANDS[name], h(reply))
    assert value == expected and type(value) is type(expected)


def test_decoded_codes_have_labels():
    assert label_for(COMMANDS["mode_01"], decode_value(COMMANDS["mode_01"],
                                                       h("32 10 FA 01 12 03 00"))) == "heat"
    assert label_for(COMMANDS["status_pump"], 1) == "on"
    assert label_for(COMMANDS["status_pump"], 7) is None
    assert label_for(COMMANDS["status_pump"], None) is None
    assert label_for(COMMANDS["t_hs"], 0) is None


@pytest.mark.parametrize("name, word, expected", [
    ("t_hs", 0x8000, None),           # "no value" on a signed word
    ("t_hs", 0xFFFF, -0.1),           # ...but 0xFFFF is a real -0.1 degC there
    ("flow_rate", 0xFFFF, None),      # the 65535 l/h reading
    ("flow_rate", 0x8000, None),
    ("qch", 0x8000, None),            # the 32768 kWh reading
    ("qch", 0x7FFF, 32767),
    ("power_dhw", 300, 3000),         # divisor 0.1: raw x 10, no floor-division loss
    ("v_var", 125, 12.5),             # tenths of l/h kept (pyHPSU rounded to whole l/h)
    ("heat_slope", 29, 0.29),
    ("water_pressure", 1520, 1.52),
    ("mode_01", 0x1100, 17),          # int type: high byte only
    ("insulation", 3072, 3072),       # value type: the whole 16-bit code
])
def test_decode_words(name, word, expected):
    assert decode_word(COMMANDS[name], word) == expected


@pytest.mark.parametrize("word, outside, storage, pres", [
    (0x2804, "off", "sensor", "off"),
    (0x6805, "on", "sensor", "on"),
    (0x0002, "off", "thermostat", "off"),
])
def test_bit_field_word_is_decoded_as_bits(word, outside, storage, pres):
    reply = encode_telegram(OWN, MSG_RESPONSE, 0x0961, word)
    for name, label in (("outside_conf", outside), ("storage_conf", storage), ("pres_conf", pres)):
        cmd = COMMANDS[name]
        assert match_response(cmd, OWN, 0x180, reply)
        assert label_for(cmd, decode_value(cmd, reply)) == label


@pytest.mark.parametrize("frame", [
    "32 10 FA 01 D6 01", "32 10 FA 01 D6", "32 10 FA 01", "32 10", "", "32 10 0E 01",
])
def test_truncated_frames_raise_cleanly(frame):
    with pytest.raises(ValueError):
        decode_value(COMMANDS["t_hs"], h(frame))


# -- reply matching (§4.2) ---------------------------------------------------------------------

def test_our_reply_matches_in_either_index_form():
    assert match_response(COMMANDS["t_hs"], OWN, 0x180, h("D2 00 FA 01 D6 01 0C"))
    assert match_response(COMMANDS["t_dhw"], OWN, 0x180, h("D2 00 0E 01 B1 00 00"))
    assert match_response(COMMANDS["t_dhw"], OWN, 0x180, h("D2 00 FA 00 0E 01 B1"))
    assert decode_value(COMMANDS["t_dhw"], h("D2 00 FA 00 0E 01 B1")) == 43.3
    assert match_response(COMMANDS["t_room"], OWN, 0x400, h("D2 00 11 00 EB 00 00"))
    assert match_response(COMMANDS["t_hs"], 0x190, 0x180, h("32 10 FA 01 D6 01 0C"))


@pytest.mark.parametrize("arbitration_id, frame, why", [
    (0x190, "31 00 FA 01 D6 00 00", "another client's read request for the same index"),
    (0x10A, "31 00 FA 01 D6 00 00", "the display's read request for the same index"),
    (0x180, "D1 00 FA 01 D6 00 00", "a read request (type 1) addressed to us"),
    (0x180, "D0 00 FA 01 D6 01 0C", "a write (type 0) addressed to us"),
    (0x180, "22 0A FA 01 D6 01 0C", "the reply to the display"),
    (0x180, "32 10 FA 01 D6 01 0C", "the reply to 0x190"),
    (0x180, "D2 01 FA 01 D6 01 0C", "a reply to 0x681"),
    (0x180, "D2 80 FA 01 D6 01 0C", "byte 1 with its top bit set"),
    (0x180, "52 00 FA 01 D6 01 0C", "a reply to 0x280"),
    (0x180, "D2 00 FA 01 D7 01 0C", "the wrong index"),
    (0x180, "D2 00 D6 01 0C 00 00", "a short index that only equals the low byte"),
    (0x300, "D2 00 FA 01 D6 01 0C", "the wrong responder"),
    (0x180, "D2 00 FA 01 D6 01", "dlc 6"),
    (0x180, "D2 00 FA 01 D6 01 0C 00", "dlc 8"),
    (0x180, "D2 00 FA 01 D6", "dlc 5"),
])
def test_background_traffic_never_matches(arbitration_id, frame, why):
    assert not match_response(COMMANDS["t_hs"], OWN, arbitration_id, h(frame)), why


def test_reply_found_under_background_traffic():
    bus = [
        (0x10A, "31 00 FA 01 D6 00 00"), (0x180, "22 0A FA 01 D6 01 0B"),
        (0x190, "31 00 FA 01 D6 00 00"), (0x180, "32 10 FA 01 D6 01 0A"),
        (0x180, "D2 00 FA 01 D7 00 55"), (0x180, "D2 00 FA 01 D6 01 0C 00"),
        (0x180, "D2 00 FA 01 D6 01 0C"), (0x180, "D2 00 FA 01 D6 00 00"),
    ]
    cmd = COMMANDS["t_hs"]
    hits = [decode_value(cmd, h(data))
            for arb, data in bus if match_response(cmd, OWN, arb, h(data))]
    assert hits[0] == 26.8


def test_display_traffic_never_matches_any_own_address():
    reply_to_display = h("22 0A 0F 00 EB 00 00")   # the sniffed t_hc vector
    for own in (0x680, 0x190, 0x610, 0x700):
        assert not match_response(COMMANDS["t_hc"], own, 0x600, reply_to_display)
    with pytest.raises(ValueError, match="display"):
        match_response(COMMANDS["t_hc"], DISPLAY, 0x600, reply_to_display)


# -- writes (§6.1) -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, frame", [
    ("heat_slope", 0.29, "30 00 FA 01 0E 00 1D"),       # 28.999... rounds to 29, not 28
    ("t_flow_ch_adj", 0, "30 00 FA 06 A0 00 00"),       # zero is written, not read
    ("t_flow_ch_adj", 0.0, "30 00 FA 06 A0 00 00"),
    ("cool_setpoint_adj", -5.0, "60 00 FA 13 59 FF CE"),
    ("equi_temp", -5, "A0 00 FA 06 D4 FF CE"),
    ("mode_01", "heat", "30 00 FA 01 12 03 00"),        # int type: code in the high byte
    ("mode_01", 3, "30 00 FA 01 12 03 00"),
    ("mode_01", "cool", "30 00 FA 01 12 11 00"),
    ("t_dhw_setpoint1", 48.0, "30 00 FA 00 13 01 E0"),  # short index, still written in FA form
    ("power_dhw", 3000, "30 00 FA 06 68 01 2C"),        # > 255 raw: full 16 bits
    ("insulation", "very good", "60 00 FA 01 0C 0C 00"),
    ("screed", "on", "60 00 FA 01 1A 01 00"),
    ("t_room1_setpoint", 20.25, "30 00 FA 00 05 00 CB"),  # halves round away from zero
    ("quiet_mode", "only at night", "30 00 FA 06 96 00 02"),
    ("aux_fct", 1, "30 00 FA 06 71 00 01"),             # the fixed index, not quiet mode
])
def test_write_vectors(name, value, frame):
    assert encode_write(COMMANDS[name], value) == h(frame)


@pytest.mark.parametrize("name, value, message", [
    ("t_hs", 20.0, "read-only"),
    ("outdoor_type", "8 kW", "read-only"),
    ("pres_conf", "on", "read-only"),
    ("t_dhw_setpoint1", 70.5, "maximum 70"),
    ("t_room1_setpoint", 4.9, "minimum 5"),
    ("heat_slope", -0.01, "minimum 0"),
    ("t_hs_set", float("nan"), "read-only"),
    ("heat_slope", float("nan"), "not a finite number"),
    ("aux_time", float("inf"), "not a finite number"),
    ("aux_time", 40000, "outside the range 0..32767"),
    ("power_dhw", 400000, "outside the range 0..32767"),
    ("circ_pump_interval", -1, "outside the range 0..32767"),
    ("mode_01", 2, "not one of its codes"),
    ("mode_01", 3.5, "not one of its codes"),   # issue 9: was rounded to 4, "reduced"
    ("mode_01", 2.9999, "not one of its codes"),
    ("mode_01", "sink", "unknown label 'sink'"),
    ("t_flow_ch_adj", "on", "unknown label"),
    ("t_flow_ch_adj", None, "neither a number nor a label"),
    ("t_flow_ch_adj", [1], "neither a number nor a label"),
])
def test_bad_writes_refused_before_the_wire(name, value, message):
    with pytest.raises(ValueError, match=message):
        encode_write(COMMANDS[name], value)


@pytest.mark.parametrize("name, expected", [
    ("heat_slope", (0, 3)),                      # the table's limits
    ("t_frost_protect", (-16, 5)),
    ("mode_01", (1, 17)),                        # lowest and highest code
    ("insulation", (0, 3072)),
    ("aux_time", (0, 32767)),                    # no table limits: what the word carries
    ("power_dhw", (0, 327670)),                 # raw x 10: 32767 raw is 327670 W
])
def test_write_range(name, expected):
    assert write_range(COMMANDS[name]) == expected


@given(st.sampled_from([cmd for cmd in COMMANDS.values() if cmd.writable]), st.data())
def test_values_just_outside_the_write_range_are_refused(cmd, data):
    low, high = write_range(cmd)
    step = 1 / cmd.divisor
    outside = data.draw(st.sampled_from([low - step, high + step]))
    with pytest.raises(ValueError):
        encode_write(cmd, outside)


@pytest.mark.parametrize("name, places", [
    ("t_hs", 1), ("heat_slope", 2), ("water_pressure", 3), ("flow_rate", 0), ("mode_01", 0),
])
def test_decimals_follow_the_divisor(name, places):
    assert decimals(COMMANDS[name]) == places


# -- properties --------------------------------------------------------------------------------

WRITABLE = [cmd for cmd in COMMANDS.values() if cmd.writable]


def raw_bounds(cmd):
    """The raw range a write may carry, worked out here independently of the module."""
    low, high = (0, 0xFF) if cmd.type == "int" else (-0x7FFF if cmd.signed else 0, 0x7FFF)
    if cmd.min is not None:
        low = max(low, math.ceil(round(cmd.min * cmd.divisor, 6)))
    if cmd.max is not None:
        high = min(high, math.floor(round(cmd.max * cmd.divisor, 6)))
    return low, high


@st.composite
def writable_values(draw):
    cmd = draw(st.sampled_from(WRITABLE))
    if cmd.value_codes:
        return cmd, draw(st.sampled_from(sorted(cmd.value_codes)))
    raw = draw(st.integers(*raw_bounds(cmd)))
    if cmd.type == "float":
        return cmd, raw / cmd.divisor
    return cmd, round(raw / cmd.divisor)


@given(writable_values())
def test_write_then_read_back_gives_the_same_value(cmd_value):
    cmd, value = cmd_value
    frame = encode_write(cmd, value)
    assert len(frame) == 7 and frame[0] & 0x0F == MSG_WRITE and frame[2] == 0xFA
    assert parse_telegram(0x680, frame).index == cmd.index
    assert node_of_request_bytes(frame[0], frame[1]) == cmd.node
    decoded = decode_value(cmd, frame)
    if isinstance(value, str):
        assert label_for(cmd, decoded) == value
    else:
        assert decoded == value


@given(writable_values(), st.booleans())
def test_simulated_reply_matches_and_decodes(cmd_value, fa):
    cmd, value = cmd_value
    reply = encode_telegram(OWN, MSG_RESPONSE, cmd.index, encode_value(cmd, value),
                            fa=fa or cmd.index >= 0xFA)
    assert match_response(cmd, OWN, cmd.node, reply)
    assert not match_response(cmd, OWN, cmd.node, encode_read(cmd))   # our own request echoed


def valid_reply(cmd, word):
    return encode_telegram(OWN, MSG_RESPONSE, cmd.index, word, fa=cmd.form == "fa")


@given(st.sampled_from(list(COMMANDS.values())), st.integers(0, 0xFFFF), st.data())
def test_any_single_fault_in_a_reply_is_rejected(cmd, word, data):
    frame = bytearray(valid_reply(cmd, word))
    arbitration_id = cmd.node
    fault = data.draw(st.sampled_from(["sender", "type", "target", "index", "length"]))
    if fault == "sender":
        arbitration_id = data.draw(st.integers(0, 0x7FF).filter(lambda a: a != cmd.node))
    elif fault == "type":
        frame[0] = (frame[0] & 0xF0) | data.draw(st.integers(0, 15).filter(lambda t: t != 2))
    elif fault == "target":
        other = data.draw(st.integers(0, 0x7FF).filter(lambda a: a != OWN))
        frame[0], frame[1] = address_bytes(other, MSG_RESPONSE)
    elif fault == "index":
        other = data.draw(st.integers(0, 0xFFFF).filter(lambda i: i != cmd.index))
        frame[:] = encode_telegram(OWN, MSG_RESPONSE, other, word)
    else:
        frame = frame[:data.draw(st.integers(0, 6))] if data.draw(st.booleans()) else (
            frame + data.draw(st.binary(min_size=1, max_size=1)))
    assert not match_response(cmd, OWN, arbitration_id, bytes(frame))


@given(st.sampled_from(list(COMMANDS.values())), st.integers(0, 0x7FF), st.binary(max_size=8))
def test_garbage_frames_never_match_unless_they_are_our_reply(cmd, arbitration_id, data):
    if match_response(cmd, OWN, arbitration_id, data):
        # Only a frame that is, byte for byte, a well-formed reply to us may get through.
        assert (arbitration_id, len(data), data[0], data[1]) == (cmd.node, 7, 0xD2, 0x00)
        telegram = parse_telegram(arbitration_id, data)
        assert telegram.index == cmd.index and telegram.target == OWN
    # Whatever arrives, parsing either works or raises ValueError - never IndexError.
    try:
        parse_telegram(arbitration_id, data)
    except ValueError:
        pass


@given(st.sampled_from(list(COMMANDS.values())), st.binary(min_size=7, max_size=7),
       st.integers(0, 0x7FF))
def test_random_frames_of_the_wrong_kind_never_match(cmd, data, arbitration_id):
    not_a_response = 1 if data[0] & 0x0F == MSG_RESPONSE else data[0] & 0x0F
    wrong_type = bytes([(data[0] & 0xF0) | not_a_response]) + data[1:]
    assert not match_response(cmd, OWN, cmd.node, wrong_type)
    if arbitration_id != cmd.node:
        assert not match_response(cmd, OWN, arbitration_id, data)


@given(st.sampled_from(list(COMMANDS.values())), st.integers(0, 0xFFFF), st.integers(0, 6))
def test_truncated_replies_never_match_and_never_decode(cmd, word, keep):
    truncated = valid_reply(cmd, word)[:keep]
    assert not match_response(cmd, OWN, cmd.node, truncated)
    needed = 7 if cmd.form == "fa" else 5
    if keep < needed:
        with pytest.raises(ValueError):
            decode_value(cmd, truncated)


@given(st.sampled_from(list(COMMANDS.values())), st.integers(0, 0xFFFF))
def test_every_word_decodes_to_a_value_or_invalid(cmd, word):
    value = decode_word(cmd, word)
    assert value is None or isinstance(value, (int, float))
    if value is None:
        assert cmd.type != "int" and word in ({0x8000} if cmd.signed else {0x8000, 0xFFFF})
