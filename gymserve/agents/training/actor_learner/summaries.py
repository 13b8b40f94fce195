"""TensorBoard scalars through core TensorFlow (the tensorboard package is not needed to write)."""

from __future__ import annotations


def write_scalar(name: str, value: float) -> None:
    """One scalar into the default summary writer, at its default step."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata)
