"""musesynth: learn from MIDI collections and compose new music.

Pipeline: tokenize -> data -> models -> training -> generate -> evaluate (and ablate).
Python API: ``load_model``, ``generate``, ``harmonize``, ``infill``, ``tokenize``, ``Model``, ``Piece``
(``musesynth/api.py``) and ``train``
(``musesynth/training/keywords.py``, so inference never imports training),
loaded on first use (PEP 562), so ``import musesynth`` and ``musesynth --help`` do not import torch. These names
always mean the API: the subpackages ``musesynth.generate`` and ``musesynth.tokenize`` and the module
``musesynth.train`` are reached by their full module path (``from musesynth.generate.sampling import ...``), and
importing them never replaces the function of the same name.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.2.0"

_API = ("load_model", "generate", "harmonize", "infill", "tokenize", "train", "Model", "Piece", "Harmonization",
        "Infilling")
__all__ = [*_API, "__version__"]


class _Package(types.ModuleType):
    """The import system records each imported submodule on its package (``musesynth.generate = <module>``);
    for the API's names that record is skipped, so ``musesynth.generate`` stays the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    if name == "train":
        from musesynth.training.keywords import train

        return train
    if name in _API:
        from musesynth import api

        return getattr(api, name)
    raise AttributeError(f"module 'musesynth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


sys.modules[__name__].__class__ = _Package
