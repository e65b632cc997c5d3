"""The controller RNN searching a Keras Tuner hypermodel (docs/KERAS_TUNER.md).

    python examples/keras_tuner_controller.py --trials=10 --epochs=1

A small dense network on mnist5k (the embedded MNIST subset): its width, activation, dropout
and an optional second layer are Keras Tuner hyperparameters, searched by this project's
controller through Keras Tuner's own `Tuner`. Run it again with `--resume` after an
interruption (Ctrl-C, or a kill) and it continues where it stopped.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up lines, as train.py.

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402

import data  # noqa: E402
from keras_tuner_oracles import ControllerOracle  # noqa: E402


def build_model(hp):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])
    model.add(keras.layers.Dense(hp.Int("units", 32, 128, step=32),
                                 activation=hp.Choice("activation", ["relu", "tanh"])))
    model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.4, step=0.2)))
    second = hp.Boolean("second_layer")
    with hp.conditional_scope("second_layer", [True]):  # Found before the search: no `if` around.
        units2 = hp.Choice("units2", [16, 32])
    if second:
        model.add(keras.layers.Dense(units2, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--directory", default="logs/keras-tuner")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    d = data.load_dataset("mnist5k", seed=0)
    tuner = kt.Tuner(
        oracle=ControllerOracle(objective="val_accuracy", max_trials=args.trials, seed=0,
                                children_per_step=5),
        hypermodel=build_model, directory=args.directory, project_name="controller",
        overwrite=not args.resume,
    )
    tuner.search(d.x_train, d.y_train, validation_data=(d.x_val, d.y_val), epochs=args.epochs,
                 batch_size=128, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    print(f"best trial {best.trial_id}: val_accuracy {best.score:.4f}, "
          f"{best.hyperparameters.values}")


if __name__ == "__main__":
    main()
