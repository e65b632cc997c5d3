"""Loads image-classification datasets as NumPy arrays split into train / validation / test.

The default dataset, ``mnist5k``, is a 5,000-image MNIST subset vendored in ``embedded/`` (see
``embedded/README.md``), so a search runs with no network; so is ``cifar10_5k``, 5,000 real
CIFAR-10 images (4,000 of the training set, 1,000 of the test set: its test split). ``mnist``,
``fashion_mnist`` and ``cifar10`` come from tensorflow-datasets and must have been prepared
(downloaded) first.

Every split is stratified by class and seeded; the validation split is always carved out of the
training data, so the test split is never used for model selection.

What this module must not do: contain Keras or model code, or import TensorFlow /
tensorflow-datasets at module level (they are imported lazily, only for the tfds datasets, so the
default path stays fast and free of TensorFlow).
"""

import dataclasses
import numbers
import os
import pathlib

import numpy as np

from run_log import error_line

DATASETS = ("mnist5k", "cifar10_5k", "mnist", "fashion_mnist", "cifar10")
TFDS_DATASETS = ("mnist", "fashion_mnist", "cifar10")  # The others are embedded.
# Training examples of each dataset, the pool the validation split is drawn from (mnist5k:
# its 5,000 less the fixed test split; the others: tfds's `train` split), so that sizes
# can be checked before anything is loaded (`check_sizes`).
TRAINING_EXAMPLES = {
    "mnist5k": 4000, "cifar10_5k": 4000, "mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000,
}

# The vendored MNIST subset and its fixed test split.
EMBEDDED_PATH = pathlib.Path(__file__).resolve().parent / "embedded" / "mnist_5k.npz"
# The vendored CIFAR-10 subset: its own training (4,000) and test (1,000) images.
CIFAR10_5K_PATH = EMBEDDED_PATH.with_name("cifar10_5k.npz")
MNIST5K_TEST_SIZE = 1000  # 100 per class.
# The mnist5k test split uses its own fixed seed, not the caller's, so that test accuracies from
# runs with different seeds are measured on the same images.
_MNIST5K_TEST_SEED = 20240605

_TFDS_DEFAULT_DIR = "~/tensorflow_datasets"


class DataError(ValueError):
    """A bad argument to ``load_dataset`` or a dataset that cannot be loaded.

    The message is always one line naming the bad value and what is allowed, or how to prepare
    the missing data.
    """


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value.
class Dataset:
    """A dataset split into train / validation / test NumPy arrays.

    Images are float32 in [0, 1] with shape (N, height, width, channels); labels are int32 with
    shape (N,).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self):
        """The shape of one image, e.g. ``(28, 28, 1)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def describe(self):
        """Returns a one-line summary of the split sizes, image shape and number of classes."""
        shape = "x".join(str(d) for d in self.input_shape)
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} val / "
            f"{len(self.y_test)} test, {shape}, {self.num_classes} classes"
        )


def load_dataset(
    name="mnist5k", *, train_size=None, val_size=500, seed=0, data_dir=None, download=False
):
    """Loads a dataset and splits it into train / validation / test.

    The validation split is drawn (stratified, seeded) from the training data. For ``mnist5k`` the
    test split is a fixed 1,000 images (100 per class) that does not depend on ``seed``; for the
    tfds datasets it is the tfds ``test`` split.

    Args:
      name: one of ``DATASETS``.
      train_size: number of training examples, or None for all that remain after the validation
        split. A smaller number subsamples the training part (stratified, seeded).
      val_size: number of validation examples (at least 1).
      seed: non-negative integer seeding the validation split and the training subsample.
      data_dir: tfds data directory (default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        Ignored for ``mnist5k``.
      download: whether tfds may download and prepare a missing dataset. Ignored for ``mnist5k``.

    Returns:
      A ``Dataset`` with float32 NHWC images in [0, 1] and int32 labels.

    Raises:
      DataError: for an unknown name, a bad size or seed, sizes larger than the training data, or a
        tfds dataset that is not prepared and cannot be downloaded.
    """
    name = _check_name(name)
    val_size = _check_size("val_size", val_size)
    if train_size is not None:
        train_size = _check_size("train_size", train_size)
    seed = _check_seed(seed)

    if name == "mnist5k":
        (x_pool, y_pool), (x_test, y_test), num_classes = _load_mnist5k()
    elif name == "cifar10_5k":
        (x_pool, y_pool), (x_test, y_test), num_classes = _load_cifar10_5k()
    else:
        (x_pool, y_pool), (x_test, y_test), num_classes = _load_tfds(name, data_dir, download)

    train_idx, val_idx = split_train_val(
        y_pool, val_size=val_size, train_size=train_size, seed=seed
    )
    return Dataset(
        name=name,
        x_train=_to_images(x_pool[train_idx]),
        y_train=_to_labels(y_pool[train_idx]),
        x_val=_to_images(x_pool[val_idx]),
        y_val=_to_labels(y_pool[val_idx]),
        x_test=_to_images(x_test),
        y_test=_to_labels(y_test),
        num_classes=num_classes,
    )


def split_train_val(labels, *, val_size, train_size=None, seed=0):
    """Splits example indices into stratified, seeded training and validation indices.

    Args:
      labels: 1-D integer array of class labels of the available training data.
      val_size: number of validation indices.
      train_size: number of training indices, or None for all the rest.
      seed: seed of the shuffle.

    Returns:
      ``(train_idx, val_idx)``: disjoint int64 index arrays into ``labels``, each shuffled.

    Raises:
      DataError: if the sizes do not fit into ``len(labels)``.
    """
    check_split(len(labels), train_size, val_size)
    rng = np.random.default_rng(seed)
    val_idx, train_idx = _stratified_take(labels, val_size, rng)
    if train_size is not None and train_size < len(train_idx):
        keep, _ = _stratified_take(labels[train_idx], train_size, rng)
        train_idx = train_idx[keep]
    return train_idx, val_idx


def check_sizes(name, train_size, val_size):
    """Checks `train_size` and `val_size` against `name`'s TRAINING_EXAMPLES, before
    anything is loaded (`load_dataset` checks them against the loaded data too).

    Returns:
      The number of training examples the split will have.

    Raises:
      DataError: an unknown dataset, a bad size, or sizes that do not fit.
    """
    name = _check_name(name)
    val_size = _check_size("val_size", val_size)
    if train_size is not None:
        train_size = _check_size("train_size", train_size)
    return check_split(TRAINING_EXAMPLES[name], train_size, val_size)


def check_split(available, train_size, val_size):
    """Checks that `train_size` (None: all the rest) and `val_size` examples fit into
    `available`; returns the training examples of the split.

    Raises:
      DataError: if they do not fit.
    """
    if train_size is None:
        if val_size >= available:
            raise DataError(
                f"val_size={val_size} leaves no training data: at most {available - 1} of the "
                f"{available} available training examples can go to validation"
            )
        return available - val_size
    if train_size + val_size > available:
        raise DataError(
            f"train_size={train_size} + val_size={val_size} = {train_size + val_size} exceeds "
            f"the {available} available training examples (maximum train_size + val_size is "
            f"{available})"
        )
    return train_size


def mnist5k_test_indices(labels):
    """Returns the fixed ``mnist5k`` split as ``(test_idx, rest_idx)`` index arrays.

    The split uses a fixed seed, never the caller's, so the test images are the same in every run.

    Args:
      labels: the 5,000 labels of the embedded file.

    Returns:
      ``(test_idx, rest_idx)``: disjoint index arrays, 1,000 test indices (100 per class) and the
      4,000 others.
    """
    return _stratified_take(labels, MNIST5K_TEST_SIZE, np.random.default_rng(_MNIST5K_TEST_SEED))


# ----------------------------------------------------------------------------------------------
# Argument checks.


def _check_name(name):
    if not isinstance(name, str) or name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return name


def _check_size(arg, value):
    # bool is an Integral too, but size=True is certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(f"{arg}={value!r} must be an integer >= 1")
    if value < 1:
        raise DataError(f"{arg}={value} must be an integer >= 1")
    return int(value)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


# ----------------------------------------------------------------------------------------------
# Splitting.


def _stratified_take(labels, n, rng):
    """Draws ``n`` indices with class proportions as close as possible to those of ``labels``.

    Per-class quotas use the largest-remainder method (ties broken at random), so every class
    gets its proportional share rounded down or up by one.

    Returns:
      ``(taken, rest)``: disjoint, individually shuffled int64 index arrays covering ``labels``.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    exact = n * counts / len(labels)
    quotas = np.floor(exact).astype(np.int64)
    leftover = n - int(quotas.sum())
    # Classes with the largest fractional parts get one more; a random permutation first makes the
    # stable sort break ties at random instead of always favouring the low class labels.
    order = rng.permutation(len(classes))
    by_fraction = order[np.argsort(-(exact - quotas)[order], kind="stable")]
    quotas[by_fraction[:leftover]] += 1

    taken, rest = [], []
    for cls, quota in zip(classes, quotas):
        members = rng.permutation(np.flatnonzero(labels == cls))
        taken.append(members[:quota])
        rest.append(members[quota:])
    # Shuffle across classes too: the embedded rows are ordered by class.
    return rng.permutation(np.concatenate(taken)), rng.permutation(np.concatenate(rest))


# ----------------------------------------------------------------------------------------------
# Sources.


def _embedded(path):
    """The arrays of an embedded .npz, read whole (DataError: the file is missing)."""
    if not path.is_file():
        raise DataError(
            f"embedded dataset {path} is missing: restore embedded/{path.name} from the repository"
        )
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _load_mnist5k():
    """Returns ``((x_pool, y_pool), (x_test, y_test), num_classes)`` from the embedded file."""
    arrays = _embedded(EMBEDDED_PATH)
    x, y = arrays["x"], arrays["y"]
    test_idx, pool_idx = mnist5k_test_indices(y)
    return (x[pool_idx], y[pool_idx]), (x[test_idx], y[test_idx]), 10


def _load_cifar10_5k():
    """Returns ``((x_train, y_train), (x_test, y_test), 10)`` from the embedded CIFAR-10 file."""
    a = _embedded(CIFAR10_5K_PATH)
    return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"]), 10


def _tfds_folder(name, data_dir, download):
    """(data_dir expanded, the folder tfds reads, how to prepare the dataset there)."""
    if data_dir is not None:
        data_dir = os.fspath(pathlib.Path(data_dir).expanduser())
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or _TFDS_DEFAULT_DIR
    build = f"`tfds build {name} --data_dir=DIR` and pass data_dir=DIR (train.py --data_dir=DIR)"
    if download:
        how_to_prepare = f"on a machine with network access, rerun or run {build}"
    else:
        how_to_prepare = (
            f"rerun with download=True (train.py --download) on a machine with network "
            f"access, or run {build}"
        )
    return data_dir, where, how_to_prepare


def check_prepared(name, data_dir=None, download=False):
    """A tfds dataset that may not be downloaded and has no folder of its own in the data
    directory is not prepared: train.py says so at once, before TensorFlow is imported
    (tfds keeps a dataset in DATA_DIR/NAME/VERSION; `load_dataset` leaves the question to
    tfds, whose test doubles serve data from no folder). The embedded datasets are always
    there.

    Raises:
      DataError: the dataset is not prepared and cannot be downloaded.
    """
    if name not in TFDS_DATASETS or download:
        return
    _, where, how_to_prepare = _tfds_folder(name, data_dir, download)
    if not os.path.isdir(os.path.join(os.path.expanduser(where), name)):
        raise DataError(f"dataset {name!r} is not prepared in {where}: {how_to_prepare}")


def _load_tfds(name, data_dir, download):
    """Returns ``((x_train, y_train), (x_test, y_test), num_classes)`` from tensorflow-datasets.

    Raises:
      DataError: if the dataset is not prepared and cannot be downloaded.
    """
    import tensorflow_datasets as tfds  # Lazy: TensorFlow is slow to import and rarely needed.
    from absl import logging as absl_logging

    data_dir, where, how_to_prepare = _tfds_folder(name, data_dir, download)
    # tfds reports progress through absl logging; keep it off stderr while it looks.
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        (train, test), info = tfds.load(
            name,
            split=["train", "test"],
            as_supervised=True,
            with_info=True,
            data_dir=data_dir,
            download=download,
        )
    except AssertionError as error:
        # tfds signals "not prepared" with a bare AssertionError ("could not find data in ...").
        raise DataError(f"dataset {name!r} is not prepared in {where}: {how_to_prepare}") from error
    except (ImportError, OSError, tfds.download.DownloadError) as error:
        # No network (OSError / DownloadError) or a missing optional tfds dependency.
        raise DataError(
            f"could not download dataset {name!r} into {where} ({error_line(error, kind=False)}): "
            f"{how_to_prepare}"
        ) from error
    finally:
        absl_logging.set_verbosity(verbosity)
    num_classes = int(info.features["label"].num_classes)
    return _as_arrays(tfds, train, name), _as_arrays(tfds, test, name), num_classes


def _as_arrays(tfds, dataset, name):
    """Converts a supervised ``tf.data.Dataset`` to ``(images, labels)`` NumPy arrays.

    This batches by the split's cardinality instead of passing ``batch_size=-1`` to
    ``tfds.load``: that option batches by ``info.splits.total_num_examples``, which is 0 under
    ``tfds.testing.mock_data`` and then becomes ``sys.maxsize``, and TensorFlow 2.21 aborts the
    whole process (``std::length_error``) on such a batch size.
    """
    count = int(dataset.cardinality())
    if count == 0:
        raise DataError(f"dataset {name!r} has an empty split: re-prepare it with tfds build")
    if count > 0:
        images, labels = next(iter(tfds.as_numpy(dataset.batch(count))))
    else:  # Unknown cardinality: collect the examples one by one.
        pairs = list(tfds.as_numpy(dataset))
        images = np.stack([image for image, _ in pairs])
        labels = np.array([label for _, label in pairs])
    return images, labels


# ----------------------------------------------------------------------------------------------
# Conversion.


def _to_images(x):
    """uint8 images -> float32 in [0, 1], always NHWC (grayscale gets a channel axis)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    return x.astype(np.float32) / np.float32(255.0)


def _to_labels(y):
    return np.asarray(y).astype(np.int32).reshape(-1)
