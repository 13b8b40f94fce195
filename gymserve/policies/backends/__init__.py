"""The runtimes an exported policy runs on, chosen by `gymserve.policies.load`.

onnx_runner.py        onnxruntime (the serve extra)
savedmodel_runner.py  TensorFlow's SavedModel signatures (the train extra)
tflite_runner.py      LiteRT (the litert extra); no TensorFlow
"""
