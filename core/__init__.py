"""fauve: real-time neural style transfer (Johnson, Ulyanov, Dumoulin, MSG-Net, AdaIN)."""

__version__ = "0.1.0"
