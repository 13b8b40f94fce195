"""Agent tests share two busy cores: TensorFlow gets one thread per pool (tests/tensorflow_threads.py)."""

from tensorflow_threads import limit_tensorflow_threads

limit_tensorflow_threads()
