"""Exporting a policy: a directory of deployable models plus `policy.json`.

policy_export.py   export_policy and convert_export: the formats, staging, hashes, policy.json
savedmodel.py      the SavedModel, whose signatures take only what a robot has
onnx_export.py     the ONNX model (opset 17), post-processing inside the graph
tflite_export.py   LiteRT models (float32 and quantized variants), converted from the SavedModel
triton_config.py   config.pbtxt beside an export into NAME/VERSION, for Triton and KServe

Importing this package imports TensorFlow (the exporters need it).
"""

from gymserve.policies.export.policy_export import convert_export, export_policy

__all__ = ["convert_export", "export_policy"]
