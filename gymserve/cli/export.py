"""`gymserve export`: the policy of a training run (or of a previous export) as a SavedModel, an
ONNX model, LiteRT models and policy.json."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gymserve.cli.common import CommandError, check_exists, import_quietly
from gymserve.cli.policy_arguments import add_checkpoint_argument
from gymserve.policies.repository import versioned_policy_name

if TYPE_CHECKING:
    from gymserve.policies import PolicyMetadata

DESCRIPTION = (
    "Export the policy of a training run to a directory holding a SavedModel, an ONNX model, LiteRT "
    "models and policy.json (spaces, training info, file hashes), written atomically. Given a previous "
    "export instead of a run, copy its models and convert its SavedModel to LiteRT."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="directory of a `gymserve train` run, or a previous export"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="export directory to create; as REPOSITORY/NAME/VERSION with the onnx format it also writes "
        "REPOSITORY/NAME/config.pbtxt, so Triton Inference Server can serve the repository",
    )
    parser.add_argument(
        "--format",
        default="savedmodel,onnx",
        help="comma-separated formats among savedmodel, onnx, tflite, or all of them: all "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tflite-quantize",
        default="",
        metavar="KINDS",
        help="comma-separated quantized LiteRT variants beside the float32 one: dynamic-int8, float16",
    )
    add_checkpoint_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it holds a previous export")


def run(args: argparse.Namespace) -> int:
    check_exists(args.run_dir, "RUN_DIR")
    import_quietly("tensorflow", "export")
    from gymserve.policies.metadata import EXPORT_FORMATS

    formats = EXPORT_FORMATS if args.format == "all" else _names(args.format)
    quantizations = _names(args.tflite_quantize)
    from gymserve.policies.metadata import METADATA_FILE

    if (Path(args.run_dir) / METADATA_FILE).is_file():
        from gymserve.policies import convert_export

        return _report(
            lambda: convert_export(args.run_dir, args.out, formats, quantizations, overwrite=args.overwrite),
            f"converted {args.run_dir} to {args.out}",
            args.out,
        )
    import_quietly("pybullet", "export", optional=True)
    from gymserve.agents import load_trained_policy
    from gymserve.policies import TrainingInfo, export_policy

    try:
        trained = load_trained_policy(args.run_dir, checkpoint=args.checkpoint)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(f"cannot load a trained policy from {args.run_dir}: {error}") from None
    info = TrainingInfo(
        env_id=trained.env_id,
        algorithm=trained.algorithm,
        train_step=trained.train_step,
        evaluation=trained.evaluation,
    )
    return _report(
        lambda: export_policy(
            trained.policy,
            args.out,
            formats,
            info,
            overwrite=args.overwrite,
            tflite_quantizations=quantizations,
        ),
        f"exported {trained.env_id} ({trained.algorithm}, step {trained.train_step}) to {args.out}",
        args.out,
    )


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _report(export: Callable[[], PolicyMetadata], done: str, out_dir: str) -> int:
    """Run `export` and print `done` and the files written, or the reason it failed."""
    from gymserve.policies import ExportError, PolicyLoadError
    from gymserve.policies.export.triton_config import TRITON_CONFIG_FILE

    try:
        metadata = export()
    except (FileExistsError, ValueError, PolicyLoadError) as error:
        raise CommandError(str(error)) from None
    except ExportError as error:  # not a mistake in the command: the disk or the folder failed it
        print(f"gymserve export: error: {error}", file=sys.stderr)
        return 1
    print(done)
    for name, digest in metadata.files.items():
        print(f"  {name}  sha256 {digest[:16]}")
    export_dir = Path(out_dir).absolute()
    triton_config = export_dir.parent / TRITON_CONFIG_FILE
    if "onnx" in metadata.formats and versioned_policy_name(export_dir) and triton_config.is_file():
        print(f"Triton model config: {triton_config}")
    return 0
