"""gymserve: reinforcement-learning policies from Gymnasium environment to gRPC production.

Importing the package registers its environments with Gymnasium and nothing heavier:
TensorFlow, onnxruntime and pybullet are imported only by the modules that use them, so a
robot can run the gRPC client from a minimal install.
"""

__version__ = "0.1.0"

from gymserve.envs import register_envs

register_envs()
