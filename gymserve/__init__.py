"""gymserve: reinforcement-learning policies from Gymnasium environment to gRPC production.

Importing the package registers its environments with Gymnasium and nothing heavier:
TensorFlow, onnxruntime and pybullet are imported only by the modules that use them, so a
robot can run the gRPC client from a minimal install.
"""

__version__ = "0.1.0"

from gymserve.common import moved_modules

moved_modules.install()

try:
    from gymserve.envs import register_envs
except ModuleNotFoundError as error:
    # Without Gymnasium (gymserve beside grpcio, protobuf and numpy alone) the client in
    # `gymserve.serving` still works, and there are no envs to register.
    if error.name != "gymnasium":
        raise
else:
    register_envs()
