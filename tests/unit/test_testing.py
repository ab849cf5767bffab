"""The shared test harness's wait: "not yet" is waited out, a timeout says what it last saw."""

from __future__ import annotations

import itertools

import pytest
import tango

from plantds.server.testing import wait_for


def restarting_device() -> None:
    tango.Except.throw_exception("API_DeviceNotExported", "device restarting", "test")


def test_returns_the_first_value_that_satisfies_the_condition():
    values = iter([None, 1, 2, 3])
    assert wait_for(lambda: next(values), lambda v: v >= 2, interval=0) == 2


def test_none_device_errors_and_comparisons_with_none_are_not_yet():
    answers = itertools.chain([restarting_device, lambda: None, lambda: None < 1.0], itertools.repeat(lambda: 7))
    assert wait_for(lambda: next(answers)(), lambda v: v > 5, interval=0) == 7


def test_timeout_names_what_it_waited_for_with_the_last_value_and_exception():
    calls = itertools.count()

    def probe():
        if next(calls) % 2:
            restarting_device()
        return None

    with pytest.raises(AssertionError) as failed:
        wait_for(probe, timeout=0.2, what="the device back", interval=0.01)
    message = str(failed.value)
    assert "timed out after 0.2 s waiting for the device back" in message
    assert "last value None" in message
    assert "DevFailed: API_DeviceNotExported: device restarting" in message


def test_other_errors_are_failures_at_once():
    with pytest.raises(KeyError):
        wait_for(lambda: {}["missing"])
