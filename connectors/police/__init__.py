"""The police connector: forces' incident and protection-notice exports (CSV or JSON), mapped
by a declarative mapping file to DOMESTIC_ABUSE_INCIDENT, MISSING_EPISODE and EXPLOITATION_CONCERN."""

from __future__ import annotations

from connectors.police.mapper import PoliceMapper, load_mapping, reader_for

__all__ = ["PoliceMapper", "load_mapping", "reader_for"]
