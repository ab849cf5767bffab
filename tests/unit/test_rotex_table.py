"""Integrity of the heat pump's command table (devices/rotex/commands.json)."""

import copy
import json
from importlib import resources

import pytest

from plantds.devices.rotex.protocol import encode_write
from plantds.devices.rotex.table import (
    DEFAULT_MONITORING, LANGUAGES, TYPES, UNITS, Command, TableError, load_commands,
    parse_commands,
)

COMMANDS = load_commands()
BIT_FIELD_VIEWS = {"outside_conf", "storage_conf", "pres_conf"}
TESTING_ONLY = {"comp_active", "pump_active", "temperature_spread_pwm", "offset_t_flow"}
# Entries whose pyHPSU request carries a wrong index, kept in `request` for traceability.
INDEX_FIXES = {"t_screed_day7": 0x0BBF, "t_screed_day22": 0x0BCE, "aux_fct": 0x0671}


def raw_document():
    text = resources.files("plantds.devices.rotex").joinpath("commands.json").read_text("utf-8")
    return json.loads(text)


def test_all_pyhpsu_commands_plus_the_four_testing_ones():
    assert len(COMMANDS) == 151
    assert TESTING_ONLY <= set(COMMANDS)
    assert all(isinstance(cmd, Command) for cmd in COMMANDS.values())


def test_load_returns_a_fresh_mapping():
    first = load_commands()
    first.pop("t_hs")
    assert "t_hs" in load_commands()


def test_only_the_bit_field_word_is_shared():
    by_address = {}
    for cmd in COMMANDS.values():
        by_address.setdefault((cmd.node, cmd.index), set()).add(cmd.name)
    shared = {address: names for address, names in by_address.items() if len(names) > 1}
    assert shared == {(0x180, 0x0961): BIT_FIELD_VIEWS}
    masks = [COMMANDS[name].mask for name in BIT_FIELD_VIEWS]
    assert all(masks) and masks[0] & masks[1] == masks[0] & masks[2] == masks[1] & masks[2] == 0
    assert [cmd.name for cmd in COMMANDS.values() if cmd.mask is not None] == [
        "outside_conf", "storage_conf", "pres_conf"]


def test_index_fixes_applied():
    for name, index in INDEX_FIXES.items():
        assert COMMANDS[name].index == index, name
    assert COMMANDS["t_screed_day7"].index != COMMANDS["t_screed_day5"].index
    assert COMMANDS["t_screed_day22"].index != COMMANDS["t_screed_day21"].index
    assert COMMANDS["aux_fct"].index != COMMANDS["quiet_mode"].index == 0x0696
    # The 28 screed days are consecutive indexes once both typos are gone.
    assert [COMMANDS[f"t_screed_day{n}"].index for n in range(1, 29)] == list(
        range(0x0BB9, 0x0BB9 + 28))


def test_value_code_and_2024_fixes_applied():
    assert COMMANDS["status_pump"].value_codes == {"off": 0, "on": 1}
    assert COMMANDS["mode_01"].value_codes["heat"] == 3
    assert COMMANDS["mode_01"].value_codes["reduced"] == 4
    assert COMMANDS["error"].type == "longint"
    assert (COMMANDS["t_frost_protect"].type, COMMANDS["t_frost_protect"].divisor) == ("float", 10)
    water = COMMANDS["water_pressure"]
    assert (water.node, water.index, water.form, water.divisor) == (0x180, 0x1C, "short", 1000)


def test_same_index_on_two_nodes_kept_apart():
    cooling, cool = COMMANDS["t_flow_cooling"], COMMANDS["t_flow_cool"]
    assert cooling.index == cool.index == 0x03DD
    assert (cooling.node, cool.node) == (0x180, 0x300)


def test_t_room_asks_the_room_unit_node():
    assert (COMMANDS["t_room"].node, COMMANDS["t_room"].index) == (0x400, 0x0011)
    assert "0x180" in COMMANDS["t_room"].note  # the testing-branch alternative is documented


def test_testing_only_commands():
    expected = {"comp_active": (0x500, 0x61, "short"), "pump_active": (0x500, 0xFDAC, "fa"),
                "temperature_spread_pwm": (0x500, 0x06DB, "fa"),
                "offset_t_flow": (0x500, 0x06E2, "fa")}
    for name, address in expected.items():
        cmd = COMMANDS[name]
        assert (cmd.node, cmd.index, cmd.form) == address


def test_request_bytes_agree_with_node_index_and_form():
    for cmd in COMMANDS.values():
        b = [int(x, 16) for x in cmd.request.split()]
        assert b[0] & 0x0F == 1, cmd.name   # pyHPSU requests are all reads
        assert ((b[0] >> 4) << 7 | b[1]) == cmd.node, cmd.name
        form, index = ("fa", b[3] << 8 | b[4]) if b[2] == 0xFA else ("short", b[2])
        assert form == cmd.form, cmd.name
        if cmd.name in INDEX_FIXES:
            assert index != cmd.index and "Index fixed" in cmd.note
        else:
            assert index == cmd.index, cmd.name


def test_fields_are_well_formed():
    for cmd in COMMANDS.values():
        assert cmd.type in TYPES and cmd.unit in UNITS and cmd.refresh in ("fast", "slow")
        assert cmd.form == "fa" or cmd.index < 0xFA
        assert all(type(code) is int for code in cmd.value_codes.values()), cmd.name
        assert cmd.unit != "degC" or cmd.signed, f"{cmd.name}: temperatures are signed"


def test_labels_and_descriptions_in_every_language():
    for cmd in COMMANDS.values():
        for texts in (cmd.labels, cmd.descriptions):
            assert set(texts) == set(LANGUAGES), cmd.name
            assert all(text.strip() for text in texts.values()), cmd.name
    english = [cmd.labels["en"] for cmd in COMMANDS.values()]
    assert len(set(english)) == len(english), "operators tell attributes apart by label"


def sample_write_value(cmd):
    if cmd.value_codes:
        return next(iter(cmd.value_codes))
    if cmd.min is not None:
        return cmd.min
    return 0 if cmd.max is None or cmd.max >= 0 else cmd.max


def test_every_writable_command_can_be_encoded():
    writable = [cmd for cmd in COMMANDS.values() if cmd.writable]
    assert len(writable) == 100
    for cmd in writable:
        assert len(encode_write(cmd, sample_write_value(cmd))) == 7, cmd.name


def test_risky_pyhpsu_writables_are_read_only():
    # Installer configuration and the shared bit-field word (a write would clobber the others).
    for name in BIT_FIELD_VIEWS | {"outdoor_type", "indoor_unit"}:
        assert not COMMANDS[name].writable, name


def test_default_monitoring_names_exist():
    assert 15 <= len(DEFAULT_MONITORING) <= 25
    assert len(set(DEFAULT_MONITORING)) == len(DEFAULT_MONITORING)
    assert set(DEFAULT_MONITORING) <= set(COMMANDS)


# -- the loader refuses tables that could put a wrong frame on the bus ------------------------

def table_with(change):
    doc = copy.deepcopy(raw_document())
    change({entry["name"]: entry for entry in doc["commands"]}, doc)
    return doc


def test_unchanged_document_parses():
    assert parse_commands(raw_document()).keys() == COMMANDS.keys()


@pytest.mark.parametrize("change, message", [
    (lambda c, d: c["t_hs"].update(index=c["t_return"]["index"], node=0x180, form="short"),
     "share node 0x180 index 0x0016"),
    (lambda c, d: c["pres_conf"].update(mask=0x0002), "overlapping masks"),
    (lambda c, d: c["t_dhw"].update(index=0xFA), "below 0xFA in short form"),
    (lambda c, d: c["t_hs"].update(type="double"), "'type' must be one of"),
    (lambda c, d: c["t_hs"].update(divisor="10"), "'divisor' must be a positive number"),
    (lambda c, d: c["mode_01"]["value_codes"].update(heat="3"), "'value_codes'"),
    (lambda c, d: c["status_pump"]["value_codes"].update(on=True), "'value_codes'"),
    (lambda c, d: c["t_hs"]["labels"].pop("it"), "'labels' must give a non-empty text"),
    (lambda c, d: c["t_hs"]["descriptions"].update(de=" "), "'descriptions'"),
    (lambda c, d: c["t_hs"].update(unit="deg"), "'unit' must be one of"),
    (lambda c, d: c["t_hs"].update(node=0x10A), "other than the display"),
    (lambda c, d: c["t_hs"].pop("refresh"), "missing field(s) ['refresh']"),
    (lambda c, d: c["t_hs"].update(scale=1), "unknown field(s) ['scale']"),
    (lambda c, d: c["heat_slope"].update(min=4), "must not exceed max"),
    (lambda c, d: c["storage_conf"].update(mask=0x0005), "contiguous"),
    (lambda c, d: d["commands"].append(copy.deepcopy(c["t_hs"])), "defined twice"),
])
def test_bad_tables_are_refused_with_the_field_named(change, message):
    with pytest.raises(TableError) as info:
        parse_commands(table_with(change))
    assert message in str(info.value)
