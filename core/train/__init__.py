"""Trainers for all five methods: one loop (loop.py), per-method losses (methods.py), data (data.py),
per-method defaults (defaults.py, torch-free)."""
