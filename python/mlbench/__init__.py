"""mlbench: the Python harness that expands matrices, runs tasks and judges their records."""

__version__ = "0.1.0"
