"""The job builder's parts: the draft and its session keys (``draft``), a widget per model
field (``widgets``), and one module per section (``basics``, ``calls``, ``files``,
``mapping``). ``views/jobs.py`` lays them out."""
