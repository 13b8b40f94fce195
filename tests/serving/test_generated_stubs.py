"""The committed protobuf and gRPC modules are exactly what the .proto file generates today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.generate_protos import PROTO_FILES, SOURCE_ROOT, generated_files


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path):
    # In a fresh process: protoc and TensorFlow (imported by other tests) must not share one.
    subprocess.run([sys.executable, "-m", "tools.generate_protos", str(tmp_path)], check=True)
    for proto_file in PROTO_FILES:
        for name in generated_files(proto_file):
            fresh, committed = (tmp_path / name).read_bytes(), (SOURCE_ROOT / name).read_bytes()
            assert fresh == committed, f"{name} is stale: run `python -m tools.generate_protos`"


def test_proto_package_and_enums_follow_the_conventions():
    from gymserve.serving.client.protos import SERVICE_NAME, policy_service_pb2

    assert SERVICE_NAME == "gymserve.serving.v1.PolicyService"
    for enum in policy_service_pb2.DESCRIPTOR.enum_types_by_name.values():
        assert enum.values[0].number == 0 and enum.values[0].name.endswith("_UNSPECIFIED"), enum.name
    for method in policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"
    for response in (policy_service_pb2.ActResponse, policy_service_pb2.GetPolicyResponse):
        assert {"policy_name", "policy_version"} <= set(response.DESCRIPTOR.fields_by_name)


def test_the_wire_action_modes_are_the_policy_action_modes():
    from gymserve.policies import ActionMode
    from gymserve.serving.client.action_modes import MODE_NUMBERS, mode_name, mode_number

    assert set(MODE_NUMBERS) == {mode.value for mode in ActionMode}
    for mode in ActionMode:
        assert mode_name(mode_number(mode)) == mode.value
    assert mode_name(0) == "greedy"  # ACTION_MODE_UNSPECIFIED
