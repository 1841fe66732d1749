"""Access logs to replay: the three forms read, a bad line refused with its file and line, and
the arrivals they make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.load.access_log import LogEntry, parse_access_log, read_access_log, replay_arrivals
from model.errors import ConfigError
from model.scenario import LaneRule, Scenario

CLF = '10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
COMBINED = (
    '10.0.0.1 - - [10/Oct/2000:13:55:36.000 -0700] "POST /orders HTTP/1.1" 202 - '
    '"http://example.com/" "Mozilla/5.0 (X11)"'
)
RULES = (LaneRule(path="^/orders", lane="async"), LaneRule(path="^/checkout", lane="sync"))


def test_common_and_combined_lines_are_read_with_their_times() -> None:
    combined = COMBINED.replace(":36.000 ", ":38 ")
    entries = parse_access_log(f"{CLF}\n\n{combined}\n", source="a.log")
    assert [(e.line, e.method, e.path) for e in entries] == [
        (1, "GET", "/apache_pb.gif"),
        (3, "POST", "/orders"),
    ]
    assert entries[1].timestamp - entries[0].timestamp == 2.0
    assert entries[0].timestamp == 971211336.0  # 2000-10-10 20:55:36 UTC


def test_json_lines_take_epoch_or_iso_timestamps() -> None:
    text = "\n".join(
        json.dumps(d)
        for d in (
            {"timestamp": 1700000000.25, "method": "POST", "path": "/orders"},
            {"timestamp": "2023-11-14T22:13:21.25+00:00", "method": "GET", "path": "/checkout"},
        )
    )
    entries = parse_access_log(text, source="log.jsonl")
    assert [e.timestamp for e in entries] == [1700000000.25, 1700000001.25]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"{CLF}\nnot a log line\n", "a.log:2: expected a Common or Combined Log Format line"),
        (
            CLF.replace("10/Oct/2000", "10/Foo/2000"),
            "a.log:1: expected a time like [10/Oct/2000:13:55:36 -0700]",
        ),
        (
            '{"timestamp": 1, "method": "GET", "path": "/a"}\n{"method": "GET", "path": "/b"}',
            'a.log:2: expected "timestamp"',
        ),
        ('{"timestamp": "2023-11-14T22:13:21", "method": "GET", "path": "/a"}', "ISO 8601 with its offset"),
        ('{"timestamp": 1, "method": "get", "path": "/a"}', 'a.log:1: expected "method" like GET'),
        ('{"timestamp": 1, "method": "GET", "path": "a"}', 'a.log:1: expected "path" starting with /'),
        ('{"timestamp": 1, "method": "GET", "path": "/a"}\n[1, 2]', "a.log:2: expected a JSON object"),
        ("\n\n", "a.log: no requests in it"),
    ],
)
def test_a_bad_line_is_refused_with_the_file_its_line_and_what_was_expected(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_access_log(text, source="a.log")
    assert words in str(raised.value)


def test_a_log_file_that_is_not_text_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"\xff\xfe binary")
    with pytest.raises(ConfigError, match=r"access.log: not UTF-8 text"):
        read_access_log(path)
    with pytest.raises(ConfigError, match=r"no such file"):
        read_access_log(tmp_path / "missing.log")


def _entry(line: int, t: float, path: str) -> LogEntry:
    return LogEntry(line=line, timestamp=t, method="POST", path=path)


def test_replay_keeps_the_log_s_gaps_at_its_speed_in_time_order_each_to_its_lane() -> None:
    log = [_entry(1, 103.0, "/checkout"), _entry(2, 100.0, "/orders"), _entry(3, 101.0, "/static/x.css"),
           _entry(4, 104.0, "/orders/9")]  # fmt: skip
    assert list(replay_arrivals(log, RULES, speed=1.0, duration_s=60)) == [
        (0.0, "async"), (3.0, "sync"), (4.0, "async")]  # fmt: skip
    assert list(replay_arrivals(log, RULES, speed=4.0, duration_s=60)) == [
        (0.0, "async"), (0.75, "sync"), (1.0, "async")]  # fmt: skip
    assert list(replay_arrivals(log, RULES, speed=1.0, duration_s=3.5)) == [(0.0, "async"), (3.0, "sync")]


def test_replay_segments_merge_into_the_whole_replay() -> None:
    log = [_entry(i, 100.0 + i * 0.1, "/orders" if i % 2 else "/checkout") for i in range(1, 50)]
    whole = list(replay_arrivals(log, RULES, speed=1.0, duration_s=60))
    parts = [
        list(replay_arrivals(log, RULES, speed=1.0, duration_s=60, segment=s, segments=3)) for s in range(3)
    ]
    assert sorted(a for part in parts for a in part) == whole


def _scenario(load: dict[str, object], **more: object) -> Scenario:
    stages = [{"name": "steady", "duration": "10s", "rate": 5}]
    return Scenario.model_validate({"name": "replayed", "load": {"stages": stages, **load}, **more})


def test_a_scenario_names_its_arrival_process_and_seed() -> None:
    assert _scenario({}).load.arrivals == "even" and _scenario({}).seed is None
    assert _scenario({"arrivals": "poisson"}, seed=7).seed == 7
    replay = {"file": "access.log", "speed": 2, "lanes": [{"path": "^/orders", "lane": "async"}]}
    assert _scenario({"arrivals": "replay", "replay": replay}).load.replay is not None


@pytest.mark.parametrize(
    ("load", "words"),
    [
        ({"arrivals": "replay"}, "arrivals: replay and a replay: section go together"),
        ({"arrivals": "poisson", "model": "closed"}, "spaces an open model's arrivals"),
        (
            {"arrivals": "replay", "replay": {"file": "a", "lanes": [{"path": "(", "lane": "sync"}]}},
            "not a regular expression",
        ),
        (
            {"arrivals": "replay", "replay": {"file": "a", "lanes": [{"path": "/", "lane": "fast"}]}},
            "'fast' is not a lane",
        ),
        (
            {
                "arrivals": "replay",
                "replay": {"file": "a", "speed": 0, "lanes": [{"path": "/", "lane": "sync"}]},
            },
            "greater than 0",
        ),
        ({"arrivals": "uniform"}, "'even', 'poisson' or 'replay'"),
    ],
)
def test_a_wrong_arrival_section_is_refused(load: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=None) as raised:
        _scenario(load)
    assert words in str(raised.value)
