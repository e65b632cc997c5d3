"""The project's search spaces as Keras Tuner hypermodels, poisoned ones included.

    import keras_tuner as kt
    from keras_tuner_hypermodels import space_hypermodel
    from keras_tuner_oracles import ControllerOracle

    hypermodel = space_hypermodel("macro", num_layers=4, poison="identity,noise2",
                                  input_shape=(28, 28, 1), num_classes=10)
    oracle = ControllerOracle(objective="val_accuracy", max_trials=40, seed=0,
                              poisoned=hypermodel.poisoned)
    tuner = kt.Tuner(oracle=oracle, hypermodel=hypermodel, directory="kt", project_name="macro")
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1)
    print(oracle.poison_summary())

Every decision of a `StateSpace` (per layer its states, then its skip bits, in the space's
sampling order) is one `hp.Choice` named by the decision's key (`layer0_op`,
`layer2_skip0`, `edge_1_3`), so any oracle searches the space decision by decision, and
`StrategyOracle`'s strategies see the same decisions as in the project's own loop. A trial's
model is the space's network (templates.py, or a builder of your own), compiled as the
project compiles a child (Adam, sparse categorical cross-entropy, accuracy).
`space_hypermodel` takes the space and its poisoning as `train.py`'s flags name them and
applies them the same way (poisoning.py); `hypermodel.poisoned` names the poisoned values
per hyperparameter, for the oracle's poison rate.
"""

try:
    import keras_tuner as kt
except ImportError as e:  # An optional feature: say how to get it.
    raise ImportError(
        f"keras_tuner_hypermodels needs Keras Tuner ({e}): pip install keras-tuner==1.4.8 "
        f"(requirements-test.txt)"
    ) from None
import keras

import config as config_lib
import extensions
import poisoning
import templates


class SpaceHyperModel(kt.HyperModel):
    """A Keras Tuner hypermodel whose hyperparameters are a space's decisions.

    Args:
      space: a `state_space.StateSpace` (poisoned or not).
      template: the network builder: a built-in template's name (`toy`, `macro`, `nb201`),
        a `PATH.py:NAME` reference, or a function `(space, architecture, input_shape,
        num_classes, **settings) -> keras.Model`.
      input_shape, num_classes: the images' shape and the classes, as the dataset has them.
      learning_rate: Adam's (`train.py --child_lr`'s default).
      settings: the builder's own (`filters=` for macro, `channels=`, `cells=` for nb201).

    Raises:
      ValueError: a space that is not one, a builder that cannot be loaded, or a choice
        Keras Tuner cannot hold (values of mixed types, or not int, float, str or bool).
    """

    def __init__(self, space, template, input_shape, num_classes, learning_rate=0.003,
                 name=None, **settings):
        super().__init__(name=name)
        try:
            self.space = extensions.check_space(space, "the space")
            given = None if isinstance(template, str) else template
            self.builder, _ = templates.make_builder(
                template if given is None else extensions.reference_of(template), given=given)
        except extensions.ExtensionError as e:
            raise ValueError(str(e)) from None
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.learning_rate = learning_rate
        self.settings = settings
        self.names = [d.key for d in self.space.decisions]
        for d in self.space.decisions:
            kinds = {type(c) for c in d.choices}
            if len(kinds) > 1 or not kinds <= {int, float, str, bool}:
                raise ValueError(
                    f"the choices of {d.key} are {list(d.choices)}: a Keras Tuner Choice holds "
                    f"values of one type, int, float, str or bool")

    @property
    def poisoned(self):
        """{hyperparameter name: its poisoned values}: the space's poisoned values
        (`StateSpace.poisoned`) on every layer's decision of that state."""
        return {key: sorted(self.space.poisoned[d.name], key=str)
                for key, d in zip(self.names, self.space.decisions)
                if d.name in self.space.poisoned}

    def architecture(self, hp):
        """The architecture a trial's hyperparameters (a `kt.HyperParameters`, or its
        values) choose."""
        values = hp.values if isinstance(hp, kt.HyperParameters) else hp
        architecture = tuple(values[name] for name in self.names)
        self.space.validate(architecture)
        return architecture

    def build(self, hp):
        for name, d in zip(self.names, self.space.decisions):
            hp.Choice(name, list(d.choices))
        model = self.builder(self.space, self.architecture(hp), self.input_shape,
                             self.num_classes, **self.settings)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


def space_hypermodel(space="toy", *, input_shape, num_classes, template=None, num_layers=None,
                     poison="", poison_instances=1, remove_ops="", **settings):
    """The `SpaceHyperModel` of a space named as `train.py --space` names it (a built-in
    space or a `PATH.py:NAME` reference), with `--num_layers`, `--template` (default: the
    space's own), `--remove_ops`, `--poison` and `--poison_instances` applied as a search
    applies them, the template's settings (`filters=`, `nb201_channels=`,
    `nb201_cells=`) and the children's learning rate (`child_lr=`) as the flags name them.

    Raises:
      ValueError: a setting the search would refuse, in its words.
    """
    try:
        named = template if template is None or isinstance(template, str) else \
            extensions.reference_of(template)
        config = config_lib.SearchConfig(
            space=space, template=named, num_layers=num_layers, poison=poison,
            poison_instances=poison_instances, remove_ops=remove_ops,
            tensorboard=False, **settings).resolved()
        space, name = poisoning.make_space(config)
    except config_lib.ConfigError as e:
        raise ValueError(str(e)) from None
    except TypeError as e:
        raise ValueError(f"space_hypermodel: {e}") from None
    builder = name if template is None or isinstance(template, str) else template
    return SpaceHyperModel(space, builder, input_shape, num_classes, config.child_lr,
                           **templates.template_args(config))
