"""Observation and action spaces on the wire.

The server describes its policies' gymnasium spaces with `space_to_proto`; the client reads them
back as a `WireSpace`, which needs only numpy, and turns it into a gymnasium space on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.client.tensors import fill_tensor, from_tensor

if TYPE_CHECKING:
    import gymnasium as gym


@dataclass(frozen=True)
class WireSpace:
    """A Box (`shape`, `dtype`, `low`, `high`) or Discrete (`n` actions from `start`) space."""

    kind: Literal["box", "discrete"]
    shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    n: int = 0
    start: int = 0

    @classmethod
    def from_proto(cls, space: pb.Space) -> WireSpace:
        if space.WhichOneof("kind") == "discrete":
            return cls("discrete", dtype=np.dtype(np.int64), n=space.discrete.n, start=space.discrete.start)
        box = space.box
        low, high = from_tensor(box.low, "box low"), from_tensor(box.high, "box high")
        return cls("box", tuple(box.shape), low.dtype, low, high)

    def to_gymnasium(self) -> gym.spaces.Box | gym.spaces.Discrete:
        import gymnasium as gym

        if self.kind == "discrete":
            return gym.spaces.Discrete(self.n, start=self.start)
        return gym.spaces.Box(self.low, self.high, self.shape, self.dtype)


def space_to_proto(space: gym.spaces.Box | gym.spaces.Discrete) -> pb.Space:
    """The wire description of a Box or Discrete gymnasium space."""
    import gymnasium as gym

    message = pb.Space()
    if isinstance(space, gym.spaces.Discrete):
        message.discrete.n = int(space.n)
        message.discrete.start = int(space.start)
        return message
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"only Box and Discrete spaces can be served, got {space}")
    message.box.shape[:] = space.shape
    fill_tensor(message.box.low, space.low)
    fill_tensor(message.box.high, space.high)
    return message
