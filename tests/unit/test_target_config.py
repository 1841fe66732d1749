"""A target process is told its whole configuration, resolved from the topology, and uses it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.binaries import PROJECT_ROOT
from model.settings import DependencySettings, StackSettings
from model.target_config import TARGET_CONFIG_ENV, TargetConfig, resolve_target_config, resolve_target_configs
from model.topology import Topology

TOPOLOGY = Topology.from_settings(StackSettings())


def test_every_target_process_calls_its_dependencies_through_their_proxies() -> None:
    configs = resolve_target_configs(TOPOLOGY, data_dir=Path("/data")).root
    targets = [spec for spec in TOPOLOGY.processes if spec.kind in ("order", "downstream", "worker")]
    assert sorted(configs) == sorted(spec.name for spec in targets)
    for spec in targets:
        config = configs[spec.name]
        assert config.name == spec.name
        assert (config.host, config.port) == (spec.endpoint.host, spec.endpoint.port)
        for dependency, address in config.dependency_addresses.items():
            assert spec.lane is not None
            assert address == TOPOLOGY.proxy(spec.lane, dependency).listen
    assert set(configs["order-sync"].dependency_addresses) == set(TOPOLOGY.settings.chain)
    assert set(configs["order-async"].dependency_addresses) == {"payment"}
    assert configs["worker-email"].dependency_addresses == {"email": TOPOLOGY.proxy("async", "email").listen}
    assert configs["downstream-sync-email"].dependency_addresses == {}
    broker_proxy = TOPOLOGY.proxy("async", "broker").listen
    for name in ("order-async", "worker-email"):
        assert broker_proxy in (configs[name].broker_url or "")
    assert configs["order-sync"].broker_url is None


def test_a_configuration_missing_what_its_role_needs_is_refused() -> None:
    good = resolve_target_config(TOPOLOGY, TOPOLOGY.process("order-async"), data_dir=Path("/data"))
    data = json.loads(good.model_dump_json())
    with pytest.raises(ValidationError, match="broker_url"):
        TargetConfig.model_validate({**data, "broker_url": None})
    with pytest.raises(ValidationError, match="no address for \\['payment'\\]"):
        TargetConfig.model_validate({**data, "dependency_addresses": {}})
    with pytest.raises(ValidationError, match="needs its dependency"):
        TargetConfig.model_validate({**data, "role": "worker"})


def _run_targets(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "targets", *args],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_bad_configuration_exits_2_with_a_message_not_a_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if k != TARGET_CONFIG_ENV}
    for args in ((), ("--config-json", '{"role": "order"}')):
        proc = subprocess.run(
            [sys.executable, "-m", "targets", *args],
            env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
    assert "bad configuration" in proc.stderr and "lane" in proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_target_started_with_only_its_configuration_in_the_environment_serves_there(tmp_path: Path) -> None:
    chain = {**TOPOLOGY.settings.chain, "email": DependencySettings(latency_ms=800, concurrency=7)}
    topology = Topology.from_settings(StackSettings(chain=chain))
    spec = topology.process("downstream-sync-email")
    config = resolve_target_config(topology, spec, data_dir=tmp_path).model_copy(
        update={"port": _free_port()}
    )
    proc = _run_targets({TARGET_CONFIG_ENV: config.model_dump_json()})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{config.port}/metrics", timeout=2) as answer:
                    metrics = answer.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "the target never answered"
                time.sleep(0.1)
        # Its capacity and its ledger's place come from the configuration it was given.
        assert 'doorbuster_downstream_capacity{dependency="email",lane="sync"} 7.0' in metrics
        assert (tmp_path / "downstream-sync-email.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
