"""Command-line overrides as users type them, made acceptable to Hydra.

Hydra's override grammar parses ``critic_init=0.1`` as a float and ``normalise_int_reward=true`` as a bool,
and then refuses them as config-group choices ("Config group override must be a string"). The seed's option
names are exactly such words, so before Hydra sees the command line we quote the values of group overrides
(``critic_init='0.1','sqrt2'``); Hydra keeps the quotes when it splits a sweep into jobs, so every job
composes with the string option name.
"""

from __future__ import annotations

from collections.abc import Iterable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, QuotedString
from hydra.errors import HydraException


def _as_option_name(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quoted(value: object) -> str:
    if isinstance(value, QuotedString):
        return value.with_quotes()
    if isinstance(value, str):
        return value
    return f"'{_as_option_name(value)}'"


def quote_group_values(args: Iterable[str], groups: Iterable[str]) -> list[str]:
    """Quote numeric and boolean choices of config-group overrides; leave everything else as typed."""
    group_set = set(groups)
    parser = OverridesParser.create()
    out = []
    for arg in args:
        try:
            override: Override = parser.parse_override(arg)
        except HydraException:
            out.append(arg)  # let Hydra report its own parse error
            continue
        if override.key_or_group not in group_set or override.package is not None:
            out.append(arg)
            continue
        prefix = arg[: len(arg) - len(arg.lstrip("+~"))]
        value = override._value
        if isinstance(value, ChoiceSweep) and not value.simple_form:
            out.append(arg)  # choice(...) / tagged sweeps: rare for groups, leave them to Hydra
        elif isinstance(value, ChoiceSweep):
            out.append(f"{prefix}{override.key_or_group}=" + ",".join(_quoted(v) for v in value.list))
        elif isinstance(value, bool | int | float):
            out.append(f"{prefix}{override.key_or_group}={_quoted(value)}")
        else:
            out.append(arg)
    return out
