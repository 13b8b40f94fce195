"""The committed protobuf and gRPC modules are exactly what the .proto file generates today."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tools.generate_protos import PROTOS, SOURCE_ROOT, generated_files


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path):
    # In a fresh process: protoc and TensorFlow (imported by other tests) must not share one.
    subprocess.run([sys.executable, "-m", "tools.generate_protos", str(tmp_path)], check=True)
    for proto_file in PROTOS:
        for name in generated_files(proto_file):
            fresh, committed = (tmp_path / name).read_bytes(), (SOURCE_ROOT / name).read_bytes()
            assert fresh == committed, f"{name} is stale: run `python -m tools.generate_protos`"


def test_a_third_party_package_is_generated_into_its_own_python_package(tmp_path: Path):
    protos = tmp_path / "protos" / "inference"
    protos.mkdir(parents=True)
    (protos / "model_config.proto").write_text(
        'syntax = "proto3";\npackage inference;\nmessage ModelConfig { string name = 1; }\n'
    )
    (protos / "grpc_service.proto").write_text(
        textwrap.dedent("""\
            syntax = "proto3";
            package inference;
            import "inference/model_config.proto";
            message ModelConfigRequest { string name = 1; }
            message ModelConfigResponse { ModelConfig config = 1; }
            service GRPCInferenceService {
              rpc ModelConfig(ModelConfigRequest) returns (ModelConfigResponse);
            }
            """)
    )
    script = textwrap.dedent("""\
        import json, sys
        from pathlib import Path
        from tools.generate_protos import generate

        tmp = Path(sys.argv[1])
        package = {"inference/model_config.proto": "vendor.apis.inference",
                   "inference/grpc_service.proto": "vendor.apis.inference"}
        written = generate(tmp / "out", package, tmp / "protos")
        sys.path.insert(0, str(tmp / "out"))
        from vendor.apis.inference import grpc_service_pb2, grpc_service_pb2_grpc

        response = grpc_service_pb2.ModelConfigResponse(config={"name": "cartpole"})
        service = grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
        print(json.dumps({
            "written": [str(path.relative_to(tmp / "out")) for path in written],
            "file": grpc_service_pb2.DESCRIPTOR.name,
            "service": service.full_name,
            "parsed": type(response).FromString(response.SerializeToString()).config.name,
            "stub": hasattr(grpc_service_pb2_grpc, "GRPCInferenceServiceStub"),
            "modules": sorted(name for name in sys.modules if name.split(".")[0] == "inference"),
        }))
        """)
    # In a fresh process: protoc and TensorFlow (imported by other tests) must not share one.
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=SOURCE_ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "written": [
            "vendor/apis/inference/model_config_pb2.py",
            "vendor/apis/inference/model_config_pb2_grpc.py",
            "vendor/apis/inference/grpc_service_pb2.py",
            "vendor/apis/inference/grpc_service_pb2_grpc.py",
        ],
        "file": "inference/grpc_service.proto",
        "service": "inference.GRPCInferenceService",
        "parsed": "cartpole",
        "stub": True,
        "modules": [],
    }
    generated = (tmp_path / "out/vendor/apis/inference/grpc_service_pb2_grpc.py").read_text()
    assert "from vendor.apis.inference import grpc_service_pb2 as" in generated


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
