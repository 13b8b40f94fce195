"""Tests share two busy cores: TensorFlow, when a test needs it, gets one thread per pool."""

import os


def limit_tensorflow_threads() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow was initialized by another test module
        pass
