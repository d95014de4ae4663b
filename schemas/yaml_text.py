"""Reading YAML the one way: a safe loader, the C one (libyaml) when PyYAML has it.

The pure-Python loader took most of an ``sgb policy evaluate`` call (issue 16); the C loader
reads the same documents into the same values, several times faster.
"""

from __future__ import annotations

from typing import Any

import yaml

#: PyYAML's CSafeLoader when built with libyaml, else its SafeLoader; both build plain data only.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: What a malformed document raises, for callers that turn it into one sentence.
YAMLError = yaml.YAMLError


def safe_load(text: str) -> Any:
    """Parse one YAML document into plain data (mappings, lists, scalars); raises :data:`YAMLError`."""
    return yaml.load(text, Loader=SAFE_LOADER)  # SAFE_LOADER builds plain data only
