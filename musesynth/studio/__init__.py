"""musesynth studio: compose in the browser (``musesynth studio``), the last stage of the pipeline.

``catalog`` lists what a person can choose (models, corpus pieces, keys), ``uploads`` checks primers,
``jobs`` runs generations one at a time in a background thread, ``server`` is the local web app and
``static/index.html`` its single page.
"""
