"""A run's verdicts as JUnit XML, the format CI servers already read (``--junit FILE``).

One ``<testcase>`` per expectation: its ``classname`` the scenario, its ``name`` the
expectation as written.  A ``fail`` verdict carries a ``<failure>`` whose message is the
observed figure; an ``undetermined`` one is ``<skipped>`` with its reason (it was not decided,
so it neither passed nor failed); every case's ``<system-out>`` holds the evidence: the
observed figure, the 95% interval and the samples it rests on, the reason.  An interrupted
run adds one case with an ``<error>``: what was not measured decides nothing.

The shape is the one Jenkins, GitLab and the GitHub test reporters accept:
``testsuites > testsuite > testcase > (skipped | error | failure)?, system-out``.

    >>> xml = junit_xml(Summary.from_json({"scenario": "s", "time_scale": 1, "duration_s": 60,
    ...     "lanes": {}, "passed": False, "t0": 0, "verdicts": [
    ...     {"expectation": "p99 < 1s", "outcome": "fail", "observed": "1.2s"}]}))
    >>> '<failure message="1.2s" type="fail">' in xml
    True
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.records.summary import Summary
from harness.records.verdicts import Verdict
from harness.report.shootout import ShootoutSummary
from model.errors import ConfigError

__all__ = ["check_junit_path", "junit_xml", "write_junit"]

# XML 1.0 has no way to write these characters, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _bound(x: Any) -> str:
    """An interval's side as written in ``summary.json``: None is a side the data do not bound."""
    return "unbounded" if x is None else f"{x:g}" if isinstance(x, int | float) else str(x)


def _estimate_lines(label: str, estimate: Any) -> list[str]:
    if not isinstance(estimate, Mapping):
        return []
    interval = f"[{_bound(estimate.get('low'))}, {_bound(estimate.get('high'))}]"
    return [
        f"{label}: {_bound(estimate.get('value'))}",
        f"{label} 95% interval: {interval}",
        f"{label} n: {estimate.get('n')}",
    ]


def evidence_text(verdict: Verdict) -> str:
    """What the verdict rests on, one fact a line: observed, interval, n, reason, the rest."""
    evidence = verdict.evidence
    lines = [f"outcome: {verdict.outcome}", f"observed: {verdict.observed}"]
    lines += _estimate_lines("estimate", evidence.get("estimate"))
    baseline = evidence.get("baseline")
    if isinstance(baseline, Mapping):
        lines += _estimate_lines("baseline", baseline.get("estimate"))
    if verdict.reason:
        lines.append(f"reason: {verdict.reason}")
    if evidence:
        lines.append("evidence: " + json.dumps(evidence, sort_keys=True, default=str))
    return "\n".join(lines) + "\n"


def _seconds(summary: Summary | ShootoutSummary) -> str:
    duration = summary.duration_s if isinstance(summary, Summary) else None  # a shootout has none
    ok = isinstance(duration, int | float) and math.isfinite(duration) and duration >= 0
    return f"{duration:.3f}" if ok else "0"


def junit_xml(summary: Summary | ShootoutSummary) -> str:
    """The summary's verdicts (``summary.json``'s body) as a JUnit XML document."""
    scenario = _text(summary.scenario or "doorbuster")
    verdicts = summary.verdicts
    outcomes = [v.outcome for v in verdicts]
    interrupted = summary.interrupted
    counts = {
        "tests": str(len(verdicts) + interrupted),
        "failures": str(outcomes.count("fail")),
        "errors": str(int(interrupted)),
        "skipped": str(outcomes.count("undetermined")),
        "time": _seconds(summary),
    }
    suites = ET.Element("testsuites", {"name": "doorbuster", **counts})
    suite = ET.SubElement(suites, "testsuite", {"name": scenario, **counts})
    for verdict, outcome in zip(verdicts, outcomes, strict=True):
        name = _text(verdict.expectation)
        case = ET.SubElement(suite, "testcase", {"classname": scenario, "name": name, "time": "0"})
        observed = _text(verdict.observed)
        if outcome == "fail":
            failure = ET.SubElement(case, "failure", {"message": observed, "type": "fail"})
            failure.text = f"{name}: observed {observed}"
        elif outcome == "undetermined":
            reason = _text(verdict.reason or "undetermined")
            ET.SubElement(case, "skipped", {"message": f"undetermined: {reason}"})
        ET.SubElement(case, "system-out").text = _text(evidence_text(verdict))
    if interrupted:
        name = "the run ran to its end"
        case = ET.SubElement(suite, "testcase", {"classname": scenario, "name": name, "time": "0"})
        message = "the run was interrupted: what was not measured decides nothing"
        ET.SubElement(case, "error", {"message": message, "type": "interrupted"}).text = message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def check_junit_path(path: Path) -> None:
    """ConfigError (exit 2) now, before a run spends its minutes, if ``path`` can not be
    written: its folder missing, or the path a folder."""
    if path.is_dir():
        raise ConfigError(f"--junit {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise ConfigError(f"--junit {path}: no directory {path.parent} to write it in")


def write_junit(path: Path, summary: Summary | ShootoutSummary) -> None:
    """Write :func:`junit_xml` to ``path``; ConfigError naming it if it can not be written."""
    check_junit_path(path)
    try:
        path.write_text(junit_xml(summary), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--junit {path}: can not write it ({exc.strerror or exc})") from None
