"""The shipped-model format now lives in ``musesynth.artifacts.shipped`` (below training and inference);
this name stays for scripts that import it from here."""

from musesynth.artifacts.shipped import (  # noqa: F401
    CONFIG,
    DEFAULT_MODEL,
    DIGEST,
    PRETRAINED_DIR,
    SHIPPED_FILES,
    WEIGHTS,
    export,
    is_shipped,
    load_shipped,
)
