"""A real 2 x 2 sweep against the real stack, time-scaled, stopped after its first trial and
resumed: only the remaining trials run, and the map has every cell of both lanes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.cli.main import main
from harness.config.scenarios import SCENARIO_DIR
from model.errors import ExitCode

PORT = 26000  # its own ports: test_claims runs black-friday on 32200
SCALE = 0.33
OUTCOMES = {"stable", "recovered", "metastable", "undetermined"}


def _storm_2x2(tmp_path: Path) -> Path:
    """retry-storm with a shorter baseline, trigger and window, swept over 2 loads x 2 latencies."""
    data: dict[str, Any] = yaml.safe_load((SCENARIO_DIR / "retry-storm.yaml").read_text())
    data["name"] = "storm-2x2"
    data["load"]["stages"] = [
        {"name": "baseline", "duration": "30s", "rate": 3},
        {"name": "steady", "duration": "60s", "rate": 3},
    ]
    data["chaos"][0].update({"at": "30s", "for": "10s"})
    data["metastability"] = {"window": "30s", "fraction": 0.8}
    data["expectations"] = ["no lost orders"]
    data["sweep"] = {
        "step": "email-slow", "loads": [3, 6], "attribute": "latency", "values": [500, 2000],
        "trials": 1, "observe": "30s", "settle": "30s", "time_scale": SCALE,
    }  # fmt: skip
    path = tmp_path / "storm-2x2.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _trial_records(out: Path) -> dict[str, dict[str, Any]]:
    return {
        str(p.parent.relative_to(out)): json.loads(p.read_text())
        for p in sorted(out.glob("trials/*/*/trial.json"))
    }


def test_a_2x2_sweep_stops_resumes_and_maps_every_cell(tmp_path: Path) -> None:
    scenario, out, state = _storm_2x2(tmp_path), tmp_path / "sweep", tmp_path / "state"
    cli = ["--state-dir", str(state)]
    up = ["up", "--scenario", str(scenario), "--time-scale", str(SCALE), "--base-port", str(PORT),
          "--toxiproxy-port", str(PORT + 474)]  # fmt: skip
    try:
        # The sweep uses the running stack's ports (its settings are the trials' otherwise).
        assert main([*cli, *up]) == ExitCode.OK
        first = main([*cli, "sweep", str(scenario), "--out", str(out), "--max-trials", "1"])
        assert first == ExitCode.EXPECTATION_FAILED  # three cells not run: the map is incomplete
        after_first = _trial_records(out)
        assert len(after_first) == 1
        data = json.loads((out / "sweep.json").read_text())
        assert data["complete"] is False and "trial bound" in data["stopped"]
        assert sum(e["outcome"] == "not run" for e in data["lanes"]["sync"]) == 3
        # a trial killed mid-way leaves a directory without trial.json: resuming removes it
        partial = out / "trials" / "load18.1818-v660" / "1"
        partial.mkdir(parents=True)
        (partial / "requests.jsonl").write_text("")

        second = main([*cli, "sweep", str(scenario), "--out", str(out)])
    finally:
        main([*cli, "down"])
    assert second in (ExitCode.OK, ExitCode.EXPECTATION_FAILED)
    records = _trial_records(out)
    assert len(records) == 4
    (kept,) = after_first
    assert records[kept] == after_first[kept]  # the finished trial was not run again
    assert all(r["status"] in ("counted", "dirty") for r in records.values())

    data = json.loads((out / "sweep.json").read_text())
    assert data["complete"] is True and data["stopped"] is None
    assert data["grid"]["loads"] == [3 / SCALE, 6 / SCALE] and data["grid"]["values"] == [165.0, 660.0]
    for lane in ("sync", "async"):
        cells = data["lanes"][lane]
        assert len(cells) == 4
        assert {(e["load"], e["trigger"]["latency"]) for e in cells} == {
            (load, latency) for load in (3 / SCALE, 6 / SCALE) for latency in (165.0, 660.0)
        }
        for e in cells:
            assert e["outcome"] in OUTCOMES, e
            assert e["trials"] == 1 and sum(e["outcomes"].values()) == 1
            assert e["outcome"] != "undetermined" or e["reasons"]
            assert e["lost_orders"] == 0
    for run in records:
        summary = json.loads((out / run / "summary.json").read_text())
        assert set(summary["metastability"]) == {"sync", "async"}
        assert summary["time_scale"] == SCALE and len(summary["chaos"]) == 1
        assert (out / run / "report.html").is_file()
    assert (out / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert "trials/load9.09091-v165/1/report.html" in (out / "sweep.html").read_text()
    # judge re-decides every trial from its files, with no stack, and writes the same map
    assert main([*cli, "judge", str(out)]) == second
    assert json.loads((out / "sweep.json").read_text())["lanes"] == data["lanes"]
