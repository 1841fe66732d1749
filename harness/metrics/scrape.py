"""One process's metrics page, read where its topology says and parsed into typed samples.

The one reader of a process's own page (not Prometheus, whose scrape lags): the counter
sampler, the sweep's clean check and the tests read through it.  The page is fetched at the
process's ``metrics_path`` (a system's service may serve it elsewhere than ``/metrics``),
bounded in time, and parsed by prometheus_client's text parser.

A missing metric, one rule for every reader:

- a metric the page declares (a ``# TYPE`` line, or any sample of it) with no sample for the
  labels asked reads 0: prometheus_client writes no sample for a labelled counter or gauge
  until its first use;
- a metric the page does not declare at all raises :class:`MetricMissing`: the process does
  not export it, and a 0 would hide a misspelt name or the wrong process.

>>> page = parse_page('# TYPE hits_total counter\\nhits_total{lane="sync"} 3.0\\n', process="api")
>>> page.value("hits_total", lane="sync"), page.value("hits_total", lane="async")
(3.0, 0.0)
>>> page.value("misses_total")
Traceback (most recent call last):
...
harness.metrics.scrape.MetricMissing: api does not export misses_total
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from model.errors import MetricsUnreadable
from model.topology import ProcessSpec

__all__ = ["MetricMissing", "MetricsPage", "Sample", "parse_page", "read_page", "scrape"]

# The sample names a family of each type writes (OpenMetrics); any other type writes its own name.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


class MetricMissing(LookupError):
    """The page does not declare the metric asked for (see the module's rule)."""


@dataclass(frozen=True, kw_only=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float

    def has(self, labels: Mapping[str, str]) -> bool:
        """Whether every label asked for has the value asked (others may be there too)."""
        return all(self.labels.get(key) == value for key, value in labels.items())


@dataclass(frozen=True, kw_only=True)
class MetricsPage:
    """One reading of a process's page: its samples, and the metrics it declares."""

    process: str
    samples: tuple[Sample, ...]
    declared: frozenset[str]  # sample names the page declares, with or without a sample
    read_at: float | None = None  # epoch seconds when the page had arrived
    only: frozenset[str] | None = None  # the sample names read, when not the whole page

    def select(self, name: str, **labels: str) -> tuple[Sample, ...]:
        """The samples of ``name`` that carry ``labels``; none if the page declares the metric
        but has no such sample yet, :class:`MetricMissing` if it does not declare it."""
        if self.only is not None and name not in self.only:
            raise ValueError(f"{name} was not read from {self.process}: only {sorted(self.only)} were")
        if name not in self.declared:
            raise MetricMissing(f"{self.process} does not export {name}")
        return tuple(s for s in self.samples if s.name == name and s.has(labels))

    def value(self, name: str, **labels: str) -> float:
        """The sum of :meth:`select`'s samples: 0 for a declared metric with none."""
        return sum((s.value for s in self.select(name, **labels)), 0.0)


def _wanted(text: str, only: Collection[str]) -> str:
    """Only the lines of ``only`` and their families' comments: parsing the whole page,
    histograms and all, takes most of a reading's time."""
    samples = tuple(f"{name}{end}" for name in only for end in ("{", " "))
    kept = []
    for line in text.splitlines():
        if line.startswith("#"):
            words = line.split()
            family = words[2] if len(words) > 2 and words[1] in ("TYPE", "HELP") else None
            if family and any(name == family or name.startswith(family + "_") for name in only):
                kept.append(line)
        elif line.startswith(samples):
            kept.append(line)
    return "\n".join(kept) + "\n"


def parse_page(
    text: str, *, process: str, only: Collection[str] | None = None, read_at: float | None = None
) -> MetricsPage:
    """A page's text (Prometheus' text format) as typed samples; ``only``: the sample names
    to read, the others skipped unparsed.  A page that is not one raises ``ValueError``."""
    samples: list[Sample] = []
    declared: set[str] = set()
    for family in text_string_to_metric_families(_wanted(text, only) if only is not None else text):
        declared.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        for sample in family.samples:
            declared.add(sample.name)
            samples.append(Sample(name=sample.name, labels=dict(sample.labels), value=sample.value))
    return MetricsPage(
        process=process,
        samples=tuple(samples),
        declared=frozenset(declared),
        read_at=read_at,
        only=frozenset(only) if only is not None else None,
    )


def read_page(
    url: str, *, process: str, timeout_s: float = 5.0, only: Collection[str] | None = None
) -> MetricsPage:
    """The page at ``url``, read within about ``timeout_s`` in all, or
    :class:`~model.errors.MetricsUnreadable`.

    Each wait on the socket gets only the time left, so a page that trickles in is cut off, not
    waited for (a per-read timeout alone would wait for it as long as each byte came in time).
    """
    deadline = time.monotonic() + timeout_s
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        sock = connection.sock  # the answer reads through it even once the connection hands it over
        answer = connection.getresponse()
        if answer.status != 200:
            raise MetricsUnreadable(f"{url}: HTTP {answer.status} {answer.reason}")
        body = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MetricsUnreadable(f"{url}: not read within {timeout_s:g} s")
            if sock is not None:
                sock.settimeout(left)
            chunk = answer.read1(1 << 16)
            if not chunk:
                break
            body += chunk
        read_at = time.time()  # the page's counts are of about now, not of when it was asked
        return parse_page(body.decode(), process=process, only=only, read_at=read_at)
    except TimeoutError as exc:
        raise MetricsUnreadable(f"{url}: not read within {timeout_s:g} s") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise MetricsUnreadable(f"{url}: {exc}") from exc
    finally:
        connection.close()


def scrape(spec: ProcessSpec, *, timeout_s: float = 5.0, only: Collection[str] | None = None) -> MetricsPage:
    """``spec``'s page, at its ``metrics_path`` (where Prometheus scrapes it too).

    Raises ``ValueError`` for a process without metrics, and
    :class:`~model.errors.MetricsUnreadable` when the page does not come in time or is not one.
    """
    if spec.metrics_path is None:
        raise ValueError(f"process {spec.name} has no metrics page")
    return read_page(
        f"{spec.endpoint.url}{spec.metrics_path}", process=spec.name, timeout_s=timeout_s, only=only
    )
