"""Tests for data.py: splits, determinism, error messages, and tfds through mock data."""

import hashlib
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data  # noqa: E402
from data import DATASETS, DataError, Dataset, load_dataset  # noqa: E402


def _row_hashes(x):
    return {hashlib.sha1(row.tobytes()).hexdigest() for row in x}


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset()


@pytest.fixture
def no_network(monkeypatch):
    """Makes any attempt to open a network connection fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# ----------------------------------------------------------------------------------------------
# mnist5k: shapes, ranges, splits.


def test_embedded_file_matches_published_checksum():
    digest = hashlib.sha256(data.EMBEDDED_PATH.read_bytes()).hexdigest()
    assert digest == "f814240cf7e0d3cbaacc1a898905819a40ab46fb317a600d2a4b91a5c184c810"


def test_mnist5k_shapes_dtypes_and_ranges(mnist5k):
    assert isinstance(mnist5k, Dataset)
    assert mnist5k.name == "mnist5k"
    assert mnist5k.num_classes == 10
    assert mnist5k.input_shape == (28, 28, 1)
    for x, y, n in [
        (mnist5k.x_train, mnist5k.y_train, 3500),
        (mnist5k.x_val, mnist5k.y_val, 500),
        (mnist5k.x_test, mnist5k.y_test, 1000),
    ]:
        assert x.shape == (n, 28, 28, 1)
        assert x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert x.max() == 1.0  # Scaled by 255, not by some per-split maximum.
        assert y.shape == (n,)
        assert y.dtype == np.int32
        assert set(np.unique(y)) == set(range(10))


def test_describe_is_one_line_summary(mnist5k):
    assert mnist5k.describe() == "mnist5k: 3500 train / 500 val / 1000 test, 28x28x1, 10 classes"


def test_mnist5k_splits_are_stratified(mnist5k):
    assert np.array_equal(np.bincount(mnist5k.y_test), [100] * 10)
    assert np.array_equal(np.bincount(mnist5k.y_val), [50] * 10)
    assert np.array_equal(np.bincount(mnist5k.y_train), [350] * 10)


@pytest.mark.parametrize("val_size", [1, 7, 55, 333])
def test_uneven_val_sizes_stay_stratified(val_size):
    ds = load_dataset(val_size=val_size, seed=3)
    counts = np.bincount(ds.y_val, minlength=10)
    assert counts.sum() == val_size
    assert np.all(np.abs(counts - val_size / 10) <= 1)
    assert len(ds.y_train) == 4000 - val_size


def test_train_size_subsamples_stratified():
    ds = load_dataset(train_size=1000, val_size=200, seed=1)
    assert ds.x_train.shape == (1000, 28, 28, 1)
    assert np.array_equal(np.bincount(ds.y_train), [100] * 10)
    assert len(ds.y_val) == 200
    assert len(ds.y_test) == 1000


def test_train_size_may_use_all_remaining_data():
    ds = load_dataset(train_size=3500, val_size=500)
    assert len(ds.y_train) == 3500


def test_splits_never_overlap_by_image_content(mnist5k):
    # The 5,000 embedded images are pairwise distinct, so content hashes identify rows.
    train, val, test = (_row_hashes(x) for x in (mnist5k.x_train, mnist5k.x_val, mnist5k.x_test))
    assert len(train) + len(val) + len(test) == 5000
    assert not train & val and not train & test and not val & test


def test_split_indices_partition_the_embedded_rows():
    with np.load(data.EMBEDDED_PATH, allow_pickle=False) as archive:
        labels = archive["y"]
    test_idx, rest_idx = data.mnist5k_test_indices(labels)
    train_idx, val_idx = data.split_train_val(labels[rest_idx], val_size=500, seed=4)
    # Map pool positions back to rows of the file.
    train_rows, val_rows = rest_idx[train_idx], rest_idx[val_idx]
    all_rows = np.concatenate([train_rows, val_rows, test_idx])
    assert len(all_rows) == 5000
    assert np.array_equal(np.sort(all_rows), np.arange(5000))


def test_rows_are_shuffled_across_classes(mnist5k):
    # The file is ordered by class; a split that kept that order would make batches single-class.
    assert np.any(np.diff(mnist5k.y_train) < 0)
    assert np.any(np.diff(mnist5k.y_val) < 0)


# ----------------------------------------------------------------------------------------------
# Determinism.


def test_same_seed_gives_identical_arrays():
    a, b = load_dataset(seed=7, train_size=300, val_size=100), load_dataset(
        seed=7, train_size=300, val_size=100
    )
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_other_seed_gives_other_val_split_but_same_test_split(mnist5k):
    other = load_dataset(seed=1)
    assert _row_hashes(other.x_val) != _row_hashes(mnist5k.x_val)
    assert np.array_equal(other.x_test, mnist5k.x_test)
    assert np.array_equal(other.y_test, mnist5k.y_test)


def test_numpy_integer_sizes_are_accepted():
    ds = load_dataset(train_size=np.int64(100), val_size=np.int32(50), seed=np.uint8(2))
    assert (len(ds.y_train), len(ds.y_val)) == (100, 50)


# ----------------------------------------------------------------------------------------------
# Errors: each path, one line, naming the bad value.


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"name": "imagenet"}, r"unknown dataset 'imagenet': choose one of mnist5k, cifar10_5k, mnist, "),
        ({"name": None}, r"unknown dataset None"),
        ({"val_size": 0}, r"val_size=0 must be an integer >= 1"),
        ({"val_size": -5}, r"val_size=-5 must be an integer >= 1"),
        ({"train_size": 0}, r"train_size=0 must be an integer >= 1"),
        ({"val_size": 10.5}, r"val_size=10\.5 must be an integer"),
        ({"train_size": 100.0}, r"train_size=100\.0 must be an integer"),
        ({"val_size": "500"}, r"val_size='500' must be an integer"),
        ({"val_size": True}, r"val_size=True must be an integer"),
        ({"seed": -1}, r"seed=-1 must be a non-negative integer"),
        ({"seed": 1.5}, r"seed=1\.5 must be a non-negative integer"),
        (
            {"train_size": 3600, "val_size": 500},
            r"train_size=3600 \+ val_size=500 = 4100 exceeds the 4000 available .*maximum .* 4000",
        ),
        ({"val_size": 4000}, r"val_size=4000 leaves no training data: at most 3999 of the 4000"),
    ],
)
def test_bad_arguments_raise_one_line_data_error(kwargs, pattern):
    with pytest.raises(DataError, match=pattern) as info:
        load_dataset(**kwargs)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_datasets_constant():
    assert DATASETS == ("mnist5k", "cifar10_5k", "mnist", "fashion_mnist", "cifar10")


# ----------------------------------------------------------------------------------------------
# cifar10_5k: the embedded CIFAR-10 images.


def test_cifar10_5k_is_the_published_file_with_its_first_labels():
    digest = hashlib.sha256(data.CIFAR10_5K_PATH.read_bytes()).hexdigest()
    assert digest == "5e81f99fe5af185b32d0cb5efbf72c956a858f8e684fdfba6995f9e197878f5c"
    with np.load(data.CIFAR10_5K_PATH) as archive:  # CIFAR-10's own first labels of each split.
        assert archive["y_train"][:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
        assert archive["y_test"][:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


def test_cifar10_5k_splits_its_training_images_stratified_and_keeps_its_test_images():
    """The validation split comes out of the 4,000 training images, stratified and seeded;
    the test split is the file's 1,000 test images whatever the seed."""
    with np.load(data.CIFAR10_5K_PATH) as archive:
        x_train, y_train, x_test = archive["x_train"], archive["y_train"], archive["x_test"]
    d = load_dataset("cifar10_5k", val_size=1000, seed=3)
    assert d.input_shape == (32, 32, 3) and d.num_classes == 10
    assert len(d.y_train) == 3000 and len(d.y_val) == 1000 and len(d.y_test) == 1000
    np.testing.assert_array_equal(d.x_test, x_test.astype(np.float32) / 255)
    _, counts = np.unique(y_train, return_counts=True)
    _, val_counts = np.unique(d.y_val, return_counts=True)
    assert np.all(np.abs(val_counts - counts / 4) <= 1)  # Each class's share, rounded.
    pool = {x.tobytes() for x in x_train}
    seen = [x.tobytes() for x in (np.round(np.concatenate([d.x_train, d.x_val]) * 255).astype(np.uint8))]
    assert len(set(seen)) == len(seen) == 4000 and set(seen) <= pool  # Disjoint, from the pool.
    other = load_dataset("cifar10_5k", val_size=1000, seed=4)
    assert not np.array_equal(other.y_val, d.y_val)
    np.testing.assert_array_equal(other.x_test, d.x_test)


# ----------------------------------------------------------------------------------------------
# tensorflow-datasets.


def test_cifar10_through_tfds_mock_data(tmp_path, no_network):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=60):
        ds = load_dataset("cifar10", val_size=20, seed=0, data_dir=tmp_path)
    assert ds.name == "cifar10"
    assert ds.num_classes == 10
    assert ds.input_shape == (32, 32, 3)
    assert ds.x_train.shape == (40, 32, 32, 3)
    assert ds.x_val.shape == (20, 32, 32, 3)
    assert ds.x_test.shape == (60, 32, 32, 3)
    for x, y in [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]:
        assert x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int32 and y.ndim == 1
        assert y.min() >= 0 and y.max() < 10
    # Mock data serves the same examples to every split; only train vs val can be checked here.
    assert not _row_hashes(ds.x_train) & _row_hashes(ds.x_val)
    assert ds.describe() == "cifar10: 40 train / 20 val / 60 test, 32x32x3, 10 classes"


def test_tfds_sizes_are_checked_against_the_train_split(tmp_path, no_network):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=30):
        with pytest.raises(DataError, match=r"train_size=25 \+ val_size=10 = 35 exceeds the 30"):
            load_dataset("cifar10", train_size=25, val_size=10, data_dir=tmp_path)


def test_unprepared_tfds_dataset_raises_one_line_data_error(tmp_path, no_network):
    pytest.importorskip("tensorflow_datasets")
    empty = tmp_path / "tfds"
    empty.mkdir()
    with pytest.raises(
        DataError,
        match=r"'mnist' is not prepared in .*tfds: rerun with "
        r"download=True \(train.py --download\) .* `tfds build mnist --data_dir=DIR`",
    ) as info:
        load_dataset("mnist", data_dir=empty, download=False)
    assert "\n" not in str(info.value)
    assert str(empty) in str(info.value)
    # Nothing was downloaded or written as data.
    assert not [p for p in empty.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "train_size, val_size", [(None, 1), (None, 500), (300, 100), (3500, 500), (None, 3999)]
)
def test_check_sizes_knows_what_load_dataset_will_split_without_loading(train_size, val_size):
    expected = data.check_sizes("mnist5k", train_size, val_size)
    ds = load_dataset("mnist5k", train_size=train_size, val_size=val_size)
    assert len(ds.y_train) == expected and len(ds.y_val) == val_size


@pytest.mark.parametrize(
    "kwargs",
    [dict(train_size=3901, val_size=100), dict(val_size=4000), dict(val_size=0), dict(train_size=0)],
)
def test_check_sizes_refuses_what_load_dataset_refuses_with_the_same_line(kwargs):
    with pytest.raises(DataError) as loading:
        load_dataset("mnist5k", **{"val_size": 500, **kwargs})
    with pytest.raises(DataError) as checking:
        data.check_sizes("mnist5k", kwargs.get("train_size"), kwargs.get("val_size", 500))
    assert str(checking.value) == str(loading.value)


def test_a_tfds_dataset_without_its_folder_is_not_prepared_unless_it_may_be_downloaded(tmp_path):
    with pytest.raises(DataError, match=f"dataset 'cifar10' is not prepared in {tmp_path}: rerun"):
        data.check_prepared("cifar10", tmp_path, download=False)
    data.check_prepared("cifar10", tmp_path, download=True)  # tfds may fetch it.
    data.check_prepared("mnist5k", tmp_path, download=False)  # Embedded.
    (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)
    data.check_prepared("cifar10", tmp_path, download=False)  # tfds reads it from there.
