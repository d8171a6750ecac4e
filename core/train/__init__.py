"""Trainers for all five methods: one loop (loop.py), per-method losses (methods.py), data (data.py)."""

from fauve.train.loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
