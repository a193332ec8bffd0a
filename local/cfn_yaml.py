"""Read template.yaml with its CloudFormation short-form tags (!Ref, !Sub, ...) as plain data."""

from pathlib import Path
from typing import Any

import yaml

TAGS = (
    "Ref", "Sub", "GetAtt", "Join", "If", "Not", "Equals", "And", "Or", "Select", "Split",
    "FindInMap", "ImportValue", "GetAZs", "Base64", "Cidr", "Condition", "Transform",
)  # fmt: skip


class _Loader(yaml.SafeLoader):
    pass


def _construct(tag: str) -> Any:
    name = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"  # the long forms' names

    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return build


for _tag in TAGS:
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    return loaded


def loads_template(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    return loaded
