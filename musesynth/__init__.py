"""musesynth: learn from MIDI collections and compose new music.

Pipeline: tokenize -> data -> models -> training -> generate -> evaluate (and ablate).
Python API (imported on first use, so ``import musesynth`` stays light): ``load_model``, ``generate``,
``tokenize``, ``train``, ``Model``, ``Piece``.
"""

__version__ = "0.2.0"
__all__ = ["load_model", "generate", "tokenize", "train", "Model", "Piece", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from musesynth import api

        return getattr(api, name)
    raise AttributeError(f"module 'musesynth' has no attribute {name!r}")
