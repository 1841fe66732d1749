"""Every metric doorbuster's own processes define, and every recording rule, against the
Prometheus naming guide (https://prometheus.io/docs/practices/naming/ and /rules/).

Metrics: the application prefix ``doorbuster_``; base units only, as the name's last word
(before a counter's ``_total``); ``_total`` on counters and only on them; no suffix a
histogram or summary makes (``_bucket``, ``_count``, ``_sum``).  The definitions are found in
the source (every prometheus_client metric or metric family made in model, harness, targets,
locustfiles and bench), so a metric added anywhere is checked without being listed here.

Rules: ``level:metric:operations``: the level is the labels the rule keeps; the metric is a
defined one, unchanged but for a counter's ``_total`` under ``rate``, or two joined by
``_per_`` for a ``ratio``; the operations, newest first, carry the window the expression reads.
Panel queries and rules may read only defined metrics, rules, and the client's own metrics.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from harness.binaries import PROJECT_ROOT
from harness.metrics.panels import PANELS, RECORDING_RULES
from model import metric_names
from targets.metrics import BrokerLoss, DownstreamServerMetrics, OrderMetrics, SyncChainMetrics, WorkerMetrics

PACKAGES = ("model", "harness", "targets", "locustfiles", "bench")
PREFIX = "doorbuster_"

# prometheus_client's constructors, by the type of metric they make.
KIND_OF = {
    "Counter": "counter",
    "CounterMetricFamily": "counter",
    "Gauge": "gauge",
    "GaugeMetricFamily": "gauge",
    "Histogram": "histogram",
    "HistogramMetricFamily": "histogram",
    "Summary": "summary",
    "SummaryMetricFamily": "summary",
    "Info": "info",
    "InfoMetricFamily": "info",
    "Enum": "stateset",
    "StateSetMetricFamily": "stateset",
}
# harness.load.latency_histogram.LatencyHistogram.metric_family(name, ...) makes a histogram.
METHOD_KINDS = {"metric_family": "histogram"}

BASE_UNITS = frozenset(
    {"seconds", "bytes", "ratio", "meters", "volts", "amperes", "joules", "grams", "celsius"}
)
NON_BASE_UNITS = frozenset(
    {
        "ms", "millis", "milliseconds", "us", "microseconds", "ns", "nanoseconds", "minutes", "hours",
        "days", "kb", "mb", "gb", "kilobytes", "megabytes", "gigabytes", "bits", "percent",
        "fahrenheit", "kelvin",
    }
)  # fmt: skip
RESERVED_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_info")
DURATION_WORDS = frozenset({"duration", "latency", "time", "elapsed", "age"})
# Metrics not doorbuster's own that a query may read: the Python client's standard ones.
FOREIGN_PREFIXES = ("process_", "python_")
PROMQL_WORDS = frozenset(
    {"by", "without", "or", "and", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
)
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
WINDOW = re.compile(r"\d+(ms|s|m|h|d|w|y)$")


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str
    where: str  # file:line, or the class that registered it


# -- the guide, as checks that say what is wrong ------------------------------------------------------
def metric_name_faults(name: str, kind: str) -> list[str]:
    """What in a metric's name goes against the naming guide; [] when nothing does."""
    faults = []
    if not NAME.match(name):
        faults.append("is not a valid metric name (letters, digits, underscores; colons are for rules)")
    if not name.startswith(PREFIX):
        faults.append(f"lacks the application prefix {PREFIX!r}")
    if kind == "counter" and not name.endswith("_total"):
        faults.append("is a counter spelled without its suffix _total")
    if kind != "counter" and name.endswith("_total"):
        faults.append(f"ends with _total but is a {kind}, not a counter")
    faults += [f"ends with {s}, which Prometheus reserves" for s in RESERVED_SUFFIXES if name.endswith(s)]
    words = name.removesuffix("_total").split("_")
    faults += [
        f"has the unit {w!r}: use a base unit (seconds, bytes, ratio...)"
        for w in words
        if w in NON_BASE_UNITS
    ]
    faults += [f"has the unit {w!r} before the end of its name" for w in words[:-1] if w in BASE_UNITS]
    if kind in ("histogram", "summary") and DURATION_WORDS & set(words) and words[-1] != "seconds":
        faults.append("measures a time without the base unit suffix _seconds")
    return faults


def _strip_series_suffix(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def series_read(expr: str) -> set[str]:
    """The metric and rule names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    found = re.findall(r"(?<![\w:.])[a-zA-Z_:][\w:]*(?![\w:])(?!\s*\()", expr)
    return {t for t in found if t not in PROMQL_WORDS and not re.match(r"^\d", t)}


def windows_read(expr: str, rules: dict[str, str]) -> set[str]:
    """The range windows an expression reads, through the rules it reads too."""
    windows = set(re.findall(r"\[([^\]:]+)\]", expr))
    for name in series_read(expr):
        if name in rules:
            windows |= windows_read(rules[name], rules)
    return windows


def rule_name_faults(name: str, expr: str, rules: dict[str, str], metrics: dict[str, str]) -> list[str]:
    """What in a recording rule's name goes against the guide; ``metrics`` maps each defined
    metric name to its kind."""
    parts = name.split(":")
    if len(parts) != 3 or not all(parts):
        return ["is not of the form level:metric:operations"]
    level, metric, operations = parts
    faults = []
    kept = re.search(r"\bby\s*\(([^)]*)\)", expr)
    if kept:
        labels = {label.strip() for label in kept.group(1).split(",")} - {"le"}
        if set(level.split("_")) != labels:
            faults.append(f"has the level {level!r} but keeps the labels {sorted(labels)}")
    else:
        levels = {r.split(":")[0] for r in series_read(expr) if r in rules}
        if levels != {level}:
            faults.append(f"has the level {level!r} but aggregates nothing by it")
    ops = operations.split("_")
    if "ratio" in ops:
        if "_per_" not in metric:
            faults.append("is a ratio whose metric is not the two metrics joined by _per_")
        bases = metric.split("_per_")
    else:
        bases = [metric]
    for base in bases:
        if base in metrics:
            if metrics[base] == "counter":
                faults.append(f"keeps the counter name {base}: strip _total when taking its rate")
        elif base + "_total" in metrics:
            if not any(op.startswith(("rate", "irate", "ratio")) for op in ops):
                faults.append(f"strips _total from {base}_total without taking its rate")
        else:
            faults.append(f"names the metric {base!r}, which no process defines")
    windows = windows_read(expr, rules)
    named = {m.group(0) for op in ops if (m := WINDOW.search(op))}
    if not named:
        faults.append("has no window in its operations (e.g. rate10s)")
    elif named != windows:
        faults.append(f"names the window {sorted(named)} but reads {sorted(windows)}")
    return faults


# -- where the code defines metrics -----------------------------------------------------------------
def _source_files(root: Path) -> list[Path]:
    return [path for package in PACKAGES for path in sorted((root / package).rglob("*.py"))]


def source_definitions(root: Path = PROJECT_ROOT) -> tuple[list[Definition], list[str]]:
    """Every metric the source defines, and every definition whose name can not be read from
    the source (neither a string nor a name of :mod:`model.metric_names`)."""
    found, unreadable = [], []
    for path in _source_files(root):
        tree = ast.parse(path.read_text(), filename=str(path))
        constructors = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client")
            for alias in node.names
            if alias.name in KIND_OF
        }
        parameters = {a.arg for node in ast.walk(tree) if isinstance(node, ast.arguments) for a in node.args}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in constructors:
                kind = KIND_OF[func.id]
            elif isinstance(func, ast.Attribute) and func.attr in METHOD_KINDS:
                kind = METHOD_KINDS[func.attr]
            else:
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            arg = (
                node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
            )
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(Definition(arg.value, kind, where))
            elif isinstance(arg, ast.Attribute) and hasattr(metric_names, arg.attr):
                found.append(Definition(getattr(metric_names, arg.attr), kind, where))
            elif isinstance(arg, ast.Name) and arg.id in parameters:
                continue  # a name handed in: checked where it is handed in
            else:
                unreadable.append(
                    f"{where}: a {kind} whose name is not a string or a model.metric_names name"
                )
    return found, unreadable


def registered_definitions() -> list[Definition]:
    """What the targets' metric classes register, read back from a registry."""
    order, server, worker = CollectorRegistry(), CollectorRegistry(), CollectorRegistry()
    OrderMetrics(order, "async")
    SyncChainMetrics(order, "sync")
    DownstreamServerMetrics(server)
    WorkerMetrics(worker)
    BrokerLoss(worker, "async", lambda: 0)
    found = []
    for process, registry in (("order service", order), ("downstream", server), ("worker", worker)):
        for family in registry.collect():
            name = family.name + "_total" if family.type == "counter" else family.name
            found.append(Definition(name, family.type, f"targets.metrics, a {process}'s registry"))
    return found


def stored_name(d: Definition) -> str:
    """The name Prometheus stores: the client adds a counter's ``_total`` when it is missing."""
    return d.name + "_total" if d.kind == "counter" and not d.name.endswith("_total") else d.name


def defined_kinds(definitions: list[Definition]) -> dict[str, str]:
    return {stored_name(d): d.kind for d in definitions}


SourceScan = tuple[list[Definition], list[str]]  # what source_definitions returns


@pytest.fixture(scope="module")
def scanned() -> SourceScan:
    """The source scan, once for the module's tests: it parses every module of the project."""
    return source_definitions()


# -- the tests ------------------------------------------------------------------------------------------
def test_the_checks_catch_what_the_guide_forbids() -> None:
    """The checks are not vacuous: each of these names breaks one rule and is caught."""
    assert metric_name_faults("order_requests_total", "counter") == [
        "lacks the application prefix 'doorbuster_'"
    ]
    assert metric_name_faults("doorbuster_outbox_backlog_total", "gauge")
    assert metric_name_faults("doorbuster_order_requests", "counter")
    assert metric_name_faults("doorbuster_request_duration_milliseconds", "histogram")
    assert metric_name_faults("doorbuster_request_seconds_duration", "histogram")
    assert metric_name_faults("doorbuster_request_duration", "histogram")
    assert metric_name_faults("doorbuster_order_requests_total", "counter") == []
    metrics = {"doorbuster_order_requests_total": "counter", "doorbuster_latency_seconds": "histogram"}
    rate = 'sum by (lane) (rate(doorbuster_order_requests_total{method="POST"}[10s]))'
    rules = {"lane:doorbuster_order_requests:rate10s": rate}
    assert rule_name_faults("lane:doorbuster_order_requests:rate10s", rate, rules, metrics) == []
    assert rule_name_faults("lane:doorbuster_order_requests:rate", rate, rules, metrics)
    assert rule_name_faults("lane:doorbuster_order_requests:rate5m", rate, rules, metrics)
    assert rule_name_faults("lane:order_requests:rate10s", rate, rules, metrics)
    assert rule_name_faults("job:doorbuster_order_requests:rate10s", rate, rules, metrics)
    assert rule_name_faults("lane:doorbuster_order_requests_total:rate10s", rate, rules, metrics)
    assert rule_name_faults("lane_doorbuster_order_requests_rate10s", rate, rules, metrics)
    assert series_read(rate) == {"doorbuster_order_requests_total"}


def test_every_metric_the_code_defines_follows_the_naming_guide(scanned: SourceScan) -> None:
    definitions, unreadable = scanned
    assert not unreadable, "\n".join(unreadable)
    offenders = [
        f"{d.where}: {d.kind} {d.name!r} {fault}"
        for d in [*definitions, *registered_definitions()]
        for fault in metric_name_faults(d.name, d.kind)
    ]
    assert not offenders, "\n".join(offenders)
    # The scan found the targets', the load generator's and the supervisor's metrics.
    files = {d.where.split(":")[0] for d in definitions}
    assert {"targets/metrics.py", "harness/load/exporter.py", "harness/stack/supervisor.py"} <= files, files


def test_the_source_scan_sees_every_metric_the_targets_register(scanned: SourceScan) -> None:
    seen = {(stored_name(d), d.kind) for d in scanned[0]}
    missed = {(d.name, d.kind) for d in registered_definitions()} - seen
    assert not missed, f"registered but not found in the source: {sorted(missed)}"


def test_every_recording_rule_is_named_level_metric_operations_with_its_window(scanned: SourceScan) -> None:
    metrics = defined_kinds(scanned[0])
    offenders = [
        f"rule {name!r} {fault}"
        for name, expr in RECORDING_RULES.items()
        for fault in rule_name_faults(name, expr, RECORDING_RULES, metrics)
    ]
    assert not offenders, "\n".join(offenders)


def test_panels_and_rules_read_only_defined_metrics_and_rules(scanned: SourceScan) -> None:
    known = set(defined_kinds(scanned[0])) | set(RECORDING_RULES)
    exprs = [(f"rule {n}", e) for n, e in RECORDING_RULES.items()]
    exprs += [(f"panel {p.key}", q.expr) for p in PANELS for q in p.queries]
    offenders = [
        f"{where} reads {series!r}, which is neither a defined metric nor a recording rule"
        for where, expr in exprs
        for series in sorted(series_read(expr))
        if _strip_series_suffix(series) not in known and not series.startswith(FOREIGN_PREFIXES)
    ]
    assert not offenders, "\n".join(offenders)
