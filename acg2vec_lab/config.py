"""Profiles and per-model JSON configs validated by dataclass schemas.

One switch, the profile, picks every model's variant, in one place (:data:`PROFILE_VARIANTS`):

* ``smoke`` -> ``tiny.json``: tiny replicas that keep every layer type; CI runs these.
* ``cpu``   -> ``small.json``: small but meaningful runs on 2 CPU cores (the main job's default).
* ``full``  -> ``full.json``: the paper-scale configuration, meant for a GPU.

A config file lives at ``acg2vec_lab/configs/<model>/<variant>.json`` and names its schema, a
dataclass, as ``"schema": "module.path:ClassName"``. Unknown keys are rejected, so a typo in a JSON
file fails loudly instead of silently falling back to a default. Any fault of a config file (not
UTF-8, not JSON, not an object, a schema outside this package, a value its dataclass refuses) is a
:class:`ConfigError` naming the file (and the line for JSON syntax); :func:`load_config_file` reads
one file from anywhere.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import typing
from pathlib import Path
from typing import Any

from acg2vec_lab.io_safety import read_json_file
from acg2vec_lab.paths import CONFIGS_DIR

PROFILES = ("smoke", "cpu", "full")
PROFILE_VARIANTS = {"smoke": "tiny", "cpu": "small", "full": "full"}
DEFAULT_PROFILE = "cpu"


class ConfigError(ValueError):
    """A config file or profile that cannot be used; the message names the file and the problem."""


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is known, else raise :class:`ConfigError` listing the valid ones."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


def current_profile(profile: str | None = None) -> str:
    """The profile in force: the argument, else ``$ACG2VEC_PROFILE``, else ``cpu``."""
    return check_profile(profile or os.environ.get("ACG2VEC_PROFILE") or DEFAULT_PROFILE)


def variant_for(profile: str | None = None) -> str:
    """The config variant file name (without ``.json``) that ``profile`` selects."""
    return PROFILE_VARIANTS[current_profile(profile)]


def models_with_configs() -> list[str]:
    """Names of every model that has a config folder."""
    return sorted(p.name for p in CONFIGS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))


def config_path(model: str, variant: str) -> Path:
    path = CONFIGS_DIR / model / f"{variant}.json"
    if not path.is_file():
        known = ", ".join(models_with_configs())
        raise ConfigError(f"no config {path} (model {model!r}, variant {variant!r}); models with configs: {known}")
    return path


SCHEMA_PACKAGE = "acg2vec_lab"


def _import_schema(spec: Any, path: Path) -> type:
    """The dataclass a config names. Only this package's modules are imported for it (a module
    elsewhere must already be imported, e.g. a test's): a config file cannot import, and so run,
    arbitrary code."""
    if not isinstance(spec, str):
        raise ConfigError(f"{path}: \"schema\" must be a string \"module.path:ClassName\", got {spec!r:.80}")
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name or not class_name.isidentifier() \
            or not all(part.isidentifier() for part in module_name.split(".")):
        raise ConfigError(f"{path}: schema {spec!r:.80} is not \"module.path:ClassName\"")
    ours = module_name == SCHEMA_PACKAGE or module_name.startswith(SCHEMA_PACKAGE + ".")
    if not ours and module_name not in sys.modules:
        raise ConfigError(f"{path}: schema {spec!r:.80} is outside {SCHEMA_PACKAGE} (only this package's "
                          "dataclasses are config schemas; a config file must not import other modules)")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{path}: schema {spec!r} cannot be imported ({exc})") from exc
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f"{path}: schema {spec!r} is not a dataclass")
    return cls


# fields that were spelled differently per model before the schemas were unified (issue 14)
RENAMED = {"max_train_images": "max_train", "max_eval_images": "max_eval", "train_limit": "max_train",
           "eval_limit": "max_eval", "train_pairs": "max_train"}


def from_dict(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass ``cls`` from ``values``, rejecting unknown keys and recursing into nested dataclasses."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected an object for {cls.__name__}, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    renamed = {k: RENAMED[k] for k in unknown if RENAMED.get(k) in fields}
    if renamed:
        raise ConfigError(f"{where}: key(s) renamed, spell them {renamed} (one name for one idea across configs)")
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, f"{where}.{name}")
        elif isinstance(value, list) and (hint is tuple or typing.get_origin(hint) is tuple):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, ArithmeticError) as exc:
        # a required field is missing, or the schema's own checks refuse a value
        raise ConfigError(f"{where}: {cls.__name__} refuses these values ({type(exc).__name__}: {exc})") from exc


def load_config(model: str, profile: str | None = None, *, variant: str | None = None, **overrides: Any) -> Any:
    """Load ``configs/<model>/<variant>.json`` into its schema dataclass.

    Args:
        model: config folder name, e.g. ``"deepdanbooru"``.
        profile: ``smoke`` / ``cpu`` / ``full``; picks the variant unless ``variant`` is given.
        variant: explicit variant file name (``tiny``, ``small``, ``full``, or any other file there).
        **overrides: field values replacing those from the file (checked like the file's keys).
    """
    variant = variant or variant_for(profile)
    return load_config_file(config_path(model, variant), **overrides)


def load_config_file(path: str | os.PathLike, **overrides: Any) -> Any:
    """Load one config JSON file (anywhere) into the schema dataclass it names; every fault of the
    file is a :class:`ConfigError` naming it (see the module doc)."""
    path = Path(path)
    raw = read_json_file(path, ConfigError, "config", expect=dict)
    spec = raw.pop("schema", None)
    raw.pop("comment", None)  # free-text documentation inside the JSON file
    if not spec:
        raise ConfigError(f"{path}: missing the \"schema\" key naming its dataclass (module:Class)")
    raw.update(overrides)
    return from_dict(_import_schema(spec, path), raw, str(path))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (for logs, checkpoints and the run record)."""
    return dataclasses.asdict(cfg)
