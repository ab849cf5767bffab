"""pyHPSU's value text and -c syntax, as its users' scripts parse them."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plantds.devices.rotex import pyhpsu
from plantds.devices.rotex.protocol import decode_word, encode_value
from plantds.devices.rotex.table import load_commands

COMMANDS = load_commands()


@pytest.mark.parametrize("name, value, expected", [
    ("t_dhw", 43.3, "43.30"),          # docs/rotex-hpsu-can.md §5.1: degC as "%.2f" text
    ("t_ext", -5.0, "-5.00"),
    ("pump", 65, 65),                  # percentages are numbers in pyHPSU's JSON
    ("water_pressure", 1.85, "1.85"),  # everything else: str()
    ("heat_slope", 0.5, "0.5"),
    ("mode_01", 3, "3"),               # codes stay codes, as pyHPSU prints them
    ("flow_rate", 1392, "1392"),
])
def test_resp_like_pyhpsu(name, value, expected):
    cmd = COMMANDS[name]
    assert pyhpsu.resp(cmd, value) == expected
    assert pyhpsu.resp_from_text(cmd, pyhpsu.text(cmd, value)) == expected


@pytest.mark.parametrize("job, expected", [
    ("t_hs", ("t_hs", None)),
    ("heat_slope:0.29", ("heat_slope", "0.29")),
    ("mode_01:heat", ("mode_01", "heat")),
    ("HEAT_SLOPE: 0.3 ", ("heat_slope", "0.3")),
    ("ht_nt_func:compressor off", ("ht_nt_func", "compressor off")),
])
def test_split_job(job, expected):
    assert pyhpsu.split_job(job) == expected


@pytest.mark.parametrize("name, text, expected", [
    ("mode_01", "heat", "heat"),
    ("mode_01", "3", 3.0),
    ("quiet_mode", "only at night", "only at night"),
    ("heat_slope", "0.29", 0.29),
    ("t_frost_protect", "-3.5", -3.5),
])
def test_parse_value(name, text, expected):
    assert pyhpsu.parse_value(COMMANDS[name], text) == expected


@pytest.mark.parametrize("name, text, message", [
    ("mode_01", "warm", "neither a number nor one of its labels .*standby, heat"),
    ("heat_slope", "steep", "not a number"),
    ("heat_slope", "", "not a number"),
    ("mode_01", "heat\0", "NUL"),
    ("heat_slope", "0.5\0", "NUL"),
])
def test_parse_value_refuses_what_it_cannot_read(name, text, message):
    with pytest.raises(ValueError, match=message):
        pyhpsu.parse_value(COMMANDS[name], text)


@given(st.sampled_from([c for c in COMMANDS.values() if c.type == "float" and not c.value_codes]),
       st.integers(0, 0x7FFF))
def test_text_reads_back_as_the_decoded_value(cmd, word):
    """What ReadValue prints parses back to the value (to the 2 places pyHPSU shows degC in)."""
    value = decode_word(cmd, word)
    if value is None:
        return
    parsed = float(pyhpsu.text(cmd, value))
    assert math.isclose(parsed, value, abs_tol=0.005 if cmd.unit == "degC" else 1e-9)
    if cmd.writable and cmd.min is not None and cmd.min <= value <= cmd.max:
        assert encode_value(cmd, pyhpsu.parse_value(cmd, pyhpsu.text(cmd, value))) == word


def test_pyhpsus_own_label_sink_is_mode_01_reduced():
    from plantds.devices.rotex import pyhpsu
    from plantds.devices.rotex.table import load_commands

    mode = load_commands()["mode_01"]
    assert pyhpsu.parse_value(mode, "sink") == "reduced"
    assert mode.value_codes[pyhpsu.parse_value(mode, " sink ")] == 4


def test_ehs_is_kw_from_w_and_v_var_keeps_its_tenth():
    from plantds.devices.rotex import protocol
    from plantds.devices.rotex.table import load_commands

    table = load_commands()
    assert protocol.decode_word(table["ehs"], 3250) == 3.25  # 3250 W
    assert table["ehs"].unit == "kW"
    assert protocol.decode_word(table["v_var"], 1237) == 123.7  # not rounded to 124
