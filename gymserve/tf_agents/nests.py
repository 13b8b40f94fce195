"""Nests: values arranged in tuples, lists, named tuples and dicts, and their named leaves.

A leaf's name is its path of dict keys and sequence indices joined by "/" (`"observation"`,
`"1/0"`), so the leaves of a flat dict keep their keys. A structure (a data spec) decides what
a leaf is; values are flattened against it, which names the place where they differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gymnasium as gym


def as_structure(spec: Any, is_leaf: Callable[[Any], bool]) -> Any:
    """`spec` with Gymnasium `Tuple` and `Dict` spaces turned into tuples and dicts."""
    if isinstance(spec, gym.spaces.Tuple):
        return tuple(as_structure(item, is_leaf) for item in spec.spaces)
    if isinstance(spec, gym.spaces.Dict):
        return {key: as_structure(item, is_leaf) for key, item in spec.spaces.items()}
    if is_leaf(spec):
        return spec
    if isinstance(spec, Mapping):
        return {key: as_structure(item, is_leaf) for key, item in spec.items()}
    if isinstance(spec, tuple | list):
        items = [as_structure(item, is_leaf) for item in spec]
        return type(spec)(*items) if _is_named_tuple(spec) else type(spec)(items)
    return spec


def leaves_with_paths(
    structure: Any, is_leaf: Callable[[Any], bool], path: str = ""
) -> Iterator[tuple[str, Any]]:
    """(path, leaf) for every leaf of `structure`, depth first in its own order."""
    if is_leaf(structure) or not isinstance(structure, Mapping | tuple | list):
        yield path, structure
        return
    items = structure.items() if isinstance(structure, Mapping) else enumerate(structure)
    for key, item in items:
        yield from leaves_with_paths(item, is_leaf, f"{path}/{key}" if path else str(key))


def flatten_like(structure: Any, value: Any, is_leaf: Callable[[Any], bool], path: str = "") -> list[Any]:
    """The leaves of `value`, which must be arranged as `structure` is, in its order."""
    where = f" at {path!r}" if path else ""
    if is_leaf(structure) or not isinstance(structure, Mapping | tuple | list):
        return [value]
    if isinstance(structure, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(
                f"expected a dict with keys {sorted(structure)}{where}, got {type(value).__name__}"
            )
        missing, unexpected = structure.keys() - value.keys(), value.keys() - structure.keys()
        if missing or unexpected:
            raise ValueError(
                f"batch fields do not match the data spec{where}: missing {sorted(missing)}, unexpected "
                f"{sorted(unexpected)}; expected exactly {sorted(structure)}"
            )
        pairs = [(key, value[key]) for key in structure]
    else:
        if not isinstance(value, tuple | list) or len(value) != len(structure):
            length = len(value) if isinstance(value, tuple | list) else type(value).__name__
            raise ValueError(f"expected a sequence of {len(structure)} items{where}, got {length}")
        pairs = list(enumerate(value))
    leaves = []
    subs = structure.values() if isinstance(structure, Mapping) else structure
    for (key, item), sub in zip(pairs, subs, strict=True):
        leaves += flatten_like(sub, item, is_leaf, f"{path}/{key}" if path else str(key))
    return leaves


def pack_like(structure: Any, leaves: list[Any], is_leaf: Callable[[Any], bool]) -> Any:
    """`leaves` (in `leaves_with_paths` order) arranged as `structure`."""
    remaining = iter(leaves)

    def pack(node: Any) -> Any:
        if is_leaf(node) or not isinstance(node, Mapping | tuple | list):
            return next(remaining)
        if isinstance(node, Mapping):
            return {key: pack(item) for key, item in node.items()}
        items = [pack(item) for item in node]
        return type(node)(*items) if _is_named_tuple(node) else type(node)(items)

    return pack(structure)


def _is_named_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")
