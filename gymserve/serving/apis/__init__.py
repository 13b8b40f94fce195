"""The protocols the policy server speaks, one module each, registered in `PROTOCOLS`.

policy_service.py   gymserve's own `gymserve.serving.v1.PolicyService`
tf_serving.py       TensorFlow Serving's `PredictionService` (tf_prediction_service.py, tensor_protos.py)
"""
