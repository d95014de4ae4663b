"""Apache Kafka's broker jars, resolved from Maven Central by ``deploy/kafka/pom.xml``.

The jars go to a cache shared by every checkout (``~/.cache/sgb`` by default); ``sgb kafka
fetch`` (and ``make test``/``make demo``) fill it once. :mod:`broker.cluster.local_kafka` starts
brokers from :func:`classpath`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from broker.exceptions import KafkaRuntimeError
from broker.logs import get_logger
from broker.settings import Settings

log = get_logger("broker.kafka")

#: The Maven file shipped inside the package (``broker/cluster/kafka-pom.xml``, a link to
#: ``deploy/kafka/pom.xml`` in the source tree, so an installed wheel can fetch the jars).
POM = Path(__file__).resolve().parent / "kafka-pom.xml"


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in the Maven file."""
    try:
        text = pom.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"The Maven file for Kafka's jars is missing: {pom}."
        raise KafkaRuntimeError(msg) from None
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", text)
    if not match:
        msg = f"{pom} does not pin <kafka.version>."
        raise KafkaRuntimeError(msg)
    return match.group(1).strip()


def require(tool: str, why: str) -> str:
    """The path of ``tool``, or one sentence naming what is missing and how to install it."""
    path = shutil.which(tool)
    if path is None:
        msg = f"{why} is not installed: no `{tool}` on PATH (on Debian: apt-get install {_PACKAGES[tool]})."
        raise KafkaRuntimeError(msg)
    return path


_PACKAGES = {"java": "openjdk-17-jre-headless", "mvn": "maven"}


def jars_dir(settings: Settings) -> Path:
    """Where the jars of the pinned Kafka version are cached."""
    return settings.cache_dir / f"kafka-{kafka_version()}" / "libs"


def fetch_jars(settings: Settings, *, quiet: bool = False) -> Path:
    """Resolve the broker's jars from Maven Central into the cache, once. Returns the folder."""
    target = jars_dir(settings)
    if (target / ".complete").exists():
        return target
    require("java", "Java")
    mvn = require("mvn", "Maven")
    version = kafka_version()
    if not quiet:
        print(
            f"Fetching Apache Kafka {version} jars from Maven Central into {target} (first run only)...",
            flush=True,
        )
    staging = target.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-f",
        str(POM),
        "-B",
        "-q",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        msg = "Maven could not fetch Kafka's jars from Maven Central: " + " | ".join(tail)
        raise KafkaRuntimeError(msg)
    (staging / ".complete").write_text(version + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    log.info("kafka jars fetched", version=version, path=str(target))
    return target


def classpath(settings: Settings) -> str:
    """The Java class path of the cached Kafka jars."""
    return str(fetch_jars(settings) / "*")
