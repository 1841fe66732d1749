"""A series' legend from the panel catalogue, as Grafana renders it: the run report and the
live view name a series the same way."""

from __future__ import annotations

from typing import Any

from harness.live.series import panel_series
from harness.metrics.panels import Query, panel


def test_a_legend_takes_the_series_labels_and_a_missing_one_renders_empty() -> None:
    depth = Query(expr="x", legend="{{queue}} depth")
    assert depth.legend_for({"queue": "orders", "lane": "async"}) == "orders depth"
    assert depth.legend_for({"lane": "async"}) == " depth"  # Grafana's empty string, not "{{queue}}"
    spaced = Query(expr="x", legend="{{ lane }} {{dependency}} p99")
    assert spaced.legend_for({"lane": "sync", "dependency": "email"}) == "sync email p99"
    assert spaced.legend_labels == {"lane", "dependency"}
    assert Query(expr="x", legend="outbox").legend_for({"queue": "orders"}) == "outbox"


class Answers:
    """Prometheus' range queries, answering each query with the series given for it."""

    def __init__(self, by_expr: dict[str, list[dict[str, Any]]]) -> None:
        self.by_expr = by_expr

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self.by_expr.get(query, [])


def test_the_live_view_names_a_series_by_the_catalogues_legend() -> None:
    backlog = panel("backlog")
    outbox, depth, held = (q.expr for q in backlog.queries)
    series: dict[str, list[dict[str, Any]]] = {
        outbox: [{"metric": {}, "values": [[0, "1"]]}],
        depth: [{"metric": {"queue": "orders"}, "values": [[0, "2"]]}, {"metric": {}, "values": [[0, "3"]]}],
        held: [{"metric": {"dependency": "email"}, "values": [[0, "4"]]}],
    }
    data = panel_series(Answers(series), backlog, 60, 60)
    # The queue's series without its label: blank, as Grafana draws it, then the page's "value".
    assert [s["label"] for s in data["series"]] == ["outbox", "orders", "value", "email in progress"]
