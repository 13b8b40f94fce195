"""Prometheus metrics of a policy server.

server_metrics.py   the server's registry and its HTTP endpoint; the interceptor that counts RPCs
rpc_metrics.py      gRPC series under py-grpc-prometheus's names
step_metrics.py     per-step policy series: requests, step and inference time, batch sizes
queued_metrics.py   series recorded with one append per event and counted in bulk
"""

from gymserve.common.moved_modules import moved_names

# The names of the module this package replaced.
__getattr__ = moved_names(
    __name__,
    "gymserve.serving.metrics.server_metrics",
    frozenset({"ServerMetrics", "MetricsInterceptor", "LATENCY_BUCKETS", "BATCH_BUCKETS"}),
)
