"""Train the paper's R(2+1)D-18 virality model on an export and score videos with a trained run."""

from .loop import TrainConfig, train
from .predict import predict

__all__ = ["TrainConfig", "train", "predict"]
