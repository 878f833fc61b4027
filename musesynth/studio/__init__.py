"""musesynth studio: compose in the browser (``musesynth studio``), the last stage of the pipeline.

``catalog`` lists what a person can choose (models and their controls, corpus pieces, keys), ``uploads``
checks primers, ``jobs`` runs generations and infills one at a time in a background thread, ``rewrite``
checks a request to rewrite bars of a primer, ``server`` is the local web app and ``static/index.html`` its
single page.
"""
