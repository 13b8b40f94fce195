"""The sizes one request may declare, checked before any array is built from it.

A tensor on the wire declares its shape apart from its values: a 51-byte TensorFlow Serving
request can declare [125000000, 4] with a single float_val that would stand for all 500
million elements. The message size limit cannot see that, so every protocol's decoder asks
the request's `RequestBudget` first: the number of tensors and their rank are capped (a
refused shape is never repeated back), no dimension is negative, and the bytes every tensor of
the request would take, together, stay within `max_bytes`. The batch size is checked against
`max_observations` before the observations are built. All of these refusals are
INVALID_ARGUMENT except an oversize batch, RESOURCE_EXHAUSTED as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from gymserve.serving.server.config import ServerConfig

MAX_RANK = 8  # dimensions of any tensor that is not observations (states, seeds)
MAX_TENSORS = 1024  # tensors in one request: an empty one costs 2 bytes to send, far more to decode


class RequestError(Exception):
    """A request the server refuses, with the status code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RequestLimits:
    """The server's per-request limits; `budget()` starts the accounting of one request."""

    max_observations: int  # observations in one request
    max_bytes: int  # bytes all decoded tensors of one request may take

    @classmethod
    def from_config(cls, config: ServerConfig) -> RequestLimits:
        """Observations as configured; a request may decode to no more bytes than a message may carry."""
        return cls(config.max_request_observations, config.max_message_bytes)

    def budget(self) -> RequestBudget:
        return RequestBudget(self)

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size > self.max_observations:
            message = (
                f"batch of {batch_size} observations exceeds the server's limit of {self.max_observations}"
            )
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


class RequestBudget:
    """The tensors and bytes one request has declared so far, against its limits."""

    def __init__(self, limits: RequestLimits):
        self.limits = limits
        self.tensors = 0
        self.declared_bytes = 0

    def take(
        self, rank: int, dims: Iterable[int], itemsize: int, what: str, max_rank: int = MAX_RANK
    ) -> tuple[int, ...]:
        """The shape `dims` declares, once it fits; ValueError otherwise.

        `rank` is checked before `dims` is read, so a million dimensions are neither copied
        nor repeated in the error.
        """
        self.tensors += 1
        if self.tensors > MAX_TENSORS:
            raise ValueError(f"the request has more than {MAX_TENSORS} tensors")
        if rank > max_rank:
            raise ValueError(f"the shape of {what} has {rank} dimensions; at most {max_rank} are accepted")
        shape = tuple(dims)
        if min(shape, default=0) < 0:
            raise ValueError(f"the shape of {what} is {list(shape)}; dimensions must not be negative")
        size = math.prod(shape) * itemsize
        self.declared_bytes += size
        if self.declared_bytes > self.limits.max_bytes:
            raise ValueError(
                f"{what} of shape {list(shape)} takes {size} bytes; the tensors of one request may take "
                f"at most {self.limits.max_bytes} bytes on this server"
            )
        return shape
