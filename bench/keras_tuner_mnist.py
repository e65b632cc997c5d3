"""The strategies as Keras Tuner oracles against Keras Tuner's own, on a small Keras model
trained on mnist5k.

  python bench/keras_tuner_mnist.py [--seeds 5] [--trials 24] [--budgets 8,24]

The hypermodel is a dense network on the embedded MNIST subset (2,000 training and 500
validation images split off with seed 0, the same for every run): width, activation,
dropout, learning rate and an optional second layer (its width conditional on it), 1,152
configurations. Each trial trains for one epoch (batch 128); its score is Keras Tuner's
(the best epoch's val_accuracy). The same oracles as bench/keras_tuner_nb201.py, fewer
seeds and trials because every trial trains (the Bayesian optimisation oracle fewer again).
Writes bench/results/keras_tuner_mnist.md.
"""

import gc
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402

import data  # noqa: E402
import keras_tuner_nb201 as nb201_bench  # noqa: E402

DATA = data.load_dataset("mnist5k", train_size=2000, val_size=500, seed=0)
ORACLES = nb201_bench.oracles("val_accuracy")


def build_model(hp):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])
    model.add(keras.layers.Dense(hp.Int("units", 32, 256, step=32),
                                 activation=hp.Choice("activation", ["relu", "tanh", "elu"])))
    model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)))
    second = hp.Boolean("second_layer")
    with hp.conditional_scope("second_layer", [True]):
        units2 = hp.Choice("units2", [16, 32, 64])
    if second:
        model.add(keras.layers.Dense(units2, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    learning_rate = hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(name, trials, seed, directory):
    keras.utils.set_random_seed(seed)
    oracle = ORACLES[name](trials, seed)
    tuner = kt.Tuner(oracle=oracle, hypermodel=build_model, directory=directory,
                     project_name=f"{name}-{seed}".replace('"', "").replace(" ", "_"),
                     overwrite=True)
    started = time.perf_counter()
    tuner.search(DATA.x_train, DATA.y_train, validation_data=(DATA.x_val, DATA.y_val), epochs=1,
                 batch_size=128, verbose=0)
    seconds = time.perf_counter() - started
    scores = [oracle.trials[t].score for t in oracle.start_order]
    # Keras Tuner keeps what each trial built: without this the process grows by gigabytes
    # over a few hundred trials and every trial slows down.
    del tuner
    keras.backend.clear_session()
    gc.collect()
    return np.maximum.accumulate(100 * np.asarray(scores, dtype=float)), seconds


def main():
    args = nb201_bench.arguments(__doc__, 5, 24, "8,24", "keras_tuner_mnist.md")
    budgets = [int(b) for b in args.budgets.split(",")]
    names = args.oracles.split(",")
    directory = tempfile.mkdtemp(prefix="nas-bench-kt-mnist-")
    started = time.perf_counter()
    best, rate = nb201_bench.compare(
        names, lambda name, n, seed: run(name, n, seed, directory), args)
    lines = [
        "# The strategies as Keras Tuner oracles on a dense network trained on mnist5k",
        "",
        f"`python bench/keras_tuner_mnist.py --seeds {args.seeds} --trials {args.trials} "
        f"--budgets {args.budgets} --slow_seeds {args.slow_seeds} --slow_trials "
        f"{args.slow_trials}`; {time.perf_counter() - started:.0f} s in all. Best validation "
        f"accuracy (%) among the first N trials (one epoch each); 95% bootstrap interval over "
        f"{args.seeds} seeds; p: two-sided Mann-Whitney against {nb201_bench.BASELINE} at the "
        f"same N.",
        "",
        *nb201_bench.table(names, best, rate, budgets, args.seeds),
    ]
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
