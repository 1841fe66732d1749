"""The generator's settings, read once from the environment, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.load.settings import GeneratorRefused, parse_start_at, parse_targets, read_settings
from harness.load.shard_transfer import CHUNK_BYTES

SCENARIO = """\
name: no-stack
load: {lanes: [sync], stages: [{name: baseline, duration: 3s, rate: 5}]}
expectations: ["no lost orders"]
"""


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "s.yaml").write_text(SCENARIO)
    return {
        "DOORBUSTER_SCENARIO": str(tmp_path / "s.yaml"),
        "DOORBUSTER_STATE_DIR": str(tmp_path / "no-stack"),
        "DOORBUSTER_TARGETS": json.dumps({"sync": "http://127.0.0.1:9"}),
        "DOORBUSTER_RUN_DIR": str(tmp_path / "run"),
        **extra,
    }


def _never_warn(message: str) -> None:
    raise AssertionError(message)


def test_targets_are_loopback_unless_a_host_is_allowed() -> None:
    assert parse_targets('{"sync": "http://localhost"}', allowed_hosts="") == {"sync": ("localhost", 80)}
    with pytest.raises(GeneratorRefused, match=r"refusing to send load to shop.example \(sync\)"):
        parse_targets('{"sync": "http://shop.example:80"}', allowed_hosts="")
    assert parse_targets('{"sync": "http://shop.example:81"}', allowed_hosts=" a, shop.example") == {
        "sync": ("shop.example", 81)
    }
    with pytest.raises(GeneratorRefused, match=r"expected \{lane: url\} JSON"):
        parse_targets("[1]", allowed_hosts="")


def test_a_start_set_from_outside_is_within_the_hour() -> None:
    assert parse_start_at("", now=1000.0) is None
    assert parse_start_at("1100.5", now=1000.0) == 1100.5
    for bad in ("soon", "nan", "10000"):
        with pytest.raises(GeneratorRefused, match="expected a Unix time within the hour"):
            parse_start_at(bad, now=1000.0)


def test_settings_without_a_stack_send_to_the_targets(tmp_path: Path) -> None:
    settings = read_settings(_environ(tmp_path, DOORBUSTER_WORKERS="3"), ["locust"], warn=_never_warn)
    assert settings.topology is None and settings.targets == {"sync": ("127.0.0.1", 9)}
    assert (settings.workers, settings.is_worker, settings.start_at) == (3, False, None)
    assert settings.requests["sync"].path.startswith("/")
    assert settings.run_dir.is_dir() and settings.load.lanes == ("sync",)


def test_a_run_directory_with_a_request_log_is_refused_but_by_a_worker(tmp_path: Path) -> None:
    environ = _environ(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "requests.jsonl").write_text("")
    with pytest.raises(GeneratorRefused, match=r"requests\.jsonl already exists"):
        read_settings(environ, ["locust"], warn=_never_warn)
    assert read_settings(environ, ["locust", "--worker"], warn=_never_warn).is_worker


def test_only_a_worker_told_so_has_a_run_directory_of_its_own(tmp_path: Path) -> None:
    worker = ["locust", "--worker"]
    assert not read_settings(_environ(tmp_path), worker, warn=_never_warn).own_run_dir
    assert not read_settings(
        _environ(tmp_path, DOORBUSTER_OWN_RUN_DIR="0"), worker, warn=_never_warn
    ).own_run_dir
    assert read_settings(_environ(tmp_path, DOORBUSTER_OWN_RUN_DIR="1"), worker, warn=_never_warn).own_run_dir
    # A master or a single process writes the run's own log: it has nothing to send.
    master = read_settings(_environ(tmp_path, DOORBUSTER_OWN_RUN_DIR="1"), ["locust"], warn=_never_warn)
    assert not master.own_run_dir


def test_the_shard_chunk_size_is_a_positive_whole_number(tmp_path: Path) -> None:
    assert read_settings(_environ(tmp_path), ["locust"], warn=_never_warn).shard_chunk_bytes == CHUNK_BYTES
    small = _environ(tmp_path, DOORBUSTER_SHARD_CHUNK_BYTES="512")
    assert read_settings(small, ["locust"], warn=_never_warn).shard_chunk_bytes == 512
    for bad in ("0", "-1", "1.5", "x"):
        with pytest.raises(GeneratorRefused, match=f"DOORBUSTER_SHARD_CHUNK_BYTES='{bad}'"):
            read_settings(_environ(tmp_path, DOORBUSTER_SHARD_CHUNK_BYTES=bad), ["locust"], warn=_never_warn)


def test_no_stack_and_no_targets_names_the_problem(tmp_path: Path) -> None:
    environ = _environ(tmp_path)
    del environ["DOORBUSTER_TARGETS"]
    with pytest.raises(GeneratorRefused, match="StackNotRunning"):
        read_settings(environ, ["locust"], warn=_never_warn)
    environ["DOORBUSTER_TARGETS"] = json.dumps({"async": "http://127.0.0.1:9"})
    with pytest.raises(GeneratorRefused, match=r"no URL for lane\(s\) \['sync'\]"):
        read_settings(environ, ["locust"], warn=_never_warn)
