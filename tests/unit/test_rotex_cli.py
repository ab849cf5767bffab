"""``plantds hpsu`` without a device: the table listing and names refused before any Tango call
(the reads and writes through a running device are in tests/device/test_rotex_device.py)."""

import argparse

import pytest

from plantds.devices.rotex import cli


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


@pytest.mark.parametrize("language, label", [
    ("EN", "Flow temperature (heat generator)"), ("de", "Vorlauftemperatur Wärmeerzeuger"),
    ("IT", "Mandata generatore di calore"),
])
def test_list_prints_the_table_in_the_chosen_language(capsys, language, label):
    assert run("--list", "-l", language) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 151
    t_hs = next(line for line in lines if line.split()[0] == "t_hs")
    assert t_hs.split()[1:3] == ["ro", "degC"] and t_hs.endswith(label)
    assert next(line for line in lines if line.split()[0] == "heat_slope").split()[1] == "rw"


def test_unknown_names_are_refused_before_reaching_any_device(capsys):
    assert run("-d", "no/such/device", "-c", "t_hs", "-c", "t_hot:3", "-c", "nonsense") == 2
    assert "t_hot, nonsense" in capsys.readouterr().err


def test_output_types_are_pyhpsus():
    with pytest.raises(SystemExit):
        run("-o", "XML")
