"""taskzoo: learn, compare and use recurrent neural networks on real tasks."""

__version__ = "0.1.0"
