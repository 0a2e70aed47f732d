"""Reading OSV files (JSON or YAML) safely: size-capped, no YAML aliases, no unbounded nesting.

A file that cannot be read is a :class:`ConfigError` naming it, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ... import inputs
from ...errors import ConfigError

# Limits on what one advisory file may be: real records are a few KiB, the
# largest in the PyPA database under 100 KiB.
MAX_RECORD_BYTES = 4 * 1024 * 1024
OSV_SUFFIXES = (".json", ".yaml", ".yml")
# Deeper than any OSV record nests (about 6): libyaml composes recursively in C, where too deep is a crash.
MAX_YAML_DEPTH = 64


class _OsvYamlLoader(yaml.SafeLoader):
    """YAML as OSV means it: every plain scalar is a string (a version "1.10" must not become 1.1,
    a date stays text for the schema to check), null stays null, and no aliases (a few lines of
    aliases can expand into gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


_OsvYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _OsvCLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """The same reading through libyaml: a snapshot of thousands of records parses in seconds, not a minute."""


_OsvCLoader.yaml_implicit_resolvers = _OsvYamlLoader.yaml_implicit_resolvers


def _load_yaml(text: str) -> object:
    if not yaml.__with_libyaml__:
        return yaml.load(text, Loader=_OsvYamlLoader)  # noqa: S506 - a SafeLoader subclass
    # One pass over libyaml's events first (iterative, no recursion): aliases and deep nesting are refused
    # before anything is composed.
    depth = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark  # libyaml's Mark has the fields the error message reads
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed", mark)  # type: ignore[arg-type]
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise RecursionError
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return yaml.load(text, Loader=_OsvCLoader)  # noqa: S506 - a SafeLoader subclass


def read_record_file(file: Path) -> object:
    """The data of one OSV file (JSON or YAML); ConfigError naming the file when it cannot be read."""
    name = str(file)
    # The guarded reader: a FIFO, device or oversized file is one error, never a hang.
    text = inputs.read_text(file, name, limit=MAX_RECORD_BYTES)
    return parse_text(text, name, yaml_=file.suffix in (".yaml", ".yml"))


def parse_text(text: str, name: str, *, yaml_: bool) -> object:
    try:
        if yaml_:
            return _load_yaml(text)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, "", f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(name, "", f"is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(name, "", "is nested too deeply to be an OSV record") from None


def osv_files(directory: Path) -> list[Path]:
    """Every OSV file (``*.json``, ``*.yaml``, ``*.yml``) under ``directory``, in a stable order.

    A FIFO or device named like one is kept: reading it is an error naming it, never a silent skip.
    """
    return sorted(p for p in directory.rglob("*") if p.suffix in OSV_SUFFIXES and not p.is_dir())
