"""The page in the browser, on the HTTP port: the served policies, their traffic, a CartPole game.

    GET /  or  /ui/                     the page                                     (no token)
    GET /ui/page.js, /ui/page.css       its script and style                         (no token)
    GET /ui/status                      policies, versions and states, and the totals of
                                        the server's request and latency metrics      (token)

The files hold no data, and a browser sends no bearer token when it opens an address, so they
are public; everything the page shows comes from calls that need the token when the server has
one, which the page sends from a field the user types it into. The files are read once, when
the port opens, into a table of names; a path matches one of those names or nothing, so no
path a client sends reaches the file system.

/ui/status reads the same metric objects Prometheus scrapes: for each series its count, its sum
of seconds and its cumulative buckets so far. The page turns the difference between two reads
into requests per second, mean latency, and the median and 99th percentile, interpolated in the
buckets as Prometheus' histogram_quantile does.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import orjson

from gymserve.serving.apis.http_protocol import HttpProtocol, HttpRoute, Json, PageFile

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from gymserve.serving.apis.protocol import ProtocolContext
    from gymserve.serving.server.served_policies import ServedPolicies, ServedVersion

CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
INDEX = "index.html"


def page_files() -> dict[str, PageFile]:
    """The page's files by name, read from this package."""
    files = {}
    for entry in (importlib.resources.files(__package__) / "static").iterdir():
        content_type = CONTENT_TYPES.get(PurePosixPath(entry.name).suffix)
        if content_type is not None:
            files[entry.name] = PageFile(entry.read_bytes(), content_type)
    return files


class BrowserPage:
    """The route handlers: the files, and the status the page polls."""

    def __init__(self, context: ProtocolContext):
        self._policies: ServedPolicies = context.calls.policies
        self._metrics = context.metrics
        self.files = page_files()

    def index(self, path: Mapping[str, str], body: Json) -> PageFile:
        return self.files[INDEX]

    def file(self, path: Mapping[str, str], body: Json) -> PageFile:
        return self.files[path["file"]]

    def status(self, path: Mapping[str, str], body: Json) -> Json:
        return {
            "policies": [self._policy(name) for name in self._policies.names()],
            "policy_requests": _totals(self._metrics.steps.collect(), "gymserve_policy_request_seconds"),
            "http_requests": _totals(self._metrics.http.collect(), "gymserve_http_request_seconds"),
        }

    def _policy(self, name: str) -> Json:
        versions = self._policies.versions(name)
        default = self._policies.catalog.latest(name)
        return {
            "name": name,
            "env_id": None if default is None else orjson.loads(default.metadata_json).get("env_id"),
            "default_version": None if default is None else str(default.version),
            "versions": [self._version(served) for served in versions],
        }

    def _version(self, served: ServedVersion) -> Json:
        return {
            "version": str(served.version),
            "state": "AVAILABLE" if served.available else "FAILED",
            "labels": self._policies.labels_of(served.name, served.version),
            "error": served.error,
        }


def _totals(families: Iterable[Metric], histogram: str) -> list[Json]:
    """Each series of `histogram`: its labels, the observations so far, their sum in seconds, and its
    cumulative buckets as `[upper bound in seconds, count]` pairs, ascending (`null` for +Inf)."""
    series: dict[tuple, dict[str, Json]] = {}
    for family in families:
        if family.name != histogram:
            continue
        for sample in family.samples:
            labels = {name: value for name, value in sample.labels.items() if name != "le"}
            totals = series.setdefault(tuple(sorted(labels.items())), labels | {"buckets": []})
            if sample.name == f"{histogram}_bucket":
                bound = float(sample.labels["le"])
                totals["buckets"].append([bound if math.isfinite(bound) else None, sample.value])
            elif sample.name in (f"{histogram}_count", f"{histogram}_sum"):
                totals["count" if sample.name.endswith("_count") else "seconds"] = sample.value
    for totals in series.values():
        totals["buckets"].sort(key=lambda bucket: math.inf if bucket[0] is None else bucket[0])
    return list(series.values())


def routes(context: ProtocolContext) -> tuple[HttpRoute, ...]:
    page = BrowserPage(context)
    assets = "|".join(re.escape(name) for name in sorted(page.files) if name != INDEX)
    return (
        HttpRoute("GET", "/|/ui/?", "page", page.index, public=True, runs_policy=False),
        HttpRoute("GET", rf"/ui/(?P<file>{assets})", "page_file", page.file, public=True, runs_policy=False),
        HttpRoute("GET", "/ui/status", "page_status", page.status, runs_policy=False),
    )


PROTOCOL = HttpProtocol(name="browser_page", routes=routes)
