"""The model kinds, one module each; a module's file name is the kind's `model.type`.

See `training/models/registry.py` for how they are found and `base.py` for what each
one offers (docs/ARCHITECTURE.md, "Adding a model kind").
"""
