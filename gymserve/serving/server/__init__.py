"""The policy server: one gRPC server over a repository of policies, speaking every protocol in apis/.

policy_server.py     PolicyServer: start, serve, reload, drain
config.py            ServerConfig from flags, GYMSERVE_* variables and a file
served_policies.py   name -> version -> Policy, or why it failed; reloader.py keeps it in step with disk
policy_calls.py      what every protocol does around a policy call; batching.py shares model calls
request_limits.py    sizes a request may declare, checked by every protocol before decoding
rpc_threads.py, stream_limits.py, raw_requests.py, auth.py, handlers.py   capacity, parsing, tokens
logs.py, echo.py     structured logs, and client strings cut to a safe size
"""

from __future__ import annotations

from typing import Any

from gymserve.common.extras import require_extra
from gymserve.common.moved_modules import moved_names

# Checked before any server module imports them, and without importing them (config and logs stay cheap).
require_extra("serve", "the policy server")


_moved_names = moved_names(
    __name__,
    "gymserve.serving.server.policy_server",
    frozenset(
        {"SERVING", "NOT_SERVING", "server_options", "configured_reloader", "load_configured_policies"}
    ),
)


def __getattr__(name: str) -> Any:
    # `from gymserve.serving.server import PolicyServer` keeps working without making every
    # import of a server module (config, logs) load the whole server; the other names of the
    # module this package replaced still import, with a warning.
    if name == "PolicyServer":
        from gymserve.serving.server.policy_server import PolicyServer

        return PolicyServer
    return _moved_names(name)
