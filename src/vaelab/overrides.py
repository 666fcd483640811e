"""Command-line overrides (`key=value`, Hydra's syntax): their keys, Hydra's composition errors as
one line, and the lists a command line spells with commas. Light on purpose (no torch): the
commands call it first.
"""

from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from vaelab.errors import ConfigError

__all__ = ["check_overrides", "key_of", "matches", "merge_overrides", "posthoc_argv"]


def key_of(override: str) -> str:
    """The dotted key an override sets: `+prior.hidden=8` → `prior.hidden`, `~seed` → `seed`."""
    return override.split("=", 1)[0].lstrip("+~")


def matches(key: str, allowed: tuple[str, ...]) -> bool:
    """`key` is one of `allowed`, or lies under one that ends with a dot (`eval.` allows `eval.num_samples`)."""
    return any(key == prefix or (prefix.endswith(".") and key.startswith(prefix)) for prefix in allowed)


def merge_overrides(cfg: DictConfig, overrides: list[str], source: str | Path) -> DictConfig:
    """`cfg` (a saved run's config, read from `source`) with `key=value` overrides; a key it lacks
    must be added as `+key=value`, as on Hydra's command line."""
    for override in overrides:
        key, sep, _ = override.partition("=")
        if not sep:
            raise ConfigError(f"{override} is not allowed: an override is key=value")
        if not key.startswith("+") and OmegaConf.select(cfg, key, default=KeyError) is KeyError:
            raise ConfigError(f"{override} is not allowed: {key} is not in {source} (use +{key}=... to add it)")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.removeprefix("+") for o in overrides]))


def check_overrides(overrides: list[str], config_dir: str | Path, config_name: str = "train") -> None:
    """Compose the config with the command line's overrides as `python train.py` will, and raise
    one ConfigError line for what Hydra would report in several: a mistyped key
    (`prior.num_compnents=3`), an option a group does not have (`prior=foo`), a malformed override."""

    def compose_with(chosen: list[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            return compose(config_name, overrides=chosen)

    def given(key: str) -> str:  # the override as typed on the command line
        return next((o for o in overrides if key_of(o) == key), key)

    try:
        compose_with(overrides)
    except OverrideParseException as error:
        reason = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ConfigError(f"{error.override} is not allowed: not a valid override ({reason})") from None
    except MissingConfigException as error:
        found = re.search(r"Could not find '(.+)/([^/']+)'", str(error))
        if not (found and error.options):
            raise ConfigError(" ".join(str(error).split("Config search path")[0].split())) from None
        typed = given(found[1])
        raise ConfigError(f"{typed} is not allowed: choose one of {', '.join(error.options)}") from None
    except ConfigCompositionException as error:
        found = re.match(r"Could not override '([^']+)'", str(error))
        if not (found and "not in struct" in str(error.__cause__)):
            raise ConfigError(" ".join(str(error).split())) from None
        key = found[1]
        parent, _, name = str(getattr(error.__cause__, "full_key", key)).rpartition(".")
        try:  # the keys the parent has, from the config without this override
            node = compose_with([o for o in overrides if o != given(key)])
            keys = sorted(map(str, (OmegaConf.select(node, parent) if parent else node).keys()))
        except Exception:  # noqa: BLE001 - the list is a courtesy
            keys = []
        where = parent or "the config"
        listed = f" (its keys: {', '.join(k for k in keys if k not in ('hydra', '_target_'))})" if keys else ""
        raise ConfigError(
            f"{given(key)} is not allowed: {where} has no key {name}{listed}; "
            f"to add a new key, write +{given(key).lstrip('+')}"
        ) from None


def posthoc_argv(argv: list[str]) -> list[str]:
    """`posthoc=mog,flow` as the list `posthoc=[mog,flow]`: every job refits every listed prior.
    Hydra would read the commas as a sweep, training the same joint model once per post-hoc prior."""

    def listed(arg: str) -> str:
        key, sep, value = arg.partition("=")
        if key_of(key) != "posthoc" or not sep or "," not in value or value.lstrip().startswith("["):
            return arg
        return f"{key}=[{value}]"

    return [listed(arg) for arg in argv]
