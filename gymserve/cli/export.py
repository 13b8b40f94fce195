"""`gymserve export`: the policy of a training run as a SavedModel, an ONNX model and policy.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gymserve.cli.common import CommandError, check_exists, import_quietly
from gymserve.cli.policy_arguments import add_checkpoint_argument
from gymserve.policies.repository import versioned_policy_name

DESCRIPTION = (
    "Export the policy of a training run to a directory holding a SavedModel, an ONNX model and "
    "policy.json (spaces, training info, file hashes), written atomically."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="directory of a `gymserve train` run")
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
        help="comma-separated formats among savedmodel, onnx (default: %(default)s)",
    )
    add_checkpoint_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it holds a previous export")


def run(args: argparse.Namespace) -> int:
    check_exists(args.run_dir, "RUN_DIR")
    import_quietly("tensorflow", "export")
    import_quietly("pybullet", "export", optional=True)
    from gymserve.agents import load_trained_policy
    from gymserve.policies import ExportError, TrainingInfo, export_policy
    from gymserve.policies.triton_config import TRITON_CONFIG_FILE

    try:
        trained = load_trained_policy(args.run_dir, checkpoint=args.checkpoint)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(f"cannot load a trained policy from {args.run_dir}: {error}") from None
    info = TrainingInfo(
        env_id=trained.env_id,
        algorithm=trained.algorithm,
        train_step=trained.train_step,
        evaluation_return=trained.evaluation_return,
    )
    formats = tuple(name.strip() for name in args.format.split(","))
    try:
        metadata = export_policy(trained.policy, args.out, formats, info, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as error:
        raise CommandError(str(error)) from None
    except ExportError as error:  # not a mistake in the command: the disk or the folder failed it
        print(f"gymserve export: error: {error}", file=sys.stderr)
        return 1
    print(f"exported {trained.env_id} ({trained.algorithm}, step {trained.train_step}) to {args.out}")
    for name, digest in metadata.files.items():
        print(f"  {name}  sha256 {digest[:16]}")
    triton_config = Path(args.out).absolute().parent / TRITON_CONFIG_FILE
    if "onnx" in formats and versioned_policy_name(Path(args.out).absolute()) and triton_config.is_file():
        print(f"Triton model config: {triton_config}")
    return 0
