"""Optional parts of gymserve, the extra that installs each, and one clear line when one is missing.

The core install (numpy, gymnasium, grpcio, protobuf, pydantic) gives the client, the CartPole
environments and the policy API. Everything heavier comes with an extra:

    pip install "gymserve[bullet]"   pybullet: Minitaur and the Bullet cart-poles
    pip install "gymserve[serve]"    the policy server (onnxruntime backend, health, metrics)
    pip install "gymserve[train]"    TensorFlow: training, export, SavedModel loading, plots, videos
    pip install "gymserve[tune]"     Optuna studies (with train)
    pip install "gymserve[ray]"      Ray actors (with train)
    pip install "gymserve[all]"      all of the above
"""

from __future__ import annotations

import importlib
from types import ModuleType

# The extra that installs each optional top-level module.
EXTRA_OF_MODULE: dict[str, str] = {
    "pybullet": "bullet",
    "pybullet_data": "bullet",
    "tensorflow": "train",
    "keras": "train",
    "tf2onnx": "train",
    "onnx": "train",
    "matplotlib": "train",
    "imageio": "train",
    "imageio_ffmpeg": "train",
    "tensorflow_serving": "train",
    "onnxruntime": "serve",
    "grpc_health": "serve",
    "grpc_reflection": "serve",
    "prometheus_client": "serve",
    "pydantic_settings": "serve",
    "yaml": "serve",
    "optuna": "tune",
    "ray": "ray",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""

    def __init__(self, module: str, extra: str, purpose: str):
        self.extra = extra
        super().__init__(
            f'{purpose} needs {module}, which is not installed: pip install "gymserve[{extra}]"',
            name=module,
        )


def require(module: str, purpose: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` saying which extra installs it and what needs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = (error.name or module).split(".")[0]
        extra = EXTRA_OF_MODULE.get(top)
        if extra is None or top != module.split(".")[0]:
            raise
        raise MissingExtraError(top, extra, purpose) from None


def missing_extra(error: ModuleNotFoundError, purpose: str) -> MissingExtraError | None:
    """The `MissingExtraError` for an import that failed on an optional module, else None."""
    top = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    return MissingExtraError(top, extra, purpose) if extra else None
