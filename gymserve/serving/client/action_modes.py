"""Action modes on the wire: the proto's ACTION_MODE_<NAME> is the mode `ActionMode` calls "<name>".

The mapping is derived from the proto enum's names, so a mode added to both cannot be
forgotten in one direction; a test checks that the names match `gymserve.policies.ActionMode`.
"""

from __future__ import annotations

from gymserve.serving.client.protos import policy_service_pb2 as pb

_PREFIX = "ACTION_MODE_"
MODE_NUMBERS: dict[str, int] = {
    name.removeprefix(_PREFIX).lower(): number
    for name, number in pb.ActionMode.items()
    if number != pb.ACTION_MODE_UNSPECIFIED
}
_MODE_NAMES = {number: name for name, number in MODE_NUMBERS.items()} | {pb.ACTION_MODE_UNSPECIFIED: "greedy"}


def mode_number(mode: object) -> int:
    """The wire value of a mode name (or of a `gymserve.policies.ActionMode`)."""
    number = MODE_NUMBERS.get(getattr(mode, "value", mode))
    if number is None:
        raise ValueError(f"unknown action mode {mode!r}; expected one of: {', '.join(MODE_NUMBERS)}")
    return number


def mode_name(number: int) -> str:
    """The mode name of a wire value; ACTION_MODE_UNSPECIFIED means greedy."""
    name = _MODE_NAMES.get(number)
    if name is None:
        raise ValueError(f"unknown action mode {number}; expected one of {pb.ActionMode.keys()}")
    return name
