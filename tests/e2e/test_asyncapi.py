"""``sgb schemas asyncapi`` writes a document the real AsyncAPI CLI accepts.

The CLI is the one pinned in ``tools/asyncapi`` (package.json + package-lock.json), installed
with ``npm ci`` from the npm registry into ``~/.cache/sgb/asyncapi-cli/<lock hash>`` once and
reused by later runs. Install scripts are not run (``--ignore-scripts``: one of them reports
installs to a third party, another edits shell start-up files) and the CLI's usage analytics
are off (its analytics file says so and ``CI=true``), with its home directory inside the
cache so that it writes nothing in the user's.

Node 20+ and npm are required: without them these tests fail, they are not skipped.

``asyncapi validate`` checks the document's structure, references, bindings and channel
parameters, but (parser 3.x) does not compile Avro payloads of an AsyncAPI 3 document, so
the payloads are also compiled with avsc, the Avro library AsyncAPI tooling uses, from the
same installed tree.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncapi_doc import generate

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "asyncapi"
NPM_TIMEOUT = 1200
CLI_TIMEOUT = 180

AVSC_CHECK = r"""
const avsc = require('avsc');
const doc = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
const out = {};
for (const [name, message] of Object.entries((doc.components || {}).messages || {})) {
  const payload = message.payload || {};
  if (!String(payload.schemaFormat || '').startsWith('application/vnd.apache.avro')) continue;
  try { out[name] = 'ok:' + avsc.Type.forSchema(payload.schema).name; }
  catch (e) { out[name] = 'error:' + e.message; }
}
console.log(JSON.stringify(out));
"""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sgb" / "asyncapi-cli"


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(
            f"`{tool}` is not on PATH: validating the AsyncAPI document needs Node.js 20 or later "
            "with npm (https://nodejs.org/); install them and run the tests again.",
            pytrace=False,
        )
    return found


@dataclass(frozen=True)
class AsyncApiCli:
    """The installed CLI and the environment it runs in."""

    root: Path
    node: str
    env: dict[str, str]

    @property
    def executable(self) -> Path:
        return self.root / "node_modules" / ".bin" / "asyncapi"

    def validate(self, document: Path, workdir: Path) -> tuple[int, list[dict[str, Any]], str]:
        """Run ``asyncapi validate``; returns (exit code, diagnostics, the CLI's output)."""
        report = workdir / f"diagnostics-{uuid.uuid4().hex[:8]}.json"
        result = subprocess.run(
            [
                str(self.executable),
                "validate",
                str(document),
                "--diagnostics-format",
                "json",
                "--save-output",
                str(report),
                "--fail-severity",
                "error",
            ],
            env=self.env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        output = result.stdout + result.stderr
        diagnostics = json.loads(report.read_text(encoding="utf-8")) if report.exists() else []
        return result.returncode, diagnostics, output

    def avro_check(self, document: Path) -> dict[str, str]:
        """Compile each Avro payload with avsc; message name -> ``ok:<name>`` or ``error:<why>``."""
        result = subprocess.run(
            [self.node, "-e", AVSC_CHECK, str(document)],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]


def _install(lock: bytes) -> Path:
    """``npm ci`` the pinned CLI into the cache (once per lock file) and return its directory."""
    npm = _require("npm")
    node = _require("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") else 0
    if major < 20:
        pytest.fail(
            f"Node.js {version or '(unknown)'} is too old: the pinned AsyncAPI CLI needs Node.js 20 "
            "or later.",
            pytrace=False,
        )
    target = _cache_root() / hashlib.sha256(lock).hexdigest()[:16]
    if (target / ".installed").is_file() and (target / "node_modules" / ".bin" / "asyncapi").exists():
        return target
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(TOOLS / name, staging / name)
    env = {
        **os.environ,
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "SCARF_ANALYTICS": "false",
    }
    try:
        result = subprocess.run(
            [
                npm,
                "ci",
                "--prefix",
                str(staging),
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ],
            env=env,
            cwd=staging,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(f"`npm ci` of the AsyncAPI CLI took longer than {NPM_TIMEOUT} s.", pytrace=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        pytest.fail(
            f"`npm ci` of the AsyncAPI CLI (tools/asyncapi) failed with exit {result.returncode}:\n{tail}",
            pytrace=False,
        )
    (staging / ".installed").write_text(f"{version}\n", encoding="utf-8")
    try:
        staging.rename(target)
    except OSError:  # another run installed it meanwhile, or a stale incomplete copy is in the way
        if (target / ".installed").is_file():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    for stale in target.parent.iterdir():  # installs for lock files no longer in use
        if stale != target and stale.is_dir() and ".tmp-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def asyncapi_cli() -> AsyncApiCli:
    """The pinned AsyncAPI CLI, installed (or found in the cache), telemetry off, non-interactive."""
    root = _install((TOOLS / "package-lock.json").read_bytes())
    home = root / "cli-home"
    home.mkdir(exist_ok=True)
    analytics = home / ".asyncapi-analytics"  # what `asyncapi config analytics --disable` writes
    analytics.write_text(
        json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "sgb-tests"}),
        encoding="utf-8",
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ASYNCAPI_METRICS_CONFIG_PATH": str(analytics),
        "CUSTOM_CONTEXT_FILE_LOCATION": str(home),
        "CI": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
        "NODE_PATH": str(root / "node_modules"),
    }
    return AsyncApiCli(root, _require("node"), env)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document as `sgb schemas asyncapi --output FILE.yaml` writes it."""
    return generate(tmp_path_factory)


def _errors(diagnostics: list[dict[str, Any]], worst: int = 0) -> list[str]:
    """Diagnostics at severity ``worst`` or more serious (0 error, 1 warning, 2 info, 3 hint)."""
    return [
        f"{d.get('code')}: {d.get('message')} at {'/'.join(map(str, d.get('path', [])))}"
        for d in diagnostics
        if int(d.get("severity", 0)) <= worst
    ]


# -- the real CLI ---------------------------------------------------------------------------
def test_asyncapi_cli_accepts_the_generated_document(asyncapi_cli: AsyncApiCli, generated: Path) -> None:
    code, diagnostics, output = asyncapi_cli.validate(generated, generated.parent)
    assert code == 0, output
    assert not _errors(diagnostics, worst=1), _errors(diagnostics, worst=1)
    assert "is valid" in output, output


def test_asyncapi_cli_rejects_a_channel_whose_message_is_missing(
    asyncapi_cli: AsyncApiCli, generated: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load(generated.read_text(encoding="utf-8"))
    missing = {"$ref": "#/components/messages/NoSuchMessage"}
    document["channels"]["consent"]["messages"]["consentRecord"] = missing
    broken = tmp_path / "broken.asyncapi.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    code, diagnostics, output = asyncapi_cli.validate(broken, tmp_path)
    assert code != 0, output
    errors = _errors(diagnostics)
    assert any("NoSuchMessage" in error for error in errors), errors


def test_asyncapi_cli_rejects_an_undeclared_channel_parameter(
    asyncapi_cli: AsyncApiCli, generated: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load(generated.read_text(encoding="utf-8"))
    del document["channels"]["delivery"]["parameters"]["organisation"]
    broken = tmp_path / "broken.asyncapi.yaml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    code, diagnostics, output = asyncapi_cli.validate(broken, tmp_path)
    assert code != 0, output
    assert any("organisation" in error for error in _errors(diagnostics)), _errors(diagnostics)


def test_every_avro_payload_compiles_with_avsc(
    asyncapi_cli: AsyncApiCli, generated: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load(generated.read_text(encoding="utf-8"))
    as_json = tmp_path / "sgb.asyncapi.json"
    as_json.write_text(json.dumps(document), encoding="utf-8")
    results = asyncapi_cli.avro_check(as_json)
    assert results == {
        "SafeguardingEvent": "ok:uk.sgb.SafeguardingEvent",
        "DeliveredEvent": "ok:uk.sgb.SafeguardingEvent",
        "ConsentRecord": "ok:uk.sgb.ConsentRecord",
        "ChildStatus": "ok:uk.sgb.ChildStatus",
        "AuditRecord": "ok:uk.sgb.AuditRecord",
        "AuditDecision": "ok:uk.sgb.AuditDecision",
        "DeadLetter": "ok:uk.sgb.DeadLetter",
        "IdentityLink": "ok:uk.sgb.IdentityLink",
        "ShareRecord": "ok:uk.sgb.ShareRecord",
    }
    broken = copy.deepcopy(document)
    fields = broken["components"]["messages"]["ConsentRecord"]["payload"]["schema"]["fields"]
    fields[0]["type"] = "uk.sgb.Nothing"
    as_json.write_text(json.dumps(broken), encoding="utf-8")
    assert asyncapi_cli.avro_check(as_json)["ConsentRecord"].startswith("error:")


def test_the_lock_file_only_fetches_from_the_npm_registry() -> None:
    lock = json.loads((TOOLS / "package-lock.json").read_text(encoding="utf-8"))
    package = json.loads((TOOLS / "package.json").read_text(encoding="utf-8"))
    pinned = package["dependencies"]["@asyncapi/cli"]
    assert pinned[0].isdigit(), f"@asyncapi/cli must be pinned to an exact version, not {pinned!r}"
    assert lock["packages"]["node_modules/@asyncapi/cli"]["version"] == pinned
    elsewhere = {
        name: entry["resolved"]
        for name, entry in lock["packages"].items()
        if "resolved" in entry and not entry["resolved"].startswith("https://registry.npmjs.org/")
    }
    assert not elsewhere, elsewhere
