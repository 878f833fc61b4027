"""musesynth: learn from MIDI collections and compose new music.

Pipeline: tokenize -> data -> models -> training -> generate -> evaluate (and ablate).
Python API: ``load_model``, ``generate``, ``tokenize``, ``train``, ``Model``, ``Piece`` (``musesynth/api.py``).
The names ``generate``, ``tokenize`` and ``train`` are the API functions here; the subpackages of the same
names are reached by their full module path (``from musesynth.generate.sampling import ...``).
"""

__version__ = "0.2.0"

from musesynth.api import Model, Piece, generate, load_model, tokenize, train  # noqa: E402

__all__ = ["load_model", "generate", "tokenize", "train", "Model", "Piece", "__version__"]
