"""Every topic name, the builders of the per-agency and per-organisation names, and the
declaration of which topics exist (``deploy/topics.yaml``).

The contract's own names: no other module spells a topic. Names here are logical; a
deployment's ``SGB_TOPIC_PREFIX`` is put in front by :meth:`broker.settings.Settings.topic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas import yaml_text
from schemas.exceptions import TopicsError
from schemas.vocabulary import Agency, Audience

CONSENT_TOPIC = "sg.consent.v1"
STATUS_TOPIC = "sg.status.v1"
AUDIT_TOPIC = "sg.audit.decisions.v1"
#: Which of a child's identifiers are linked, candidates or unlinked (compacted, keyed by link id):
#: every filter process and a rebuild decide against the same linked child (POLICY.md principle 11).
IDENTITY_LINKS_TOPIC = "sg.identity.links.v1"
DLQ_TOPIC = "sg.dlq.v1"
#: Which dead letters have been replayed (compacted, keyed by the dead letter's position).
REPLAYED_TOPIC = "sg.dlq.replayed.v1"
SCHEMAS_TOPIC = "sg.schemas.v1"
#: Where a file connector's checkpoint is committed with each batch, in the same transaction
#: (compacted, keyed ``<connector name>/<file id>``): what Kafka committed is never re-sent.
CHECKPOINTS_TOPIC = "sg.checkpoints.v1"
#: The filter's share ledger (compacted, keyed by event id): who received each decided event,
#: so that a correction reaches exactly them and a re-sent event id is not decided twice.
SHARES_TOPIC = "sg.shares.v1"
INGRESS_PREFIX = "sg.ingress."
DELIVERY_PREFIX = "sg.deliver."

AGENCIES: tuple[str, ...] = tuple(agency.value for agency in Agency)
AUDIENCES: tuple[str, ...] = tuple(audience.value for audience in Audience)


def agency_part(agency: str) -> str:
    """The lower-case name an agency has in topic names and principals (``local_authority``)."""
    name = str(agency).upper()
    if name not in AGENCIES:
        msg = f"Agency {agency!r} is not one of {', '.join(AGENCIES)}."
        raise TopicsError(msg)
    return name.lower()


def ingress_topic(agency: str) -> str:
    """The logical ingress topic of an agency, e.g. ``sg.ingress.police.v1``."""
    return f"{INGRESS_PREFIX}{agency_part(agency)}.v1"


#: Every agency's ingress topic, in vocabulary order.
INGRESS_TOPICS: tuple[str, ...] = tuple(ingress_topic(agency) for agency in AGENCIES)


def delivery_topic(audience: str, organisation: str) -> str:
    """The logical delivery topic of one recipient organisation, e.g. ``sg.deliver.mash.202.v1``."""
    return f"{DELIVERY_PREFIX}{str(audience).lower()}.{organisation}.v1"


#: The declaration shipped inside the package (``schemas/topics.yaml``, a link to
#: ``deploy/topics.yaml`` in the source tree, so an installed wheel has it too).
DECLARATION = Path(__file__).resolve().parent / "topics.yaml"


class TopicSpec(BaseModel):
    """One declared topic."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^sg\.[A-Za-z0-9_.-]+\.v[0-9]+$")
    partitions: int = Field(ge=1, le=1000)
    replication_factor: int | None = Field(default=None, ge=1, le=7)
    config: dict[str, str] = Field(default_factory=dict)

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in (value or {}).items()}


class Deliveries(BaseModel):
    """The onboarded recipient organisations and the shape of their delivery topics."""

    model_config = ConfigDict(extra="forbid")
    partitions: int = Field(default=3, ge=1, le=1000)
    config: dict[str, str] = Field(default_factory=dict)
    organisations: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in (value or {}).items()}

    @field_validator("organisations")
    @classmethod
    def _known_audiences(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for audience, orgs in value.items():
            if audience not in AUDIENCES:
                msg = f"unknown audience {audience!r} (expected one of {', '.join(AUDIENCES)})"
                raise ValueError(msg)
            for org in orgs:
                if not org.replace("_", "").replace("-", "").isalnum():
                    msg = f"organisation code {org!r} of {audience} must be letters, digits, '-' or '_'"
                    raise ValueError(msg)
        return value


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replication_factor: int = Field(default=3, ge=1, le=7)
    config: dict[str, str] = Field(default_factory=dict)

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in (value or {}).items()}


class TopicDeclaration(BaseModel):
    """The whole declaration file."""

    model_config = ConfigDict(extra="forbid")
    defaults: Defaults = Field(default_factory=Defaults)
    topics: list[TopicSpec]
    deliveries: Deliveries = Field(default_factory=Deliveries)

    def all_topics(self) -> list[TopicSpec]:
        """Every declared topic, delivery topics expanded, with defaults applied (logical names)."""
        out = []
        for spec in self.topics:
            out.append(
                spec.model_copy(
                    update={
                        "replication_factor": spec.replication_factor or self.defaults.replication_factor,
                        "config": {**self.defaults.config, **spec.config},
                    }
                )
            )
        for audience, orgs in sorted(self.deliveries.organisations.items()):
            for org in orgs:
                out.append(
                    TopicSpec(
                        name=delivery_topic(audience, org),
                        partitions=self.deliveries.partitions,
                        replication_factor=self.defaults.replication_factor,
                        config={**self.defaults.config, **self.deliveries.config},
                    )
                )
        return out


def load_declaration(path: Path = DECLARATION) -> TopicDeclaration:
    """Read and validate the declaration; a bad file stops with one sentence naming it."""
    try:
        raw = yaml_text.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"Topic declaration {path} does not exist."
        raise TopicsError(msg) from None
    except yaml_text.YAMLError as exc:
        msg = f"Topic declaration {path} is not valid YAML: {exc}."
        raise TopicsError(msg) from None
    try:
        return TopicDeclaration.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = f"Topic declaration {path} is invalid at {where}: {first['msg']}."
        raise TopicsError(msg) from None
