"""Optional parts of gymserve, the extra that installs each, and one clear line when one is missing.

The core install (numpy, gymnasium, grpcio, protobuf, pydantic) gives the client, the CartPole
environments and the policy API. Everything heavier comes with an extra (from a clone,
`pip install ".[bullet]"`; pyproject.toml lists what each installs):

    bullet   pybullet: Minitaur and the Bullet cart-poles
    serve    the policy server (onnxruntime backend, health, reflection, metrics, config files)
    train    TensorFlow: training, export, SavedModel loading, plots, videos
    tune     Optuna studies (with train)
    ray      Ray actors (with train)
    litert   ai-edge-litert: running LiteRT (.tflite) policy models
    atari    ale-py (with the game ROMs) and OpenCV: the Atari environments
    all      all of the above
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
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
    "tqdm": "train",
    "tensorflow_serving": "train",
    "onnxruntime": "serve",
    "grpc_health": "serve",
    "grpc_reflection": "serve",
    "prometheus_client": "serve",
    "pydantic_settings": "serve",
    "yaml": "serve",
    "aiohttp": "serve",
    "orjson": "serve",
    "optuna": "tune",
    "ray": "ray",
    "ai_edge_litert": "litert",
    "ale_py": "atari",
    "cv2": "atari",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""

    def __init__(self, module: str, extra: str, purpose: str):
        self.extra = extra
        super().__init__(
            f'{purpose} needs {module}, which is not installed: pip install "gymserve[{extra}]"',
            name=module,
        )


def require(module: str, purpose: str, error_type: type[MissingExtraError] = MissingExtraError) -> ModuleType:
    """Import `module`, or raise `error_type` saying which extra installs it and what needs it."""
    with extra_imports(purpose, error_type):
        return importlib.import_module(module)


@contextmanager
def extra_imports(purpose: str, error_type: type[MissingExtraError] = MissingExtraError) -> Iterator[None]:
    """Turn a failed import of an optional module inside the block into `error_type`.

    An import that fails on a module of no extra (a broken install) is raised as it is.
    """
    try:
        yield
    except ModuleNotFoundError as error:
        missing = missing_extra(error, purpose, error_type)
        if missing is None:
            raise
        raise missing from None


def require_extra(extra: str, purpose: str) -> None:
    """Raise `MissingExtraError` for the first module of `extra` that is not installed, importing none."""
    for module, its_extra in EXTRA_OF_MODULE.items():
        if its_extra == extra and not installed(module):
            raise MissingExtraError(module, extra, purpose)


def missing_extra(
    error: ModuleNotFoundError, purpose: str, error_type: type[MissingExtraError] = MissingExtraError
) -> MissingExtraError | None:
    """The `MissingExtraError` for an import that failed on an optional module, else None."""
    top = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    return error_type(top, extra, purpose) if extra else None


def installed(module: str) -> bool:
    """Whether top-level `module` is installed, found without importing it (TensorFlow takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # an import hook that refuses the module
        return False
