"""Compiling filters: one builder per language behind one interface (see base.py)."""
