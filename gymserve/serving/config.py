"""Server configuration: one pydantic model filled from flags, GYMSERVE_* variables and a file.

Precedence, highest first: command-line flags, environment variables, the JSON/YAML file,
then the defaults below. Each field reads the variable `GYMSERVE_<FIELD>` (for example
`GYMSERVE_ADDRESS=0.0.0.0:8500`, `GYMSERVE_AUTH_TOKEN=...`); `GYMSERVE_POLICIES` is a JSON
object of name -> export path. Secrets belong in the environment or a file, not on a command
line that `ps` shows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "GYMSERVE_"
DEFAULT_ADDRESS = "127.0.0.1:8500"
_JSON_FIELDS = frozenset({"policies"})  # fields whose environment variable holds JSON


class ServerConfigError(ValueError):
    """A configuration that cannot start a server; the message names the field and the problem."""


class ServerConfig(BaseModel):
    """Everything `gymserve serve` can be told."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(
        DEFAULT_ADDRESS, description="HOST:PORT to listen on; 0.0.0.0 opens it to the network"
    )
    policies: dict[str, Path] = Field(
        default_factory=dict, description="policy name -> export or versions dir"
    )
    repository: Path | None = Field(None, description="directory of policies laid out as NAME/VERSION/")
    backend: Literal["onnx", "tensorflow"] = Field("onnx", description="runtime that executes the exports")
    workers: int = Field(
        16,
        ge=2,
        le=1024,
        description="RPC threads; each open StreamAct holds one, and one is kept for unary calls",
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="largest request or response accepted"
    )
    max_batch_size: int = Field(4096, ge=1, description="most observations in one request")
    tls_certificate: Path | None = Field(None, description="PEM certificate chain; enables TLS with the key")
    tls_private_key: Path | None = Field(None, description="PEM private key of the certificate")
    auth_token: SecretStr | None = Field(
        None, description="when set, every call but health checks needs 'authorization: Bearer <token>'"
    )
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="time in-flight calls get to finish on shutdown"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("address")
    @classmethod
    def _check_address(cls, address: str) -> str:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"address {address!r} is not HOST:PORT (for example {DEFAULT_ADDRESS})")
        return address

    @model_validator(mode="after")
    def _check_tls_pair(self) -> ServerConfig:
        if (self.tls_certificate is None) != (self.tls_private_key is None):
            raise ValueError("TLS needs both tls_certificate and tls_private_key")
        return self

    @property
    def max_streams(self) -> int:
        """Open StreamAct calls allowed at once: all threads but one, which stays free for unary calls."""
        return self.workers - 1


def load_server_config(
    config_file: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Merge defaults < `config_file` < GYMSERVE_* variables < `flags` (None values are unset flags)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_file(Path(config_file)))
    values.update(_read_environment(os.environ if environ is None else environ))
    values.update({name: value for name, value in (flags or {}).items() if value is not None})
    try:
        return ServerConfig.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in error.errors()
        )
        raise ServerConfigError(f"invalid server configuration: {problems}") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ServerConfigError(f"cannot read config file {path}: {error.strerror}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ServerConfigError(f"config file {path} is not valid JSON: {error}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ServerConfigError(f"config file {path} is not valid YAML: {error}") from None
    else:
        raise ServerConfigError(f"config file {path} must end in .json, .yaml or .yml")
    if not isinstance(values, dict):
        raise ServerConfigError(
            f"config file {path} must hold a mapping of settings, got {type(values).__name__}"
        )
    return values


def _read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ServerConfig.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if name in _JSON_FIELDS:
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError:
                raise ServerConfigError(
                    f"{ENV_PREFIX}{name.upper()} must be a JSON object, got {raw!r}"
                ) from None
        else:
            values[name] = raw
    return values
