import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.fused_adam import FusedAdam

COMPILATIONS = {"eager": None, "graph": False, "xla": True}


def displacement(optimizer: keras.optimizers.Optimizer, compilation: str, scale: float) -> list[np.ndarray]:
    """How far five steps of `optimizer` move a Dense layer's kernel and bias from their start,
    with fixed gradients of standard deviation `scale`."""
    layer = keras.layers.Dense(4, kernel_initializer=keras.initializers.Constant(0.5))
    layer.build((None, 3))
    optimizer.build(layer.trainable_variables)
    rng = np.random.default_rng(0)
    steps = [[tf.constant(scale * rng.normal(size=v.shape), tf.float32) for v in layer.trainable_variables]]
    steps += [[g * -0.5 for g in steps[0]] for _ in range(4)]

    def apply(gradients: list[tf.Tensor]) -> None:
        optimizer.apply_gradients(zip(gradients, layer.trainable_variables, strict=True))

    jit = COMPILATIONS[compilation]
    step = apply if jit is None else tf.function(apply, autograph=False, jit_compile=jit)
    start = [v.numpy() for v in layer.trainable_variables]
    for gradients in steps:
        step(gradients)
    return [v.numpy() - s for v, s in zip(layer.trainable_variables, start, strict=True)]


@pytest.mark.parametrize("compilation", COMPILATIONS)
@pytest.mark.parametrize("scale", [1.0, 1e-4])  # at 1e-4, epsilon 1e-3 dominates the denominator
def test_fused_updates_follow_keras_adam(compilation, scale):
    expected = displacement(keras.optimizers.Adam(0.1, epsilon=1e-3), compilation, scale)
    fused = displacement(FusedAdam(0.1, epsilon=1e-3), compilation, scale)

    for moved, reference in zip(fused, expected, strict=True):
        assert np.abs(reference).min() > 1e-6  # every weight moved
        np.testing.assert_allclose(moved, reference, rtol=1e-4)


def test_fused_adam_keeps_keras_slots_and_names_so_checkpoints_are_interchangeable():
    weight = keras.Variable(np.ones(3, np.float32))
    fused, plain = FusedAdam(0.1), keras.optimizers.Adam(0.1)
    for optimizer in (fused, plain):
        optimizer.build([weight])

    def unnumbered(path: str) -> str:  # Keras numbers a repeated optimizer name: adam_1, adam_2, ...
        return re.sub(r"^adam_\d+/", "adam/", path)

    assert [unnumbered(v.path) for v in fused.variables] == [unnumbered(v.path) for v in plain.variables]
    fused.apply_gradients([(tf.constant([1.0, -1.0, 0.5]), weight)])
    np.testing.assert_allclose(fused.variables[2].numpy(), [0.1, -0.1, 0.05], rtol=1e-6)  # m after one step
