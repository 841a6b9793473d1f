"""MNIST Studio's library: data, models, training, evaluation, sketches, checkpoints and the CLI.

Importable without Streamlit; the app, the CLI, the tests and the benchmark all stand on it.
"""

from mnist_core.errors import StudioError

__all__ = ["StudioError"]
