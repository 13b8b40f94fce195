"""docs/adding_a_protocol.md's toy protocol, registered by its one line, serves behind the token."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import grpc
import pytest
from serving_support import standard_policies, start_server, status_without_token

from gymserve.serving import apis

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "adding_a_protocol.md"
MODULE = "gymserve.serving.apis.policy_names"
TOKEN = "s3cret-token"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_the_page_s_protocol_is_served_by_adding_its_registration_line(monkeypatch):
    module_block, registry_block, client_block = python_blocks(PAGE.read_text(encoding="utf-8"))
    module = types.ModuleType(MODULE)
    monkeypatch.setitem(sys.modules, MODULE, module)
    exec(compile(module_block, f"{PAGE.name} block 1", "exec"), module.__dict__)
    registry: dict = {}
    exec(compile(registry_block, f"{PAGE.name} block 2", "exec"), registry)
    assert registry["PROTOCOLS"] == [*apis.PROTOCOLS, f"{MODULE}:PROTOCOL"]  # one new line
    monkeypatch.setattr(apis, "PROTOCOLS", registry["PROTOCOLS"])
    client: dict = {}
    exec(compile(client_block, f"{PAGE.name} block 3", "exec"), client)

    server = start_server(standard_policies(), auth_token=TOKEN)
    try:
        assert [protocol.name for protocol in server.protocols][-1] == "policy_names"
        assert client["policy_names"](server.address, TOKEN) == server.policies.names()
        with pytest.raises(grpc.RpcError) as refused:
            client["policy_names"](server.address, "wrong-token")
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with grpc.insecure_channel(server.address) as channel:
            assert [status_without_token(channel, rpc) for rpc in module.PROTOCOL.rpcs] == [
                grpc.StatusCode.UNAUTHENTICATED
            ]
    finally:
        server.stop(grace=0)


def test_the_api_package_links_the_page():
    assert "docs/adding_a_protocol.md" in apis.__doc__
