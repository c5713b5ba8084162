"""TOML tables to typed, frozen dataclasses, driven by the type hints: a new key is one new field.

Unknown keys, wrong types and bad values fail with what / where / how to fix; a class's ``validate(where)``
runs after it is built. Paths are made absolute against ``base`` (the shot file's folder).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Literal, Union

from .errors import ConfigError


def build(cls, table: object, where: str, base: Path, *, top: bool = False):
    """Build dataclass ``cls`` from a TOML table, recursing into nested tables by type hint."""
    if not isinstance(table, dict):
        raise ConfigError(f"expected a table, got {type_name(table)}", where=where, fix="see the shot-file reference in README")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("key", True)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}", where=where, fix=f"valid keys here: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key_where = key_label(where, name, hints[name], top=top)
        if name in table:
            kwargs[name] = convert(hints[name], table[name], key_where, base)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {name!r}", where=where,
                              fix=f"add {name} = ... (see the shot-file reference in README)")
        elif isinstance(f.default, Path) and not f.default.is_absolute():
            kwargs[name] = base / f.default  # default paths are relative to the shot file too
        elif dataclasses.is_dataclass(hints[name]):
            kwargs[name] = build(hints[name], {}, key_where, base)  # an omitted table: its defaults
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate(where)
    return obj


def shot_keys(section) -> dict:
    """The shot-file keys of a config section and their values (code-only fields left out): what the
    stages' inputs hashes record of it."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.metadata.get("key", True)}


def key_label(where: str, name: str, hint, top: bool) -> str:
    """How a key is named in messages: ``shot.toml [plate] frames``, ``shot.toml [[asset]]``."""
    if top and dataclasses.is_dataclass(hint):
        return f"{where} [{name}]"
    if top and typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
        return f"{where} [[{name}]]"
    return f"{where} {name}"


def type_name(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def convert(hint, value, where: str, base: Path):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return convert(option, value, where, base)
            except ConfigError as exc:
                errors.append(exc.what)
        raise ConfigError(" or ".join(dict.fromkeys(errors)), where=where, fix="see the shot-file reference in README")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{value!r} is not allowed", where=where,
                              fix=f"use one of: {', '.join(repr(a) for a in args)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"expected an array, got {type_name(value)}", where=where, fix="write [a, b, ...]")
        if len(args) == 2 and args[1] is Ellipsis:
            item = "{} #{}" if dataclasses.is_dataclass(args[0]) else "{}[{}]"
            return tuple(convert(args[0], v, item.format(where, i + 1), base) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"expected {len(args)} values, got {len(value)}", where=where,
                              fix=f"write an array of {len(args)} values")
        return tuple(convert(a, v, f"{where}[{i + 1}]", base) for i, (a, v) in enumerate(zip(args, value)))
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where, base)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {type_name(value)}", where=where, fix="write true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {type_name(value)} {value!r}", where=where, fix="write a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"expected a finite number, got {type_name(value)} {value!r}", where=where, fix="write a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {type_name(value)}", where=where, fix='write "text" in quotes')
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"expected a path string, got {type_name(value)}", where=where, fix='write "relative/path"')
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p
    raise TypeError(f"config.py has no converter for {hint!r}")  # a programming error, not a user's
