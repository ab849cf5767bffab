"""AtSetpoint's hold-time rule (pure): within tolerance for the hold time, restarted by a new
set point or an excursion."""

from plantds.devices.coleparmer.device import Settling


def test_held_only_after_the_hold_time_within_tolerance():
    s = Settling().update(20.3, 20.0, stamp=100.0, tolerance=0.5)
    assert not s.held(100.0, hold_s=10)
    s = s.update(19.8, 20.0, stamp=109.0, tolerance=0.5)
    assert not s.held(109.0, hold_s=10)
    s = s.update(20.0, 20.0, stamp=110.0, tolerance=0.5)
    assert s.held(110.0, hold_s=10)


def test_an_excursion_restarts_the_hold():
    s = Settling().update(20.0, 20.0, 100.0, 0.5).update(20.6, 20.0, 105.0, 0.5)
    assert s.since is None and not s.held(200.0, 10)
    s = s.update(20.1, 20.0, 106.0, 0.5)
    assert s.since == 106.0


def test_a_new_set_point_restarts_the_hold_even_within_tolerance():
    s = Settling().update(20.0, 20.0, 100.0, 0.5).update(20.0, 20.0, 120.0, 0.5)
    assert s.held(120.0, 10)
    s = s.update(20.0, 20.2, 121.0, 0.5)
    assert s.since == 121.0 and not s.held(121.0, 10)


def test_zero_hold_is_at_set_point_at_once():
    assert Settling().update(20.0, 20.0, 100.0, 0.0).held(100.0, 0.0)
