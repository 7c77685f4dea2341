"""Reading a job config: YAML in, `--set` overrides applied, one line per problem out.

Every problem is reported once, at load, as one line naming the file and the dotted key,
with what is allowed (a did-you-mean for unknown keys) — the inner stages then trust
what they are given. YAML is read safely, as data; the schema itself is `schema.py`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from creditgov.config.schema import ConfigError, JobConfig

__all__ = ["load_config", "validate_config"]


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> JobConfig:
    """Read a YAML job file, apply `--set key=value` overrides and validate it.

    YAML is read with `yaml.safe_load` only: a config is data, and tags that would build
    Python objects are refused. Relative paths resolve against the config's folder, so
    a job runs the same from any working directory.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass the path of a YAML job file")
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_message(path, err)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, not {type(raw).__name__}"
        )
    for item in overrides:
        _apply_override(raw, item, path)
    return validate_config(raw, path)


def validate_config(raw: Mapping[str, Any], path: Path) -> JobConfig:
    """Validate a parsed mapping; paths inside resolve against `path`'s folder."""
    try:
        config = JobConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, path, raw)) from None
    source = config.data.source
    if not source.is_absolute():
        # Absolute, links kept: the data reader resolves them and checks what they point at.
        source = Path(os.path.abspath(path.parent / source))
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"source": source})}
        )
    config._path = path
    return config


def _apply_override(raw: dict[str, Any], item: str, path: Path) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{path}: --set {item!r}: write KEY=VALUE, e.g. --set tuning.n_trials=5")
    try:
        value = _load_yaml(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    shape: Any = JobConfig  # the schema's type at the current depth; None: not checked
    node: dict[str, Any] | list[Any] = raw
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth])
        shape = _schema_step(shape, part, f"{path}: --set {key}: ", ".".join(parts[: depth + 1]))
        slot: str | int = part
        if isinstance(node, list):
            slot = _list_index(node, part, f"{path}: --set {key}: ", here)
        if depth == len(parts) - 1:
            node[slot] = value  # type: ignore[index]
            return
        child = node[slot] if isinstance(node, list) else node.get(part)  # type: ignore[index]
        if not isinstance(child, dict | list):
            child = {}
            node[slot] = child  # type: ignore[index]
        node = child


def _schema_step(shape: Any, part: str, prefix: str, dotted: str) -> Any:
    """The schema type one key below `shape`, refusing keys the schema does not have.

    A model has named fields; a list is entered by item position (`gates.0.min`), a
    mapping by any key (`tuning.search_space.num_leaves`); below a plain value or a free
    mapping such as `model.params` nothing is checked here (validation still is).
    """
    shape = _strip_optional(shape)
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        fields = shape.model_fields
        if part not in fields:
            raise ConfigError(f"{prefix}{dotted} is not a config key{_did_you_mean(part, fields)}")
        return fields[part].annotation
    origin = getattr(shape, "__origin__", None)
    args: tuple[Any, ...] = getattr(shape, "__args__", ())
    if origin is list and args:
        if not part.isdigit():
            parent = dotted.rsplit(".", 1)[0]
            raise ConfigError(
                f"{prefix}{parent} is a list: address an item by its position, "
                f"e.g. --set {parent}.0.<key>=VALUE"
            )
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _strip_optional(shape: Any) -> Any:
    """`X | None` -> X; anything else as it is."""
    args = getattr(shape, "__args__", ())
    rest = [a for a in args if a is not type(None)]
    return rest[0] if len(rest) == 1 and len(args) == 2 else shape


def _list_index(items: list[Any], part: str, prefix: str, parent: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(
            f"{prefix}{parent} has {len(items)} item(s) in the config, so there is no item "
            f"{part}; use a position from 0 to {len(items) - 1} or set the whole list, "
            f"e.g. --set '{parent}=[...]'"
            if items
            else f"{prefix}{parent} is not in the config file, so it has no item {part}; "
            f"set the whole list, e.g. --set '{parent}=[...]'"
        )
    return int(part)


class _AliasRefused(yaml.MarkedYAMLError):
    """An alias in a config: refused whole, before anything is expanded."""


class _ConfigLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with YAML 1.2 booleans and no aliases.

    Booleans: only true/false, never yes/no/on/off. Under YAML 1.1 `positive_label: yes`
    arrives as True and no target value matches it; read as the text the user wrote, it
    matches a target of "yes"/"no". Keys typed bool by the schema still accept yes/no,
    through pydantic.

    Aliases (`*name`) are refused: a few lines of nested aliases expand to gigabytes
    (the "billion laughs"), and a job file has no need of them.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(
                problem="YAML aliases (*name) are not allowed in a config; write the value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


_BOOL = "tag:yaml.org,2002:bool"
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A YAML date, or a marked YAML error: `2024-02-30` is no date, and no crash either."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as err:
        raise yaml.MarkedYAMLError(
            problem=f"{node.value} is not a valid date ({err})", problem_mark=node.start_mark
        ) from None


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _load_yaml(text: str) -> Any:
    """Safe loading only (no tag builds a Python object), with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_ConfigLoader)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _did_you_mean(word: str, choices: Mapping[str, Any] | Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(err: ValidationError, path: Path, raw: Mapping[str, Any]) -> str:
    """One line for the first problem: file, dotted key, what is wrong and what to do."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    # A reason_texts value is a sentence or an entry; pydantic names the branch in loc.
    loc = [
        p
        for i, p in enumerate(loc)
        if not (i >= 2 and loc[i - 2] == "reason_texts" and p in ("entry", "sentence"))
    ]
    key = ".".join(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent_model = _model_at(loc[:-1])
        hint = _did_you_mean(loc[-1], parent_model.model_fields) if parent_model else ""
        allowed = f"; allowed: {', '.join(parent_model.model_fields)}" if parent_model else ""
        return f"{path}: unknown key {key}{hint}{allowed if not hint else ''}"
    if kind == "missing":
        return f"{path}: {key} is required"
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    given = first.get("input")
    shown = (
        ""
        if isinstance(given, dict | list) or kind.startswith("value_error")
        else f" (got {given!r})"
    )
    # A rule across sections (loc empty) names its keys in the message itself.
    return f"{path}: {key + ': ' if key else ''}{message}{shown}"


def _model_at(loc: Sequence[str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = JobConfig
    for part in loc:
        if model is None:
            return None
        field = model.model_fields.get(part)
        if field is None:
            # Inside a list or dict (e.g. gates.0, search_space.num_leaves): step into its item type.
            continue
        annotation = field.annotation
        model = _submodel(annotation) or _item_model(annotation)
    return model


def _item_model(annotation: Any) -> type[BaseModel] | None:
    for arg in getattr(annotation, "__args__", ()):
        found = _submodel(arg) or _item_model(arg)
        if found is not None:
            return found
    return None


def _yaml_message(path: Path, err: yaml.YAMLError) -> str:
    where = f"{path}{_yaml_position(err)}"
    if isinstance(err, yaml.constructor.ConstructorError) and "for the tag" in str(err.problem):
        return (
            f"{where}: YAML tag {_yaml_tag(err)} is not allowed; configs are plain data "
            f"(safe loading only)"
        )
    if isinstance(err, _AliasRefused):
        return f"{where}: {err.problem}"
    return f"{where}: malformed YAML: {_yaml_problem(err)}; fix the syntax at that line and column"


def _yaml_position(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is None:
        return ""
    return f":{mark.line + 1}:{mark.column + 1}"


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return str(problem)


def _yaml_tag(err: yaml.YAMLError) -> str:
    problem = str(getattr(err, "problem", ""))
    start = problem.find("'")
    return problem[start:] if start >= 0 else "(unknown)"
