"""Tuning tests share two busy cores: TensorFlow gets one thread per pool here and in trial processes."""

import pytest
from tensorflow_threads import limit_tensorflow_threads

limit_tensorflow_threads()


@pytest.fixture(autouse=True)
def one_thread_trial_processes(monkeypatch):
    """Trial processes inherit the environment; TensorFlow reads its pool sizes from it."""
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
