"""The CLI's own logic, without a stack: how settings are put together."""

from __future__ import annotations

from pathlib import Path

from harness.config.scenarios import load_scenario
from harness.config.settings import load_settings


def test_a_settings_file_overlays_a_scenario_stack_section_by_section(tmp_path: Path) -> None:
    """``up --scenario retry-storm --config f.yaml``: the file changes what it names and
    keeps the rest of the scenario's settings (its 96 threads)."""
    config = tmp_path / "s.yaml"
    config.write_text("sync: {timeout_s: 3}\n")
    scenario, _ = load_scenario("retry-storm")
    settings = load_settings(
        config, broker=None, base_port=None, toxiproxy_port=None, time_scale=None, base=scenario.stack
    )
    assert settings.sync.threads == 96 and settings.sync.timeout_s == 3
    assert settings.chain["email"].concurrency == 8
    assert load_settings(None, broker="kafka", base_port=None, toxiproxy_port=None, time_scale=None,
                         base=scenario.stack).broker == "kafka"  # fmt: skip
