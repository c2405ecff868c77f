"""The one validated write path for observations, by concern:

- ``rows``: what an import delivers (ObservationRow) and what validation makes of it (ValidRow);
- ``validation``: the rules every row obeys;
- ``planning``: new, changed, unchanged and conflicting facts against the stored data;
- ``writing``: COPY for new facts, batched updates (the database keeps the preferred-source rule);
- ``importing``: the import service tying them together, all or nothing;
- ``edits``: staff corrections, flags and reverts of one observation;
- ``reverting``: undoing a whole import.
"""

from stats.models.observations import EDITABLE_FIELDS
from stats.services.observations.edits import (
    observation_correct,
    observation_flag,
    observation_revert,
    observation_update,
)
from stats.services.observations.importing import file_checksum, observations_import
from stats.services.observations.planning import Change, ImportResult
from stats.services.observations.reverting import ImportReverted, import_revert
from stats.services.observations.rows import ObservationRow, ValidRow

__all__ = [
    "EDITABLE_FIELDS",
    "Change",
    "ImportResult",
    "ImportReverted",
    "ObservationRow",
    "ValidRow",
    "file_checksum",
    "import_revert",
    "observation_correct",
    "observation_flag",
    "observation_revert",
    "observation_update",
    "observations_import",
]
