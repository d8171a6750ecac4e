"""The five architectures, a registry by method name, and loading from folders or Hub repos."""

from fauve.models.base import METHODS, StyleModel, load_model, read_config
from fauve.models.johnson import JohnsonNet
from fauve.models.ulyanov import UlyanovNet
from fauve.models.dumoulin import DumoulinNet
from fauve.models.msgnet import MSGNet
from fauve.models.adain import AdaINNet

__all__ = ["METHODS", "StyleModel", "JohnsonNet", "UlyanovNet", "DumoulinNet", "MSGNet", "AdaINNet",
           "build_model", "load_model", "read_config"]


def build_model(method: str, **config) -> StyleModel:
    """A fresh (untrained) model of ``method`` with architecture arguments ``config``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[method](**config)
