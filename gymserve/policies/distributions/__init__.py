"""Action distributions: what a policy network's outputs mean, in numpy and in TensorFlow.

One module per kind, each with one class holding both forms (see `base`): the numpy form acts
(`mode`, `sample`, `log_prob`, `entropy`), its nested `Graph` trains and is built into the
exported SavedModel and ONNX graphs. Sampling for acting stays in numpy, driven by a seeded
generator, so every backend draws the same actions for the same seed.

| kind                  | class                | network outputs (batch, ...)        |
|-----------------------|----------------------|-------------------------------------|
| "categorical"         | `Categorical`        | logits (n) for `Discrete(n)`        |
| "squashed_gaussian"   | `SquashedGaussian`   | [pre-squash mean, log_std] (2 d)    |
| "noisy_deterministic" | `NoisyDeterministic` | [pre-squash action, noise_std] (2 d)|
| "deterministic"       | `Deterministic`      | the action (d)                      |
| "gaussian"            | `Normal`             | [mean, log_std] (2 d), unsquashed   |

Every kind is exported. `Uniform` (a random policy's) is not read from network outputs.
Importing this package does not import TensorFlow; the first `Graph` call does.
"""

from gymserve.policies.distributions.base import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    ActorDistributionKind,
    Distribution,
    DistributionGraph,
    DistributionKind,
    squash,
)
from gymserve.policies.distributions.categorical import Categorical
from gymserve.policies.distributions.deterministic import Deterministic
from gymserve.policies.distributions.noisy_deterministic import NoisyDeterministic
from gymserve.policies.distributions.normal import Normal
from gymserve.policies.distributions.registry import (
    KINDS,
    default_distribution_kind,
    distribution_class,
    distribution_from_outputs,
    distribution_from_parameters,
    distribution_graph,
)
from gymserve.policies.distributions.squashed_gaussian import SquashedGaussian
from gymserve.policies.distributions.uniform import Uniform

__all__ = [
    "KINDS",
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "ActorDistributionKind",
    "Categorical",
    "Deterministic",
    "Distribution",
    "DistributionGraph",
    "DistributionKind",
    "NoisyDeterministic",
    "Normal",
    "SquashedGaussian",
    "Uniform",
    "default_distribution_kind",
    "distribution_class",
    "distribution_from_outputs",
    "distribution_from_parameters",
    "distribution_graph",
    "squash",
]
