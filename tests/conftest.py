"""Shared test setup: the repository root on sys.path, quiet TensorFlow, seeds, tiny data."""

import os
import pathlib
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import data  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seeds."""
    random.seed(0)
    np.random.seed(0)


@pytest.fixture
def tiny_dataset():
    """A small, learnable dataset: 8x8 images whose class is the bright quadrant."""
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 4, size=n).astype("int32")
        x = rng.uniform(0, 0.2, size=(n, 8, 8, 1)).astype("float32")
        for i, label in enumerate(y):
            r, c = divmod(int(label), 2)
            x[i, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4, 0] += 0.8
        return x, y

    x_train, y_train = make(96)
    x_val, y_val = make(32)
    x_test, y_test = make(32)
    return data.Dataset("tiny", x_train, y_train, x_val, y_val, x_test, y_test, num_classes=4)
