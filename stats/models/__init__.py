"""The warehouse: a statistical cube of the figures NCMEC prints.

- catalog: what is counted (Indicator, grouped by Topic), how it is broken down (Dimension,
  Member, MemberAlias) and where it was printed (Source);
- observations: one printed figure each (Observation, its ObservationMember breakdown, its
  Restatements elsewhere in the same document), and DataVersion, bumped by every write;
- imports: the record of every import (ImportRecord) and uploads awaiting their confirm (ImportPreview).

Integrity rules live in the database (constraints and triggers, see migrations) so that every
entry point obeys them; writes go through stats.services.
"""

from stats.models.catalog import Dimension, Indicator, Member, MemberAlias, Source, Topic, Unit
from stats.models.imports import ImportPreview, ImportPreviewPart, ImportRecord
from stats.models.observations import (
    DataVersion,
    Flag,
    Observation,
    Period,
    Qualifier,
    Restatement,
)

__all__ = [
    "DataVersion",
    "Dimension",
    "Flag",
    "ImportPreview",
    "ImportPreviewPart",
    "ImportRecord",
    "Indicator",
    "Member",
    "MemberAlias",
    "Observation",
    "Period",
    "Qualifier",
    "Restatement",
    "Source",
    "Topic",
    "Unit",
]
