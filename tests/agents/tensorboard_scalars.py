"""Reading back the TensorBoard scalars a training run wrote."""

import tensorflow as tf


def tensorboard_scalars(run_dir):
    """tag -> [(step, value)] from every event file of a run."""
    scalars = {}
    for event_file in (run_dir / "tensorboard").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return scalars
