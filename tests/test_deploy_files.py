"""deploy/: the Kubernetes and KServe files validate offline and run `gymserve serve` as our parser reads it.

Core Kubernetes kinds are checked by kubernetes-validate against the schemas it ships. KServe's kinds
are custom resources outside those schemas: their fields are checked with a JSON schema written from
KServe's ServingRuntime and InferenceService CRDs (the fields these files use), and each runtime
container, a core Container, by kubernetes-validate inside a Pod.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gymserve.cli import build_parser
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import _CANCEL_SECONDS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBERNETES_VERSION = kubernetes_validate.latest_version()
KSERVE_KINDS = {"ServingRuntime", "InferenceService"}

_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
_METADATA = {"type": "object", "required": ["name"], "properties": {"name": _NAME}}
KSERVE_SCHEMAS = {
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["containers", "supportedModelFormats"],
                "additionalProperties": False,
                "properties": {
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "supportedModelFormats": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "version": {"type": "string"},
                                "autoSelect": {"type": "boolean"},
                                "priority": {"type": "integer", "minimum": 1},
                            },
                        },
                    },
                    "protocolVersions": {
                        "type": "array",
                        "items": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
                    },
                    "containers": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                    "multiModel": {"type": "boolean"},
                    "disabled": {"type": "boolean"},
                },
            },
        },
    },
    ("serving.kserve.io/v1beta1", "InferenceService"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["predictor"],
                "properties": {
                    "predictor": {
                        "type": "object",
                        "properties": {
                            "model": {
                                "type": "object",
                                "required": ["modelFormat"],
                                "additionalProperties": False,
                                "properties": {
                                    "modelFormat": {
                                        "type": "object",
                                        "required": ["name"],
                                        "properties": {
                                            "name": {"type": "string"},
                                            "version": {"type": "string"},
                                        },
                                    },
                                    "runtime": _NAME,
                                    "protocolVersion": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
                                    "storageUri": {"type": "string"},
                                },
                            }
                        },
                    }
                },
            },
        },
    },
}


def documents() -> list[dict]:
    return [
        document
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
    ]


def by_kind(kind: str) -> dict:
    (document,) = [document for document in documents() if document["kind"] == kind]
    return document


def parse_serve(arguments: list[str]) -> argparse.Namespace:
    assert arguments[0] == "serve"
    return build_parser("serve").parse_args(arguments)


@pytest.mark.parametrize(
    "document",
    [document for document in documents() if document["kind"] not in KSERVE_KINDS],
    ids=lambda document: document["kind"],
)
def test_kubernetes_files_validate_against_the_kubernetes_schemas(document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kind", sorted(KSERVE_KINDS))
def test_kserve_files_validate_against_the_fields_of_kserves_crds(kind):
    document = by_kind(kind)
    jsonschema.validate(document, KSERVE_SCHEMAS[document["apiVersion"], kind])
    for container in document["spec"].get("containers", []):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "check"},
            "spec": {"containers": [container]},
        }
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_the_kserve_files_name_each_other_and_speak_v2():
    runtime, service = by_kind("ServingRuntime"), by_kind("InferenceService")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in [
        entry["name"] for entry in runtime["spec"]["supportedModelFormats"]
    ]
    assert runtime["spec"]["protocolVersions"] == ["v2", "grpc-v2"]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    (container,) = runtime["spec"]["containers"]
    arguments = parse_serve(container["args"])
    assert arguments.repository == "/mnt/models", "where KServe's storage initializer puts storageUri"
    assert arguments.address.endswith(f":{container['ports'][0]['containerPort']}")


def test_the_deployment_runs_serve_with_arguments_our_parser_reads():
    (container,) = by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    arguments = parse_serve(container["args"])
    assert arguments.address == "0.0.0.0:8500"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["grpc"] == 8500
    assert arguments.metrics_address == f"0.0.0.0:{ports['metrics']}"


def test_the_deployments_http_port_is_the_one_serve_listens_on():
    (container,) = by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert parse_serve(container["args"]).http_address == f"0.0.0.0:{ports['http']}"


def test_the_deployment_probes_health_mounts_the_repository_and_outlasts_the_grace_period():
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    arguments = parse_serve(container["args"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 8500
    (mount,) = container["volumeMounts"]
    assert (mount["mountPath"], mount["readOnly"]) == (arguments.repository, True)
    (volume,) = pod["volumes"]
    assert volume["name"] == mount["name"]
    assert (
        volume["persistentVolumeClaim"]["claimName"] == by_kind("PersistentVolumeClaim")["metadata"]["name"]
    )
    grace = arguments.grace_period if arguments.grace_period is not None else ServerConfig().grace_period
    assert pod["terminationGracePeriodSeconds"] > grace + _CANCEL_SECONDS
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_the_service_and_the_autoscaler_point_at_the_deployment():
    deployment, service, autoscaler = (
        by_kind("Deployment"),
        by_kind("Service"),
        by_kind("HorizontalPodAutoscaler"),
    )
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    named_ports = {port["name"] for port in container["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} == named_ports
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_the_dockerfile_copies_files_that_exist_and_installs_the_serve_extra():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    sources = [
        source
        for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE)
        for source in line.split()[:-1]
    ]
    assert sources, "the Dockerfile copies the project in"
    for source in sources:
        assert (DEPLOY.parent / source).exists(), source
    assert 'pip install --no-cache-dir ".[serve]"' in dockerfile
