"""The Dockerfile, checked offline (no Docker engine here): multi-stage, wheel built then
installed, non-root, no secrets.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"


# -- Dockerfile ---------------------------------------------------------------------------------
def _instructions(path: Path) -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " " if raw.endswith("\\") else raw.strip()
        if not raw.endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                lines.append((word.upper(), rest.strip()))
            current = ""
    return lines


def test_dockerfile_is_multi_stage_non_root_without_secrets() -> None:
    steps = _instructions(DOCKERFILE)
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    stages = [(i, rest) for i, (word, rest) in enumerate(steps) if word == "FROM"]
    assert len(stages) == 2
    images = [rest.split()[0].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", "")) for _, rest in stages]
    assert images == ["python:3.11-slim", "python:3.11-slim"]
    assert stages[0][1].endswith("AS build")
    build = steps[stages[0][0] : stages[1][0]]
    final = steps[stages[1][0] :]
    assert any(word == "RUN" and "pip wheel" in rest for word, rest in build)
    assert any(word == "COPY" and rest.startswith("--from=build /wheels") for word, rest in final)
    assert any(word == "RUN" and "--no-index" in rest and "sgb" in rest for word, rest in final)
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert not any(word == "ADD" for word, _ in steps)
    for word, rest in steps:
        if word == "COPY":
            assert not re.search(r"\.pem|\.key|\.p12|secret|\.env|keys/|\.sgb", rest), rest
        if word in ("ENV", "ARG"):
            assert not re.search(r"(?i)password|secret|token", rest), rest
    assert any(word == "HEALTHCHECK" for word, _ in final)
    assert ("ENTRYPOINT", '["sgb"]') in final
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    assert "*" in ignore and "**/*.key" in ignore and "**/*.pem" in ignore
