"""`make bench` says when its figures come from a busy machine."""

from __future__ import annotations

from benchmarks.__main__ import load_warning


def test_a_busy_machine_is_warned_about_and_a_quiet_one_is_not() -> None:
    """Figures taken under load are slow and noisy: the runner says so, with the load."""
    assert load_warning(0.3, 2) is None
    assert load_warning(1.0, 2) is None
    warning = load_warning(3.5, 2)
    assert warning is not None and "3.50 on 2 cores" in warning
    # The bound is per core: the same load is quiet on a bigger machine.
    assert load_warning(3.5, 16) is None
