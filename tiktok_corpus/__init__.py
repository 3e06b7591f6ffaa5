"""tiktok-corpus: research-grade TikTok video datasets and virality models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tiktok-corpus")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
