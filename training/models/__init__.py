"""Models: the kinds behind one protocol (`base.py`, `registry.py`, `kinds/`), and what
every kind shares — feature encoding, calibration, score scaling and the decision rule —
put together as the `ModelSpec` that is logged and served (`spec.py`)."""
