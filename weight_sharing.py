"""Weight-sharing evaluation: architectures scored with the weights of one supernet.

`--evaluation=shared` (ENAS, Pham et al. 2018; random search with weight sharing,
Li & Talwalkar 2019). `SharedEvaluator` owns a `Supernet` and:

- `train_epoch(propose)`: one pass of the training split, one architecture per
  minibatch, drawn by the search's strategy (the controller's policy, or uniform);
  Nesterov SGD with cosine restarts, L2 on the kernels, global-norm gradient
  clipping (Keras's `global_clipnorm`, which clips; ENAS's did not);
- `score(architecture, position)`: the accuracy of one architecture on one
  validation minibatch, in inference mode (`reward_mode="inference"`, ENAS) or in
  training mode without touching the moving statistics (`"training"`, so that the
  reward sees what dropout and noise ops do while training);
- `accuracy(architecture)`: the accuracy on the whole validation split (derivation).

Every random choice is keyed, not drawn from a running generator: the training
order by (seed, epoch), each scoring minibatch by (seed, step, position), and the
dropout/noise generators of the supernet are reset from those keys before each
pass. A run resumed from the supernet checkpoint of its last epoch therefore
continues exactly as an uninterrupted one (on CPU).

This module uses `keras` and `keras.ops` only; it knows nothing about strategies.
"""

import csv
import os
import time

import keras
import numpy as np

import config
import nb201_supernet
import supernet as supernet_lib
from manager import build_for_training
from run_log import atomic_write, load_arrays, save_arrays

REWARD_MODES = config.REWARD_MODES
# The supernet of each built-in network (--template): a class called with (space,
# input_shape, num_classes, bn=, l2=, seed=, **the template's settings).
SUPERNETS = {"macro": supernet_lib.Supernet, "nb201": nb201_supernet.NB201Supernet}
DERIVE_FIELDS = ("rank", "proposed", "architecture", "shared_val_accuracy", "params")
DERIVE_FIELDS += ("poisoned_layers",)
# supernet.csv: a row per supernet pass, and the strategy's pick then (DARTS's derived
# cell, otherwise the best-scored architecture so far) held against a table of results
# where the space has one (NAS-Bench-201: `truth`).
EPOCHS_FILE = "supernet.csv"
EPOCH_FIELDS = ("epoch", "step", "loss", "accuracy", "learning_rate", "seconds", "pick")
EPOCH_FIELDS += ("table_accuracy", "table_rank")
WEIGHTS_FILE = "supernet.npz"
OPTIMIZER_FILE = "supernet_optimizer.npz"

# ENAS's settings for the shared weights (its released code, melodyguan/enas), under the names of ENAS's code:
# lr (at each restart), lr_min, lr_t0 (T0 of the cosine restarts, in epochs), l2,
# grad_clip and bn (see supernet.Supernet) are train.py's --shared_<name> settings,
# declared once in config.py (config.SHARED_SETTINGS).
DEFAULTS = dict(
    **config.shared_settings(),
    lr_t_mul=2.0,  # Tmul: each cosine period is this much longer than the one before.
    momentum=0.9,  # Nesterov.
)


class _TrainingModeView(keras.Model):
    """The supernet in training mode (dropout and noise on, batch statistics) that
    never moves the moving statistics: the scorer of `reward_mode="training"`."""

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net = net

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs):
        return self.net(inputs, training=True, update_statistics=False)


class SharedEvaluator:
    """Trains a supernet and scores architectures with its weights.

    Args:
      dataset: a `data.Dataset`.
      space: a StateSpace the supernet holds (`supernet.check_space`,
        `nb201_supernet.check_space`).
      filters: channels of every layer of the macro supernet.
      supernet: the supernet's class (`SUPERNETS`; default the macro space's).
      network: the supernet's own settings (default `filters=filters`), e.g. the
        NB201 supernet's `channels` and `cells`.
      batch_size: training minibatch (ENAS: 128); the last partial minibatch of a
        pass is dropped, so that one trace serves every step.
      eval_batch: validation images that score one architecture (ENAS: 128).
      reward_mode: see the module docs.
      seed: seeds the weights and every key.
      **hparams: `DEFAULTS` overrides.

    Raises:
      ValueError: a setting out of range, or minibatches larger than the splits.
      supernet.SupernetError: a space the supernet cannot hold.
    """

    def __init__(
        self,
        dataset,
        space,
        *,
        filters=24,
        supernet=None,
        network=None,
        batch_size=128,
        eval_batch=128,
        reward_mode="inference",
        seed=0,
        **hparams,
    ):
        unknown = set(hparams) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
        h = {**DEFAULTS, **hparams}
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {list(REWARD_MODES)}, got {reward_mode!r}")
        if not 1 <= batch_size <= len(dataset.y_train):
            raise ValueError(
                f"the supernet's minibatch of {batch_size} must be between 1 and the "
                f"{len(dataset.y_train)} training images"
            )
        if not 1 <= eval_batch <= len(dataset.y_val):
            raise ValueError(
                f"the scoring minibatch of {eval_batch} must be between 1 and the "
                f"{len(dataset.y_val)} validation images"
            )
        if not 0 < h["lr_min"] <= h["lr"]:
            raise ValueError(
                f"learning rates must satisfy 0 < min <= max, got lr_min "
                f"{h['lr_min']} and lr {h['lr']}"
            )
        self.dataset = dataset
        self.space = space
        self.batch_size = int(batch_size)
        self.eval_batch = int(eval_batch)
        self.reward_mode = reward_mode
        self.seed = int(seed)
        self.hparams = h
        self.steps_per_pass = len(dataset.y_train) // self.batch_size
        supernet = supernet_lib.Supernet if supernet is None else supernet
        self.net = supernet(
            space,
            dataset.input_shape,
            dataset.num_classes,
            **({"filters": filters} if network is None else network),
            bn=h["bn"],
            l2=h["l2"],
            seed=self.seed,
        )
        self.net.build()
        self.schedule = keras.optimizers.schedules.CosineDecayRestarts(
            h["lr"],
            first_decay_steps=int(h["lr_t0"]) * self.steps_per_pass,
            t_mul=float(h["lr_t_mul"]),
            m_mul=1.0,
            alpha=h["lr_min"] / h["lr"],
        )
        self.net.compile(
            optimizer=keras.optimizers.SGD(
                self.schedule, momentum=h["momentum"], nesterov=True, global_clipnorm=h["grad_clip"]
            ),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            # XLA would compile every branch of the switch on the CPU for minutes.
            jit_compile=keras.backend.backend() != "tensorflow",
        )
        shape_of = space.sample(np.random.default_rng(0), 1)[0]  # Any architecture: shapes only.
        build_for_training(
            self.net, [dataset.x_train[:1], self._rows(shape_of, 1)], dataset.y_train[:1]
        )
        if reward_mode == "training":
            self.scorer = _TrainingModeView(self.net, name="training_mode_scorer")
        else:
            self.scorer = self.net
        # A table of results that knows the space's architectures (NAS-Bench-201's), to
        # hold each pass's pick against (`log_epoch`); None where there is none.
        self.truth = None
        self.epochs = 0  # Passes of the training split done.
        self.step = 0  # The search step whose architectures are being scored (set by the loop).

    # ------------------------------------------------------------------ training

    def learning_rate(self):
        """The learning rate of the next training step."""
        iterations = keras.ops.convert_to_numpy(self.net.optimizer.iterations)
        return float(keras.ops.convert_to_numpy(self.schedule(iterations)))

    def train_epoch(self, propose, step=None):
        """One pass of the training split, a new architecture per minibatch.

        Args:
          propose: `propose(1) -> [architecture]`, the strategy's sampler.
          step: a strategy's own training step instead (DARTS, GDAS:
            differentiable.py), `step(self, key, images, labels, val_images,
            val_labels) -> {"loss", "accuracy"}` for each training minibatch, with a
            validation minibatch of the same size drawn by `key` = (epoch, minibatch).

        Returns:
          dict of TensorBoard scalars: `supernet/loss`, `supernet/accuracy` (means
          over the pass), `supernet/learning_rate` (at the end), `supernet/seconds`.

        Raises:
          FloatingPointError: the loss became NaN or infinite (the epoch is not counted).
        """
        started = time.perf_counter()
        d = self.dataset
        order = np.random.default_rng([self.seed, self.epochs, 0]).permutation(len(d.y_train))
        self._reseed(self.epochs, 0)
        losses, accuracies = [], []
        val_batch = min(self.batch_size, len(d.y_val))
        for b in range(self.steps_per_pass):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            if step is not None:
                rng = np.random.default_rng([self.seed, self.epochs, b, 2])
                val = rng.choice(len(d.y_val), val_batch, replace=False)
                logs = step(
                    self, (self.epochs, b), d.x_train[index], d.y_train[index], d.x_val[val],
                    d.y_val[val],
                )
            else:
                architecture = propose(1)[0]
                logs = self.net.train_on_batch(
                    [d.x_train[index], self._rows(architecture, len(index))],
                    d.y_train[index],
                    return_dict=True,
                )
            losses.append(float(logs["loss"]))
            accuracies.append(float(logs["accuracy"]))
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(
                f"the supernet's training loss became NaN or infinite in epoch {self.epochs + 1}"
            )
        self.epochs += 1
        return {
            "supernet/loss": float(np.mean(losses)),
            "supernet/accuracy": float(np.mean(accuracies)),
            "supernet/learning_rate": self.learning_rate(),
            "supernet/seconds": time.perf_counter() - started,
        }

    def truth_title(self):
        """What `truth`'s fitness is, in words."""
        return getattr(self.truth, "fitness_title", self.truth.metric)

    def check_pick(self, architecture):
        """{table_accuracy, table_rank} of `architecture` in `truth` (empty without one)."""
        if self.truth is None or architecture is None:
            return {}
        fitness = float(self.truth.fitness(tuple(architecture)))
        return {"table_accuracy": fitness, "table_rank": int(self.truth.rank(fitness))}

    def log_epoch(self, directory, step, scalars, pick):
        """Writes the pass just trained to supernet.csv (atomically; rows of this pass
        or later ones, left by a process killed before its commit, are replaced) and
        returns the pick's table check (`check_pick`)."""
        path = os.path.join(directory, EPOCHS_FILE)
        rows = []
        if os.path.exists(path):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < self.epochs]
        checked = self.check_pick(pick)
        rows.append({
            "epoch": self.epochs,
            "step": step,
            **{k: f"{scalars[f'supernet/{k}']:.6g}" for k in ("loss", "accuracy", "learning_rate")},
            "seconds": f"{scalars['supernet/seconds']:.3f}",
            "pick": "" if pick is None else self.space.format(pick),
            "table_accuracy": f"{checked['table_accuracy']:.6f}" if checked else "",
            "table_rank": checked.get("table_rank", ""),
        })
        with atomic_write(path, newline="") as f:
            w = csv.DictWriter(f, EPOCH_FIELDS)
            w.writeheader()
            w.writerows(rows)
        return checked

    # ------------------------------------------------------------------ scoring

    def score(self, architecture, position):
        """Accuracy of `architecture` on one validation minibatch of `eval_batch`
        images, drawn by (seed, step, position)."""
        d = self.dataset
        rng = np.random.default_rng([self.seed, self.step, position, 1])
        index = rng.choice(len(d.y_val), self.eval_batch, replace=False)
        if self.reward_mode == "training":  # Inference-mode scoring draws no random numbers.
            self._reseed(self.step, position + 1)
        probs = self.scorer.predict_on_batch([d.x_val[index], self._rows(architecture, len(index))])
        return float(np.mean(np.argmax(probs, axis=-1) == d.y_val[index]))

    def accuracy(self, architecture, x=None, y=None):
        """Accuracy of `architecture` with the shared weights on (x, y), by default
        the whole validation split, in minibatches of `eval_batch` (derivation)."""
        if x is None:
            x, y = self.dataset.x_val, self.dataset.y_val
        if self.reward_mode == "training":
            self._reseed(-1, 0)
        correct = 0
        for start in range(0, len(x), self.eval_batch):
            xb = x[start : start + self.eval_batch]
            probs = self.scorer.predict_on_batch([xb, self._rows(architecture, len(xb))])
            correct += int(np.sum(np.argmax(probs, axis=-1) == y[start : start + self.eval_batch]))
        return correct / len(x)

    def derive(self, architectures, path):
        """Scores `architectures` on the whole validation split and writes them to
        the CSV `path` (atomically), best first: rank, proposal order, architecture,
        accuracy, parameters, poisoned layers.

        Returns:
          [(architecture, accuracy)], best first (ties: the first proposed).
        """
        accuracies = [self.accuracy(a) for a in architectures]
        order = sorted(range(len(architectures)), key=lambda i: -accuracies[i])
        with atomic_write(path, newline="") as f:
            w = csv.writer(f)
            w.writerow(DERIVE_FIELDS)
            for rank, i in enumerate(order, 1):
                a = architectures[i]
                w.writerow(
                    [rank, i + 1, self.space.format(a), f"{accuracies[i]:.6f}", self.params(a)]
                    + [self.space.poisoned_layers(a)]
                )
        return [(architectures[i], accuracies[i]) for i in order]

    def params(self, architecture):
        """Parameters of the stand-alone child of `architecture`."""
        return self.net.count_child_params(architecture)

    def _rows(self, architecture, n):
        return np.repeat(self.net.encode([architecture]), n, axis=0)

    def _reseed(self, major, minor):
        """Resets the supernet's dropout and noise generators from a key, so that every
        pass draws the same numbers whatever ran before it (resume)."""
        for i, generator in enumerate(self.net.seed_generators()):
            key = np.random.default_rng([self.seed, major + 2, minor, i]).integers(2**31)
            generator.state.assign(np.array([key, 0], dtype=generator.state.dtype))

    # ------------------------------------------------------------------ state

    def get_state(self):
        return {"epochs": self.epochs}

    def set_state(self, state):
        self.epochs = int(state["epochs"])

    def save(self, directory):
        """Writes every variable of the supernet (weights, moving statistics,
        generator states) and of its optimizer (momenta, iteration count); each file
        to a temporary name first, then renamed."""
        os.makedirs(directory, exist_ok=True)
        for name, variables in (
            (WEIGHTS_FILE, self.net.variables),
            (OPTIMIZER_FILE, self.net.optimizer.variables),
        ):
            save_arrays(
                os.path.join(directory, name), [keras.ops.convert_to_numpy(v) for v in variables]
            )

    def load(self, directory):
        """Reads what `save` wrote.

        Raises:
          ValueError: missing or damaged files, or a supernet of another shape.
        """
        for name, variables in (
            (WEIGHTS_FILE, self.net.variables),
            (OPTIMIZER_FILE, self.net.optimizer.variables),
        ):
            try:
                load_arrays(os.path.join(directory, name), variables)
            except ValueError as e:
                raise ValueError(f"supernet checkpoint: {e}") from None
