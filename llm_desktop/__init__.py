"""llm-desktop: manage local GGUF models and watch them load, for real."""

__version__ = "0.1.0"
