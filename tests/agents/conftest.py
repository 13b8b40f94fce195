"""Agent tests share two busy cores: TensorFlow gets one thread per pool (tests/tensorflow_threads.py)."""

import pytest
from tensorflow_threads import limit_tensorflow_threads

from gymserve.agents.training.registry import REGISTRY

limit_tensorflow_threads()


@pytest.fixture
def registry_restored():
    """The algorithm registry as it was before the test registered anything."""
    saved = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(saved)
