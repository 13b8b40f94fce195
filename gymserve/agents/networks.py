"""Keras networks of the agents: an MLP torso, a Q-network and actor-critic pairs.

Every network takes a float32 batch of raw observations, except an image network, which takes
the environment's uint8 frames. Optional observation normalization is a `RunningNormalization`
layer inside the network, its running mean and variance stored as non-trainable weights, so an
exported network normalizes by itself.

Image networks (`image_encoder`, see IMAGE_ENCODERS) take uint8 images channels first,
[batch, channels, height, width] as the Atari envs give their 4 stacked 84x84 frames; inside,
`ImageScaling` divides by 255 and moves the channels last (TensorFlow's CPU convolutions need
NHWC), so an exported network takes the raw frames. The encoder ends with the flattened
convolutional features: the dense layers after it are `hidden_sizes` ((512,) for Nature DQN,
(256,) for IMPALA). Policy outputs follow
gymserve.policies.distributions: logits (B, n) for Discrete actions, [pre-tanh mean | log_std]
(B, 2d) for Box actions.

`bfloat16_compute` lets a gradient step run an image network's convolutions and hidden layers in
bfloat16 (mixed precision: the weights stay float32), while acting and exports stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import gymnasium as gym
import keras
import numpy as np

# A kernel initializer by Keras name or config; each layer builds its own from it (a shared
# initializer object would give same-shaped layers the same weights).
Initializer = str | dict[str, object]


@keras.saving.register_keras_serializable(package="gymserve")
class RunningNormalization(keras.layers.Layer):
    """Standardizes observations with a running mean and variance, then clips to [-clip, clip].

    The statistics change only through `update` (never through gradients), with the parallel
    form of Welford's algorithm so batches of any size merge exactly.
    """

    def __init__(self, clip: float = 10.0, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.clip = clip
        self.epsilon = epsilon

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = tuple(input_shape[1:])
        self.mean = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="mean")
        self.variance = self.add_weight(shape=shape, initializer="ones", trainable=False, name="variance")
        self.count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="count", dtype="float64"
        )

    def call(self, observations):
        ops = keras.ops
        scale = ops.sqrt(ops.cast(self.variance, observations.dtype) + self.epsilon)
        standardized = (observations - ops.cast(self.mean, observations.dtype)) / scale
        return ops.clip(standardized, -self.clip, self.clip)

    def update(self, observations: np.ndarray) -> None:
        """Merge a batch (B, *shape) into the running statistics."""
        batch = np.asarray(observations, np.float64).reshape(-1, *self.mean.shape)
        count = float(self.count.numpy())
        batch_count = len(batch)
        total = count + batch_count
        mean = np.asarray(self.mean.numpy(), np.float64)
        delta = batch.mean(axis=0) - mean
        if count == 0:
            # The initial variance of 1 is a placeholder, not data: the first batch replaces it.
            new_variance = batch.var(axis=0)
        else:
            combined = self.variance.numpy() * count + batch.var(axis=0) * batch_count
            new_variance = (combined + delta**2 * count * batch_count / total) / total
        self.mean.assign((mean + delta * batch_count / total).astype(np.float32))
        self.variance.assign(new_variance.astype(np.float32))
        self.count.assign(total)

    def get_config(self) -> dict:
        return {**super().get_config(), "clip": self.clip, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="gymserve")
class StateIndependentLogStd(keras.layers.Layer):
    """A trainable log standard deviation per action dimension, repeated for each observation."""

    def __init__(self, size: int, initial_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.size = size
        self.initial_value = initial_value

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        initializer = keras.initializers.Constant(self.initial_value)
        self.log_std = self.add_weight(shape=(self.size,), initializer=initializer, name="log_std")

    def call(self, features):
        batch = keras.ops.shape(features)[0]
        return keras.ops.broadcast_to(keras.ops.cast(self.log_std, features.dtype), (batch, self.size))

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "initial_value": self.initial_value}


@keras.saving.register_keras_serializable(package="gymserve")
class ImageScaling(keras.layers.Layer):
    """uint8 images [B, C, H, W] -> float32 [B, H, W, C] in [0, 1]."""

    def call(self, images):
        scaled = keras.ops.cast(images, "float32") / 255.0
        return keras.ops.transpose(scaled, (0, 2, 3, 1))


def nature_cnn(images: keras.KerasTensor, initializer: Initializer = "glorot_uniform") -> keras.KerasTensor:
    """The convolutions of Mnih et al. (2015): 32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1."""
    features = images
    for index, (filters, size, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
        features = keras.layers.Conv2D(
            filters, size, stride, activation="relu", kernel_initializer=initializer, name=f"conv_{index}"
        )(features)
    return keras.layers.Flatten(name="conv_features")(features)


def impala_cnn(images: keras.KerasTensor, initializer: Initializer = "glorot_uniform") -> keras.KerasTensor:
    """The ResNet of Espeholt et al. (2018): per stage of 16, 32, 32 channels a 3x3 convolution, a
    3x3 max-pool of stride 2 and two residual blocks (relu, conv, relu, conv, + input)."""
    features = images
    for stage, channels in enumerate((16, 32, 32)):
        features = keras.layers.Conv2D(
            channels, 3, padding="same", kernel_initializer=initializer, name=f"stage_{stage}_conv"
        )(features)
        features = keras.layers.MaxPooling2D(3, 2, padding="same", name=f"stage_{stage}_pool")(features)
        for block in range(2):
            name = f"stage_{stage}_block_{block}"
            residual = keras.layers.ReLU(name=f"{name}_relu_0")(features)
            residual = keras.layers.Conv2D(
                channels, 3, padding="same", kernel_initializer=initializer, name=f"{name}_conv_0"
            )(residual)
            residual = keras.layers.ReLU(name=f"{name}_relu_1")(residual)
            residual = keras.layers.Conv2D(
                channels, 3, padding="same", kernel_initializer=initializer, name=f"{name}_conv_1"
            )(residual)
            features = keras.layers.Add(name=f"{name}_add")([features, residual])
    features = keras.layers.ReLU(name="conv_relu")(features)
    return keras.layers.Flatten(name="conv_features")(features)


# The config value `image_encoder` -> the convolutional encoder it builds.
IMAGE_ENCODERS: dict[str, Callable[[keras.KerasTensor, Initializer], keras.KerasTensor]] = {
    "nature_cnn": nature_cnn,
    "impala_cnn": impala_cnn,
}


# Layers of the image encoders and hidden layers that run in bfloat16 under `bfloat16_compute`.
_ENCODER_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.MaxPooling2D,
    keras.layers.ReLU,
    keras.layers.Add,
    keras.layers.Flatten,
)


@contextlib.contextmanager
def bfloat16_compute(model: keras.Model, enabled: bool = True) -> Iterator[None]:
    """Within the block, calls of `model` compute its image encoder and hidden layers in bfloat16.

    The linear heads and everything after them stay float32, so logits, values and losses keep
    their precision. Layers read their dtype policy when called, so a `tf.function` traced inside
    the block keeps bfloat16 for good and one traced outside it (acting, exports) stays float32.
    bfloat16 pays only for convolutions on hardware that has it (RESULTS.md, mixed precision).
    """
    if not enabled:
        yield
        return
    heavy = [
        layer
        for layer in model.layers
        if isinstance(layer, _ENCODER_LAYERS)
        or (isinstance(layer, keras.layers.Dense) and layer.activation is not keras.activations.linear)
    ]
    if not any(isinstance(layer, keras.layers.Conv2D) for layer in heavy):
        raise ValueError(f"bfloat16 compute is for image networks; {model.name} has no convolutions")
    policies = {layer: layer.dtype_policy for layer in heavy}
    for layer in heavy:
        layer.dtype_policy = "mixed_bfloat16"
    try:
        yield
    finally:
        for layer, policy in policies.items():
            layer.dtype_policy = policy


def observation_input(
    observation_space: gym.spaces.Box,
    normalize: bool,
    name: str = "observations",
    image_encoder: str | None = None,
    initializer: Initializer = "glorot_uniform",
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The network input and its (optionally normalized, or convolved) value."""
    if image_encoder is not None:
        return image_input(observation_space, image_encoder, normalize, name, initializer)
    inputs = keras.Input(shape=observation_space.shape, dtype="float32", name=name)
    features = RunningNormalization(name="observation_normalization")(inputs) if normalize else inputs
    if len(observation_space.shape) > 1:
        features = keras.layers.Flatten()(features)
    return inputs, features


def image_input(
    observation_space: gym.spaces.Box,
    image_encoder: str,
    normalize: bool,
    name: str,
    initializer: Initializer = "glorot_uniform",
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """A uint8 image input and its convolutional features."""
    if image_encoder not in IMAGE_ENCODERS:
        raise ValueError(f"image_encoder must be one of {sorted(IMAGE_ENCODERS)}, got {image_encoder!r}")
    if observation_space.dtype != np.uint8 or len(observation_space.shape) != 3:
        raise ValueError(
            f"image_encoder {image_encoder!r} takes uint8 images [channels, height, width]; the "
            f"observations are {observation_space}"
        )
    if normalize:
        raise ValueError("normalize_observations does not apply to images: they are scaled by 1/255")
    inputs = keras.Input(shape=observation_space.shape, dtype="uint8", name=name)
    return inputs, IMAGE_ENCODERS[image_encoder](ImageScaling(name="image_scaling")(inputs), initializer)


def mlp(
    features: keras.KerasTensor,
    hidden_sizes: Sequence[int],
    activation: str,
    name: str,
    initializer: Initializer = "glorot_uniform",
) -> keras.KerasTensor:
    """Fully connected hidden layers `hidden_sizes` on top of `features`."""
    for index, size in enumerate(hidden_sizes):
        features = keras.layers.Dense(
            size, activation=activation, kernel_initializer=initializer, name=f"{name}_{index}"
        )(features)
    return features


def q_network(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Discrete,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "relu",
    normalize_observations: bool = False,
    dueling: bool = False,
    name: str = "q_network",
    image_encoder: str | None = None,
) -> keras.Model:
    """Observations -> one Q-value per discrete action, (B, n).

    A dueling network (Wang et al., 2016) computes Q = V + A - mean(A) from a state value V and
    action advantages A, each a linear head on the shared hidden layers.
    """
    inputs, features = observation_input(
        observation_space, normalize_observations, image_encoder=image_encoder
    )
    features = mlp(features, hidden_sizes, activation, "hidden")
    if not dueling:
        q_values = keras.layers.Dense(int(action_space.n), name="q_values")(features)
        return keras.Model(inputs, q_values, name=name)
    value = keras.layers.Dense(1, name="state_value")(features)
    advantages = keras.layers.Dense(int(action_space.n), name="advantages")(features)
    q_values = DuelingCombination(name="q_values")([value, advantages])
    return keras.Model(inputs, q_values, name=name)


@keras.saving.register_keras_serializable(package="gymserve")
class DuelingCombination(keras.layers.Layer):
    """[V (B, 1), A (B, n)] -> Q = V + A - mean(A): the advantages' mean is pinned to 0 so that V and A
    are identifiable."""

    def call(self, inputs):
        value, advantages = inputs
        return value + advantages - keras.ops.mean(advantages, axis=1, keepdims=True)


def deterministic_actor(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box,
    hidden_sizes: Sequence[int],
    activation: str,
    normalize_observations: bool,
) -> keras.Model:
    """Observations -> the pre-tanh action u, (B, d); the action is low + (tanh(u) + 1) / 2 * (high - low)."""
    inputs, features = observation_input(observation_space, normalize_observations)
    features = mlp(features, hidden_sizes, activation, "actor")
    outputs = keras.layers.Dense(int(np.prod(action_space.shape)), name="pre_tanh_action")(features)
    return keras.Model(inputs, outputs, name="actor")


def action_value_critics(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box,
    hidden_sizes: Sequence[int],
    activation: str,
    normalization: RunningNormalization | None,
    name: str,
    count: int = 2,
) -> keras.Model:
    """(observations, actions in [-1, 1]^d) -> (B, count): the values of `count` independent Q-networks.

    `normalization` is the actor's layer, shared so that every network sees the same statistics.
    """
    observations = keras.Input(shape=observation_space.shape, dtype="float32", name="observations")
    actions = keras.Input(shape=(int(np.prod(action_space.shape)),), dtype="float32", name="actions")
    features = observations if normalization is None else normalization(observations)
    if len(observation_space.shape) > 1:
        features = keras.layers.Flatten()(features)
    joint = keras.layers.Concatenate(name="observations_actions")([features, actions])
    q_values = [
        keras.layers.Dense(1, name=f"q{index}")(mlp(joint, hidden_sizes, activation, f"q{index}_hidden"))
        for index in range(1, count + 1)
    ]
    outputs = q_values[0] if count == 1 else keras.layers.Concatenate(name="q_values")(q_values)
    return keras.Model([observations, actions], outputs, name=name)


@keras.saving.register_keras_serializable(package="gymserve")
class BroadcastConstant(keras.layers.Layer):
    """A fixed (non-trainable) vector repeated for each row of its input: (B, ...) -> (B, size)."""

    def __init__(self, values: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.values = [float(value) for value in values]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        initializer = keras.initializers.Constant(self.values)
        self.constant = self.add_weight(
            shape=(len(self.values),), initializer=initializer, trainable=False, name="constant"
        )

    def call(self, features):
        batch = keras.ops.shape(features)[0]
        return keras.ops.broadcast_to(
            keras.ops.cast(self.constant, features.dtype), (batch, len(self.values))
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "values": self.values}


@dataclass(frozen=True)
class ActorCritic:
    """An actor and a critic over one input; `both` computes their outputs in one call."""

    actor: keras.Model  # observations -> distribution parameters
    critic: keras.Model  # observations -> state value (B,), or action values (B, n)
    both: keras.Model  # observations -> (distribution parameters, critic output)


def torso_initializer(orthogonal: bool) -> Initializer:
    """Orthogonal with gain sqrt(2), the gain that keeps ReLU activations' scale, or Glorot uniform."""
    if not orthogonal:
        return "glorot_uniform"
    return {"class_name": "Orthogonal", "config": {"gain": float(np.sqrt(2))}}


def actor_critic(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Discrete | gym.spaces.Box,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    shared_torso: bool = False,
    state_dependent_std: bool = False,
    initial_log_std: float = 0.0,
    normalize_observations: bool = False,
    action_values: bool = False,
    image_encoder: str | None = None,
    orthogonal_torso: bool = False,
) -> ActorCritic:
    """An actor with a categorical (logits) or Gaussian (mean | log_std) head, and a critic.

    Heads start orthogonal with small policy gain, so the first policy is near uniform (or near
    a zero mean); `state_dependent_std` computes log_std from the features instead of learning
    one value per action dimension. With `action_values` (Discrete only) the critic gives one
    Q-value per action instead of the state value. An `image_encoder` is shared by actor and critic.
    `orthogonal_torso` starts the convolutions and hidden layers orthogonal with gain sqrt(2), as
    Stable-Baselines3 and CleanRL do, instead of Keras' Glorot uniform.
    """
    initializer = torso_initializer(orthogonal_torso)
    inputs, features = observation_input(
        observation_space, normalize_observations, image_encoder=image_encoder, initializer=initializer
    )
    actor_name = "torso" if shared_torso else "actor"
    actor_features = mlp(features, hidden_sizes, activation, actor_name, initializer)
    critic_features = (
        actor_features if shared_torso else mlp(features, hidden_sizes, activation, "critic", initializer)
    )
    policy_outputs = _policy_head(actor_features, action_space, state_dependent_std, initial_log_std)
    if action_values:
        value = keras.layers.Dense(int(action_space.n), name="q_values")(critic_features)
    else:
        value = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0), name="value")(
            critic_features
        )
        value = keras.layers.Reshape((), name="state_value")(value)
    return ActorCritic(
        actor=keras.Model(inputs, policy_outputs, name="actor"),
        critic=keras.Model(inputs, value, name="critic"),
        both=keras.Model(inputs, [policy_outputs, value], name="actor_critic"),
    )


@dataclass(frozen=True)
class RecurrentActorCritic:
    """An LSTM actor-critic stepped one observation at a time with its state passed explicitly.

    Both models take `[observations (B, *obs_shape), state_0 (B, units), state_1 (B, units)]`, the
    LSTM's hidden and cell state; a zero state starts an episode.
    """

    actor: keras.Model  # -> [distribution parameters, next state_0, next state_1]
    both: keras.Model  # -> [distribution parameters, state value (B,), next state_0, next state_1]
    units: int


def recurrent_actor_critic(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Discrete | gym.spaces.Box,
    lstm_units: int,
    hidden_sizes: Sequence[int] = (),
    activation: str = "tanh",
    state_dependent_std: bool = False,
    initial_log_std: float = 0.0,
    normalize_observations: bool = False,
    orthogonal_torso: bool = False,
) -> RecurrentActorCritic:
    """Observations through `hidden_sizes` dense layers into an LSTM whose output feeds a policy
    head and a value head (one memory for both, so the critic sees what the actor remembers).
    `orthogonal_torso` as for `actor_critic` (the dense layers; the LSTM keeps its own)."""
    inputs, features = observation_input(observation_space, normalize_observations)
    features = mlp(features, hidden_sizes, activation, "encoder", torso_initializer(orthogonal_torso))
    state = [keras.Input(shape=(lstm_units,), dtype="float32", name=f"state_{index}") for index in range(2)]
    memory, next_state = keras.layers.LSTMCell(lstm_units, name="lstm")(features, state)
    policy_outputs = _policy_head(memory, action_space, state_dependent_std, initial_log_std)
    value = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0), name="value")(memory)
    value = keras.layers.Reshape((), name="state_value")(value)
    model_inputs = [inputs, *state]
    return RecurrentActorCritic(
        actor=keras.Model(model_inputs, [policy_outputs, *next_state], name="actor"),
        both=keras.Model(model_inputs, [policy_outputs, value, *next_state], name="actor_critic"),
        units=lstm_units,
    )


def _policy_head(
    features: keras.KerasTensor,
    action_space: gym.spaces.Discrete | gym.spaces.Box,
    state_dependent_std: bool,
    initial_log_std: float,
) -> keras.KerasTensor:
    # A config, not an instance: each layer builds its own initializer and so draws its own seed
    # (one Keras initializer instance gives every layer it initializes the same values).
    small = {"class_name": "Orthogonal", "config": {"gain": 0.01}}
    if isinstance(action_space, gym.spaces.Discrete):
        return keras.layers.Dense(int(action_space.n), kernel_initializer=small, name="logits")(features)
    if not isinstance(action_space, gym.spaces.Box):
        raise TypeError(f"policy heads exist for Discrete and Box action spaces, got {action_space}")
    size = int(np.prod(action_space.shape))
    mean = keras.layers.Dense(size, kernel_initializer=small, name="mean")(features)
    if state_dependent_std:
        log_std = keras.layers.Dense(
            size,
            kernel_initializer=small,
            bias_initializer=keras.initializers.Constant(initial_log_std),
            name="log_std",
        )(features)
    else:
        log_std = StateIndependentLogStd(size, initial_log_std, name="log_std")(features)
    return keras.layers.Concatenate(name="mean_log_std")([mean, log_std])


def normalization_layers(models: Iterable[keras.Model]) -> list[RunningNormalization]:
    """The distinct RunningNormalization layers inside `models`."""
    found: dict[int, RunningNormalization] = {}
    pending = list(models)
    while pending:
        layer = pending.pop()
        if isinstance(layer, RunningNormalization):
            found.setdefault(id(layer), layer)
        pending.extend(getattr(layer, "layers", ()))
    return list(found.values())


class NumpyForward:
    """The forward pass of a chain of Dense / RunningNormalization / Flatten layers, in numpy.

    Acting one observation at a time through TensorFlow costs far more than the arithmetic of a
    small MLP; this copy of the weights computes the same outputs in microseconds. Call `sync()`
    after the network's weights change.
    """

    def __init__(self, model: keras.Model):
        self._layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        for layer in self._layers:
            if not isinstance(layer, keras.layers.Dense | RunningNormalization | keras.layers.Flatten):
                raise TypeError(f"NumpyForward cannot compute layer {layer.name!r} ({type(layer).__name__})")
            if isinstance(layer, keras.layers.Dense) and layer.activation.__name__ not in _ACTIVATIONS:
                raise TypeError(f"NumpyForward cannot compute activation {layer.activation.__name__!r}")
        self._functions: list[Callable[[np.ndarray], np.ndarray]] = []
        self.sync()

    def sync(self) -> None:
        """Copy the current weights."""
        self._functions = [_numpy_function(layer) for layer in self._layers]

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        values = np.asarray(observations, np.float32)
        for function in self._functions:
            values = function(values)
        return values


def _numpy_function(layer: keras.layers.Layer) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(layer, keras.layers.Dense):
        kernel = layer.kernel.numpy()
        bias = layer.bias.numpy() if layer.use_bias else np.float32(0)
        activation = _ACTIVATIONS[layer.activation.__name__]
        return lambda values: activation(values @ kernel + bias)
    if isinstance(layer, RunningNormalization):
        mean = layer.mean.numpy()
        scale = np.sqrt(layer.variance.numpy() + np.float32(layer.epsilon))
        clip = np.float32(layer.clip)
        return lambda values: np.clip((values - mean) / scale, -clip, clip)
    return lambda values: values.reshape(len(values), -1)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda values: values,
    "relu": lambda values: np.maximum(values, np.float32(0)),
    "tanh": np.tanh,
}
