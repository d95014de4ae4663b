"""What a file connector run did: every record accounted for, and the sentence a person reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Summary"]


@dataclass
class Summary:
    """What a run did. ``counts`` has the keys of :data:`COUNT_NAMES`, and ``withheld``: events
    published with at least one data-quality finding (a field withheld, or doubtful).

    Args:
        withheld_reasons: data-quality findings by field and reason.
        dead_letter_reasons: dead letters by reason.
        unsupported: files in the source that the connector does not read, by name.
        skipped_tables: files recognised but carrying nothing to publish, by kind.
        corrections: of the published, the corrections of earlier events, by kind
            (``AMENDED``, ``RETRACTED``).
    """

    counts: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    files: int = 0
    failed_files: list[str] = field(default_factory=list)
    stopped: bool = False
    withheld_reasons: Counter[str] = field(default_factory=Counter)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    unsupported: list[str] = field(default_factory=list)
    skipped_tables: Counter[str] = field(default_factory=Counter)
    corrections: Counter[str] = field(default_factory=Counter)

    @property
    def used_nothing(self) -> bool:
        """Whether the run read nothing it could use: no record published, dead-lettered, done
        before or mapped to nothing for a reason of its own (only unread files and records of
        kinds it does not use)."""
        c = self.counts
        usable = c["published"] + c["dead_lettered"] + c["already_done"] + c["no_event"]
        not_used = sum(self.kinds.values())
        return usable - not_used <= 0

    def line(self) -> str:
        """One sentence a person reads at the end of a run."""
        c = self.counts
        text = (
            f"{self.files} file(s): {c['read']} read, {c['published']} published, "
            f"{c['dead_lettered']} dead-lettered, {c['already_done']} skipped as already done, "
            f"{c['no_event']} with nothing to publish."
        )
        if self.kinds:
            parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(self.kinds.items()))
            text = text[:-1] + f" ({parts})."
        if self.corrections:
            told = ", ".join(f"{n} {k.lower()}" for k, n in sorted(self.corrections.items()))
            text += f" {sum(self.corrections.values())} of them correction(s) of earlier events ({told})."
        if c["withheld"]:
            text += f" {c['withheld']} of them published with a data-quality finding."
        if self.skipped_tables:
            tables = ", ".join(f"{kind} {n}" for kind, n in sorted(self.skipped_tables.items()))
            text += f" {sum(self.skipped_tables.values())} file(s) skipped as not published ({tables})."
        if self.unsupported:
            text += f" {len(self.unsupported)} file(s) not read (unsupported): {', '.join(self.unsupported)}."
        if self.failed_files:
            text += f" {len(self.failed_files)} file(s) could not be read."
        if self.stopped:
            text += " Stopped on request; run again to resume."
        return text

    @property
    def usable(self) -> bool:
        """Whether the run read anything it could use: a record of a kind it reads, or a file it
        recognised (records only of kinds it does not use, or none at all, are nothing usable)."""
        return bool(self.skipped_tables) or not self.used_nothing

    def report(self) -> list[str]:
        """Every dead-letter and data-quality reason with its count, one line each."""
        lines = [f"dead-lettered {n}: {reason}" for reason, n in sorted(self.dead_letter_reasons.items())]
        lines += [f"withheld {n}: {reason}" for reason, n in sorted(self.withheld_reasons.items())]
        return lines
