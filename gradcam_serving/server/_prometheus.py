"""Prometheus text exposition of :class:`Metrics`, as TF Serving's ``PrometheusExporter`` writes it.

Metric names are TF's monitoring names with every character outside
``[a-zA-Z0-9_]`` turned into ``:`` (``/tensorflow/serving/request_count`` ->
``:tensorflow:serving:request_count``); each metric has a ``# TYPE`` line;
label values escape ``\\`` and ``"``; histogram buckets are cumulative with a
final ``le="+Inf"``, then ``_sum`` and ``_count`` (``util/prometheus_exporter.cc``).
"""

from __future__ import annotations

import re

from gradcam_serving.server._metrics import LATENCY_BUCKET_LIMITS, Histogram, Metrics

__all__ = ["CONTENT_TYPE", "REQUEST_COUNT", "REQUEST_LATENCY", "metric_name", "render"]

CONTENT_TYPE = "text/plain"
REQUEST_COUNT = "/tensorflow/serving/request_count"
REQUEST_LATENCY = "/tensorflow/serving/request_latency"


def metric_name(name: str) -> str:
    """``GetPrometheusMetricName``: ``[^a-zA-Z0-9_]`` -> ``:``, a leading digit gets ``_``."""
    name = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return "_" + name if name[:1].isdigit() else name


def _escape(value: str) -> str:
    """``SanitizeLabelValue``: backslash and double quote are escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _labels(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in pairs)


def _number(value: float) -> str:
    """``absl::StrCat(double)``: six significant digits."""
    return f"{value:.6g}"


def _counter_lines(name: str, points: dict[tuple[str, str], int]) -> list[str]:
    prom = metric_name(name)
    lines = [f"# TYPE {prom} counter"]
    for (model, status), count in sorted(points.items()):
        lines.append(f"{prom}{{{_labels([('model_name', model), ('status', status)])}}} {count}")
    return lines


def _histogram_lines(name: str, points: dict[tuple[str, str, str], Histogram]) -> list[str]:
    prom = metric_name(name)
    lines = [f"# TYPE {prom} histogram"]
    for (model, api, entrypoint), histogram in sorted(points.items()):
        labels = _labels([("model_name", model), ("API", api), ("entrypoint", entrypoint)])
        cumulative = 0
        for index, count in enumerate(histogram.counts):
            cumulative += count
            limit = _number(LATENCY_BUCKET_LIMITS[index]) if index < len(LATENCY_BUCKET_LIMITS) else "+Inf"
            lines.append(f'{prom}_bucket{{{labels},le="{limit}"}} {cumulative}')
        lines.append(f"{prom}_sum{{{labels}}} {_number(histogram.total)}")
        lines.append(f"{prom}_count{{{labels}}} {cumulative}")
    return lines


def render(metrics: Metrics) -> str:
    """The whole page: request counts by (model_name, status) and request latency in microseconds."""
    lines = _counter_lines(REQUEST_COUNT, metrics.tf_request_counts())
    lines += _histogram_lines(REQUEST_LATENCY, metrics.tf_request_latencies())
    return "\n".join(lines) + "\n"
