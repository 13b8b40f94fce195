"""Exporting an `ActorPolicy` to a directory of deployable models plus `policy.json`.

Every distribution kind is exported, with actions clipped to the bounds; other policies (random,
scripted, mixtures, wrappers) and `clip=False` actors are refused with the reason.

    export_policy(policy, "exports/cartpole", metadata={"env_id": "gymserve/CartPole-v1"})
    convert_export("exports/cartpole", "exports/cartpole-lite", ("tflite",), ("dynamic-int8",))

`convert_export` starts from a previous export instead of a policy: it copies the SavedModel or
ONNX model and converts the SavedModel to LiteRT, so a policy whose training run is gone (a
bundled one) can still get a `.tflite` model.

Everything is written into a hidden staging directory beside `out_dir` and renamed into place
once complete, so a reader never sees half an export. An existing `out_dir` is refused unless
`overwrite=True`, and even then only a previous export (a directory holding policy.json) is
replaced: it is renamed aside, the new export renamed in, and the old one deleted.

A write that fails (a full disk, an unwritable folder) raises `ExportError`, whose message is one
line naming the export and the cause, and leaves nothing behind: neither the staging directory nor
the parent folders the export created. An export killed outright leaves its hidden staging
directory; the next export into the same folder deletes it, and repository listings skip it.

An ONNX export into a repository layout, REPOSITORY/NAME/VERSION, also writes REPOSITORY/NAME/config.pbtxt,
so that Triton Inference Server can serve the repository as well (triton_config.py).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, get_args

from gymserve.common.files import remove_abandoned_staging, staged_folder
from gymserve.policies.actor_policy import ActorPolicy
from gymserve.policies.distributions import DistributionKind
from gymserve.policies.metadata import (
    DEFAULT_EXPORT_FORMATS,
    EXPORT_FORMATS,
    METADATA_FILE,
    ONNX_FILE,
    SAVED_MODEL_DIR,
    TFLITE_QUANTIZATIONS,
    ExportError,
    ExportFormat,
    PolicyMetadata,
    StateSpec,
    TfliteQuantization,
    TrainingInfo,
    hash_tree,
    read_metadata,
    space_spec,
    verify_files,
)
from gymserve.policies.wrappers import PolicyWrapper


def export_policy(
    policy: ActorPolicy,
    out_dir: str | Path,
    formats: Iterable[ExportFormat] = DEFAULT_EXPORT_FORMATS,
    metadata: TrainingInfo | Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    tflite_quantizations: Iterable[TfliteQuantization] = (),
) -> PolicyMetadata:
    """Write `policy` to `out_dir` in `formats` and return the metadata written to policy.json.

    `metadata` says where the policy comes from (env id, algorithm, training step, evaluation
    return); spaces, formats, versions, time and file hashes are filled in here.
    `tflite_quantizations` adds quantized LiteRT variants beside the float32 `policy.tflite`.
    """
    _check_exportable(policy)
    formats = _check_formats(formats)
    quantizations = _check_quantizations(tflite_quantizations, formats)
    out_dir = Path(out_dir).absolute()
    _check_replaceable(out_dir, overwrite)
    training = metadata if isinstance(metadata, TrainingInfo) else TrainingInfo.model_validate(metadata or {})
    description = PolicyMetadata(
        **training.model_dump(),
        observation_space=space_spec(policy.observation_space),
        action_space=space_spec(policy.action_space),
        action_distribution=policy.distribution_kind,
        policy_state_spec=tuple(StateSpec(shape=shape) for shape, _ in policy.policy_state_spec),
        formats=formats,
    )

    def write_models(staging: Path, metadata_json: str) -> None:
        _write_models(policy, formats, quantizations, metadata_json, staging)

    return _write_export(out_dir, overwrite, description, write_models)


def convert_export(
    export_dir: str | Path,
    out_dir: str | Path,
    formats: Iterable[ExportFormat],
    tflite_quantizations: Iterable[TfliteQuantization] = (),
    *,
    overwrite: bool = False,
) -> PolicyMetadata:
    """Write a new export of the policy exported in `export_dir`: its SavedModel and ONNX model
    copied, its LiteRT models converted from its SavedModel; policy.json keeps where it comes from."""
    export_dir = Path(export_dir)
    formats = _check_formats(formats)
    quantizations = _check_quantizations(tflite_quantizations, formats)
    source = read_metadata(export_dir)
    needed = {"savedmodel" if name == "tflite" else name for name in formats}
    missing = sorted(needed - set(source.formats))
    if missing:
        raise ValueError(
            f"{export_dir} has no {' or '.join(missing)} model to start from (formats: "
            f"{', '.join(source.formats)}); export from the training run instead"
        )
    prefixes = {"savedmodel": f"{SAVED_MODEL_DIR}/", "onnx": ONNX_FILE}
    for name in sorted(needed):
        verify_files(export_dir, source, prefixes[name])
    out_dir = Path(out_dir).absolute()
    _check_replaceable(out_dir, overwrite)
    description = PolicyMetadata(
        **source.model_dump(exclude={"formats", "files", "created", "gymserve_version"}), formats=formats
    )

    def copy_and_convert(staging: Path, metadata_json: str) -> None:
        if "savedmodel" in formats:
            shutil.copytree(export_dir / SAVED_MODEL_DIR, staging / SAVED_MODEL_DIR)
        if "onnx" in formats:
            shutil.copyfile(export_dir / ONNX_FILE, staging / ONNX_FILE)
        if "tflite" in formats:
            from gymserve.policies.export.tflite_export import write_tflite

            write_tflite(export_dir / SAVED_MODEL_DIR, metadata_json, staging, quantizations)

    return _write_export(out_dir, overwrite, description, copy_and_convert)


def _write_export(
    out_dir: Path,
    overwrite: bool,
    description: PolicyMetadata,
    write_models: Callable[[Path, str], None],
) -> PolicyMetadata:
    """Stage the models `write_models(staging, metadata_json)` writes and policy.json, then move
    them into `out_dir`."""
    started = time.time()
    try:
        with staged_folder(out_dir) as staging:
            write_models(staging, description.model_dump_json(exclude={"files"}))
            description = description.model_copy(update={"files": hash_tree(staging)})
            text = description.model_dump_json(indent=2) + "\n"
            (staging / METADATA_FILE).write_text(text, encoding="utf-8")
            _check_replaceable(out_dir, overwrite)  # again: something may have appeared there meanwhile
    except FileExistsError:
        raise
    except OSError as error:
        raise ExportError(out_dir, error) from error
    with contextlib.suppress(OSError):  # the export is in place; tidying up is a courtesy
        remove_abandoned_staging(out_dir.parent, older_than=started)
    if "onnx" in description.formats:
        from gymserve.policies.export.triton_config import write_triton_config

        try:
            write_triton_config(out_dir)
        except OSError as error:
            raise ExportError(out_dir.parent, error) from error
    return description


def _write_models(
    policy: ActorPolicy,
    formats: tuple[ExportFormat, ...],
    quantizations: tuple[TfliteQuantization, ...],
    metadata_json: str,
    staging: Path,
) -> None:
    arguments = (policy.network, policy.observation_space, policy.action_space, metadata_json)
    if "savedmodel" in formats or "tflite" in formats:  # LiteRT models are converted from the SavedModel
        from gymserve.policies.export.savedmodel import write_saved_model

        write_saved_model(*arguments, staging / SAVED_MODEL_DIR, policy.distribution_kind)
    if "onnx" in formats:
        from gymserve.policies.export.onnx_export import write_onnx

        write_onnx(*arguments, staging / ONNX_FILE, policy.distribution_kind)
    if "tflite" in formats:
        from gymserve.policies.export.tflite_export import write_tflite

        write_tflite(staging / SAVED_MODEL_DIR, metadata_json, staging, quantizations)
        if "savedmodel" not in formats:
            shutil.rmtree(staging / SAVED_MODEL_DIR)


def _check_exportable(policy: Any) -> None:
    """Raise, in one line naming what can be exported, unless `policy` is an exportable ActorPolicy."""
    exportable = (
        f"exported policies are ActorPolicy objects (a Keras network read as "
        f"{', '.join(get_args(DistributionKind))})"
    )
    if isinstance(policy, PolicyWrapper):
        raise TypeError(
            f"a {type(policy).__name__} is not exported: export the policy it wraps (policy.wrapped); an "
            f"export serves the greedy, stochastic and epsilon-greedy modes; {exportable}"
        )
    if not isinstance(policy, ActorPolicy):
        raise TypeError(f"a {type(policy).__name__} is not exported: it has no network to save; {exportable}")
    if not policy.clips_actions:
        raise ValueError(
            "an ActorPolicy with clip=False is not exported: exported actions are clipped to the action "
            f"bounds; {exportable}, clipping their actions"
        )


def _check_formats(formats: Iterable[str]) -> tuple[ExportFormat, ...]:
    formats = tuple(formats)
    unknown = [name for name in formats if name not in EXPORT_FORMATS]
    if unknown or not formats or len(set(formats)) != len(formats):
        raise ValueError(
            f"export formats {formats!r}: expected one or more distinct of {', '.join(EXPORT_FORMATS)}"
        )
    return formats


def _check_quantizations(
    quantizations: Iterable[str], formats: tuple[ExportFormat, ...]
) -> tuple[TfliteQuantization, ...]:
    quantizations = tuple(quantizations)
    unknown = [name for name in quantizations if name not in TFLITE_QUANTIZATIONS]
    if unknown or len(set(quantizations)) != len(quantizations):
        raise ValueError(
            f"LiteRT quantizations {quantizations!r}: expected distinct of {', '.join(TFLITE_QUANTIZATIONS)}"
        )
    if quantizations and "tflite" not in formats:
        raise ValueError("LiteRT quantizations need the tflite format")
    return quantizations


def _check_replaceable(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} already exists; replace a previous export with overwrite=True (--overwrite)"
        )
    if not (out_dir / METADATA_FILE).is_file():
        raise FileExistsError(
            f"{out_dir} exists and is not a policy export (no {METADATA_FILE}); refusing to replace it"
        )
