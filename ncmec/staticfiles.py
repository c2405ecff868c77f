"""WhiteNoise's compressed, hashed static files, compressed once instead of at every `serve`.

`serve` runs collectstatic at each start, and WhiteNoise compresses every file every time:
with the vendored GraphiQL bundle (3.5 MB) that alone was ~10 s of CPU at brotli's slowest
setting. Here a file is compressed only when its compressed copies are missing or older, a
hashed name (its content in the name) never twice, and brotli runs at a quality that costs
~1/50 of the time for a few percent more bytes.
"""

from __future__ import annotations

import os
import re

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage

HASHED = re.compile(r"\.[0-9a-f]{12}\.[^./]+$")
BROTLI_QUALITY = 5


class OnceCompressor(Compressor):
    def compress(self, path: str) -> list[str]:
        copies = [path + ext for ext in (".br", ".gz") if os.path.exists(path + ext)]
        if copies and (HASHED.search(path) or all(os.path.getmtime(c) >= os.path.getmtime(path) for c in copies)):
            return copies
        return super().compress(path)

    @staticmethod
    def compress_brotli(data: bytes) -> bytes:
        import brotli

        return brotli.compress(data, quality=BROTLI_QUALITY)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    def create_compressor(self, **kwargs) -> Compressor:
        return OnceCompressor(**kwargs)
