"""Tests of event_stats: they cover summarise() and rate() only."""
from event_stats import rate, summarise


def test_summarise_counts_each_type():
    assert summarise([{"type": "state"}, {"type": "state"}, {"type": "call"}]) == {"state": 2, "call": 1}


def test_rate():
    assert rate(10, 4) == 2.5
