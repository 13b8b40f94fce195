"""Server configuration: one pydantic-settings model filled from flags, GYMSERVE_* variables and a file.

Precedence, highest first: command-line flags, environment variables, the JSON/YAML file
(`config_file`, or `GYMSERVE_CONFIG_FILE`), then the defaults below. Each field reads the
variable `GYMSERVE_<FIELD>` (for example `GYMSERVE_ADDRESS=0.0.0.0:8500`,
`GYMSERVE_AUTH_TOKEN=...`); mappings such as `GYMSERVE_POLICIES` hold JSON. Secrets belong in
the environment or a file, not on a command line that `ps` shows. The `serve` command's flags
and their help are made from these fields, so the two cannot drift apart.

Fields that were renamed keep their old names working in flags, files and GYMSERVE_* variables,
with a FutureWarning naming the new one (`RENAMED_FIELDS`); the new name wins where both are set.

Per-policy settings choose which versions are served and name versions by label:

    policy_settings:
      cartpole:
        versions: {latest: 2}          # or: all, or {specific: [3, 5]}; default {latest: 1}
        labels: {stable: 3, canary: 5}
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
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
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from gymserve.common.validation_errors import describe_validation_error

ENV_PREFIX = "GYMSERVE_"
DEFAULT_ADDRESS = "127.0.0.1:8500"
DEFAULT_METRICS_ADDRESS = "127.0.0.1:9464"
# Old field name -> current name. The dynamic batching fields share one prefix, apart from the
# per-request limit, which has nothing to do with batching.
RENAMED_FIELDS: dict[str, str] = {
    "max_batch_size": "max_request_observations",
    "batch_max_size": "batching_max_size",
    "batch_timeout_micros": "batching_timeout_micros",
    "max_enqueued_batches": "batching_max_enqueued",
    "num_batch_threads": "batching_threads",
}


class ServerConfigError(ValueError):
    """A configuration that cannot start a server; the message names the field and the problem."""


class UnservablePolicyError(ServerConfigError):
    """A policy named explicitly (not found in a repository) that cannot serve: no path, no version loads."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatestVersions(_Strict):
    """Serve the newest `latest` versions; older ones keep serving while newer ones fail to load."""

    latest: int = Field(1, ge=1, description="how many of the newest versions to serve")


class SpecificVersions(_Strict):
    """Serve exactly these version numbers (those present on disk)."""

    specific: list[int] = Field(min_length=1, description="version numbers to serve")


AllVersions = Literal["all"]


class PolicySettings(_Strict):
    """Which versions of one policy are served, and labels that requests may use instead of numbers."""

    versions: LatestVersions | SpecificVersions | AllVersions = Field(
        default_factory=LatestVersions, description="{latest: N}, {specific: [..]} or all"
    )
    labels: dict[str, int] = Field(
        default_factory=dict, description="label -> version; labelled versions are always loaded"
    )


@dataclass(frozen=True)
class BatchingSettings:
    """Dynamic batching, as the `ServerConfig` fields of the same names set it (see `serving.batching`)."""

    batching_max_size: int
    batching_timeout_micros: int
    batching_max_enqueued: int
    batching_threads: int


class ServerConfig(BaseSettings):
    """Everything `gymserve serve` can be told."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    config_file: Path | None = Field(
        None, description="JSON or YAML file of settings; flags and GYMSERVE_* variables override it"
    )
    address: str = Field(
        DEFAULT_ADDRESS, description="HOST:PORT to listen on; 0.0.0.0 opens it to the network"
    )
    policies: dict[str, Path] = Field(
        default_factory=dict, description="policy name -> export or versions dir"
    )
    repository: Path | None = Field(None, description="directory of policies laid out as NAME/VERSION/")
    policy_settings: dict[str, PolicySettings] = Field(
        default_factory=dict, description="policy name -> version policy and labels (file or JSON)"
    )
    backend: Literal["onnx", "tensorflow"] = Field("onnx", description="runtime that executes the exports")
    workers: int = Field(
        16, ge=2, le=1024, description="RPC threads; open streams may hold three quarters of them"
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="largest request or response, and the most bytes one request's tensors may declare",
    )
    max_request_observations: int = Field(
        4096, ge=1, description="most observations in one request (a larger batch is refused)"
    )
    batching_max_size: int = Field(
        0, ge=0, description="dynamic batching: most observations merged into one model call; 0 is off"
    )
    batching_timeout_micros: int = Field(
        0, ge=0, description="dynamic batching: microseconds a batch waits for more calls to join"
    )
    batching_max_enqueued: int = Field(
        64, ge=1, description="dynamic batching: batches waiting per policy version before calls are refused"
    )
    batching_threads: int = Field(
        1, ge=1, description="dynamic batching: batches running at once over all policies"
    )
    stream_idle_timeout: float = Field(
        60.0, gt=0, description="seconds a stream may send nothing before the server closes it"
    )
    max_health_watches: int = Field(
        4,
        ge=1,
        le=1024,
        description="health Watch streams open at once, apart from the workers and stream slots",
    )
    health_watch_idle_timeout: float = Field(
        60.0, gt=0, description="seconds a health Watch may see no status change before the server closes it"
    )
    poll_interval: float = Field(
        1.0, ge=0, description="seconds between scans for new, changed or removed versions; 0 disables"
    )
    allow_space_changes: bool = Field(
        False,
        description="serve a new version whose observation or action space differs from the version "
        "a policy serves by default (otherwise it is FAILED, naming both spaces)",
    )
    metrics_address: str | None = Field(
        None,
        description=f"HOST:PORT serving Prometheus metrics over HTTP (flag alone: {DEFAULT_METRICS_ADDRESS})",
    )
    tls_certificate: Path | None = Field(None, description="PEM certificate chain; enables TLS with the key")
    tls_private_key: Path | None = Field(None, description="PEM private key of the certificate")
    auth_token: SecretStr | None = Field(
        None, description="when set, every call but health checks needs 'authorization: Bearer <token>'"
    )
    grace_period: float = Field(
        10.0, ge=0, description="seconds in-flight calls get to finish on SIGTERM/SIGINT"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="least severe logged")

    @field_validator("address", "metrics_address")
    @classmethod
    def _check_address(cls, address: str | None) -> str | None:
        if address is None:
            return None
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
    def batching(self) -> BatchingSettings | None:
        """The dynamic batching settings, or None when batching is off."""
        if self.batching_max_size == 0:
            return None
        return BatchingSettings(
            self.batching_max_size,
            self.batching_timeout_micros,
            self.batching_max_enqueued,
            self.batching_threads,
        )

    @property
    def max_streams(self) -> int:
        """Open streams allowed at once: a quarter of the threads (at least one) stays for unary calls."""
        return self.workers - max(1, self.workers // 4)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init arguments) over GYMSERVE_* variables over the config file, each with old names."""
        config_file = init_settings.init_kwargs.get("config_file") or env_settings().get("config_file")
        sources = [
            _RenamedFields(settings_cls, init_settings, "argument"),
            env_settings,
            _RenamedVariables(settings_cls),
        ]
        if config_file is not None:
            path = Path(config_file)
            sources.append(_RenamedFields(settings_cls, _file_source(settings_cls, path), f"in {path}"))
        return tuple(sources)


def load_server_config(
    config_file: str | Path | None = None, flags: Mapping[str, Any] | None = None
) -> ServerConfig:
    """Layer defaults < `config_file` < GYMSERVE_* variables < `flags` (None values are unset flags)."""
    values = {name: value for name, value in (flags or {}).items() if value is not None}
    if config_file is not None:
        values["config_file"] = config_file
    try:
        return ServerConfig(**values)
    except ServerConfigError:
        raise
    except ValidationError as error:
        raise ServerConfigError(f"invalid server configuration: {describe_validation_error(error)}") from None
    except (ValueError, OSError) as error:  # GYMSERVE_* variables of mappings that are not JSON
        raise ServerConfigError(f"invalid server configuration: {error}; mappings are JSON objects") from None


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ServerConfigError(f"config file {path} must end in .json, .yaml or .yml")
    if not path.is_file():
        raise ServerConfigError(f"cannot read config file {path}: no such file")
    try:
        if suffix == ".json":
            return JsonConfigSettingsSource(settings_cls, json_file=path)
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    except Exception as error:  # the sources parse on construction: JSON and YAML syntax errors
        kind = suffix[1:].upper().replace("YML", "YAML")
        raise ServerConfigError(f"config file {path} is not a {kind} mapping of settings: {error}") from None


class _RenamedFields(PydanticBaseSettingsSource):
    """The values of another source with each old field name (`RENAMED_FIELDS`) under its new one."""

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource, kind: str):
        super().__init__(settings_cls)
        self._source = source
        self._kind = kind  # how a warning names the setting: "argument", "in config.yaml"

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the wrapped source reads the values

    def __call__(self) -> dict[str, Any]:
        values = dict(self._source())
        for old, new in RENAMED_FIELDS.items():
            if old not in values:
                continue
            if new in values:
                raise ServerConfigError(f"{old} was renamed {new}; give only {new} ({self._kind})")
            message = f"setting {old} ({self._kind}) is deprecated; it is now called {new}"
            warnings.warn(message, FutureWarning, stacklevel=2)
            values[new] = values.pop(old)
        return values


class _RenamedVariables(PydanticBaseSettingsSource):
    """GYMSERVE_<OLD NAME> variables of renamed fields; the GYMSERVE_<NEW NAME> ones come first."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for old, new in RENAMED_FIELDS.items():
            variable = ENV_PREFIX + old.upper()
            if variable in os.environ:
                message = f"{variable} is deprecated; set {ENV_PREFIX + new.upper()} instead"
                warnings.warn(message, FutureWarning, stacklevel=2)
                values[new] = os.environ[variable]
        return values
