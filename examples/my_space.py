"""A search space of your own, with its own network builder: small MLPs.

Each of three layers decides its width, its activation and its dropout rate (3 x 3 x 3
per layer: 19,683 architectures), and `build_mlp` turns an architecture into a Keras
model. Searched by the controller on the embedded MNIST subset:

  python train.py --space=examples/my_space.py:mlp_space \
      --template=examples/my_space.py:build_mlp --trials=8 --epochs=1

Stop it (Ctrl-C, or kill -9) and continue it with --resume, as any run. From Python:

  import search, config
  from examples.my_space import mlp_space, build_mlp
  search.run_search(config.SearchConfig(trials=8), space=mlp_space, builder=build_mlp)

The space is built with `state_space.StateSpace` (pure Python); the builder gets the
space, an architecture (a tuple of chosen values), the input shape and the number of
classes, and returns a model whose output is a softmax over the classes.
"""

import keras

from state_space import StateSpace


def mlp_space():
    """Three dense layers: units, activation and dropout per layer."""
    space = StateSpace(3)
    space.add_state("units", [32, 64, 128])
    space.add_state("activation", ["relu", "tanh", "gelu"])
    space.add_state("dropout", [0.0, 0.2, 0.5])
    return space


def build_mlp(space, architecture, input_shape, num_classes):
    """The MLP of `architecture`: flatten, then per layer Dense -> Dropout."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, layer in enumerate(space.layers(architecture)):
        x = keras.layers.Dense(layer["units"], activation=layer["activation"], name=f"dense{i}")(x)
        x = keras.layers.Dropout(layer["dropout"], name=f"dropout{i}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="mlp_child")
