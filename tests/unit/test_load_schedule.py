"""The arrival schedule's sending loop with a fake clock and flag: no Locust, no gevent."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from harness.load.arrivals import arrival_times
from harness.load.schedule import ArrivalSchedule, schedule_start
from model.scenario import LoadSpec, Stage

LOAD = LoadSpec(
    lanes=("sync", "async"),
    stages=(Stage(name="a", duration=1.0, rate=4.0), Stage(name="b", duration=1.0, rate=2.0)),
)


@dataclass
class FakeClock:
    now: float

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def _sent(segment: int, segments: int, clock: FakeClock) -> list[tuple[str, float, float]]:
    schedule = ArrivalSchedule(threading.Event())
    schedule.segment, schedule.segments = segment, segments
    schedule.begin(1000.0)
    sent: list[tuple[str, float, float]] = []
    schedule.send(
        LOAD, arrive=lambda lane, at: sent.append((lane, at, clock.now)), sleep=clock.sleep, clock=clock
    )
    return sent


def test_each_arrival_time_sends_one_arrival_per_lane_on_time() -> None:
    sent = _sent(0, 1, FakeClock(999.0))
    offsets = list(arrival_times([(1.0, 4.0), (1.0, 2.0)]))
    assert [at for lane, at, _ in sent if lane == "sync"] == [1000.0 + t for t in offsets]
    assert [lane for lane, _, _ in sent[:2]] == ["sync", "async"]
    assert all(when == at for _, at, when in sent)  # slept until each one, never early


def test_a_late_generator_sends_what_is_due_at_once_without_sleeping() -> None:
    sent = _sent(0, 1, FakeClock(1001.2))
    assert [when for _, at, when in sent if at <= 1001.2] == [1001.2] * 10


def test_two_segments_interleave_into_the_one_schedule() -> None:
    merged = sorted(at for seg in (0, 1) for lane, at, _ in _sent(seg, 2, FakeClock(999.0)) if lane == "sync")
    assert merged == [at for lane, at, _ in _sent(0, 1, FakeClock(999.0)) if lane == "sync"]


def test_no_start_within_the_timeout_is_an_error() -> None:
    schedule = ArrivalSchedule(threading.Event())
    with pytest.raises(RuntimeError, match=r"no arrival schedule start from the master within 0\.01s"):
        schedule.wait_for_start(0.01)


def test_the_master_picks_the_start_when_the_last_worker_is_ready() -> None:
    started = threading.Event()
    schedule = ArrivalSchedule(started)
    assert not schedule.worker_ready("w1", 2)
    assert not schedule.worker_ready("w1", 2)  # the same worker twice is still one
    assert schedule.worker_ready("w2", 2)
    schedule.begin(5.0)
    assert not schedule.worker_ready("w3", 2)  # started already: no second start
    schedule.reset()
    assert schedule.start is None and not started.is_set() and not schedule.ready


def test_the_start_is_on_a_tenth_of_a_millisecond_or_the_one_set_from_outside() -> None:
    assert schedule_start(0.0, start_at=None, now=12.34567) == 12.3456
    assert schedule_start(5.0, start_at=20.00009, now=12.0) == 20.0
