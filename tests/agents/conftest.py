"""Agent tests share two busy cores: TensorFlow gets one thread per pool (tests/tensorflow_threads.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tensorflow_threads import limit_tensorflow_threads  # found through the path above

limit_tensorflow_threads()
