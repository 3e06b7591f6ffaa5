"""Train the paper's R(2+1)D-18 virality model on an export and score videos with a trained run.

``train`` loads torch on first use, so importing the options (the CLI does) costs nothing.
"""

from typing import Any

from .config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from .loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
