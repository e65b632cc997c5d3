"""Early stopping of weak children: the median stopping rule.

A child trained for `epochs` epochs is measured on the validation split after
every epoch. After epoch e < epochs it stops if its accuracy is below the median
accuracy at epoch e of the run's complete children (those trained every epoch),
once `after` children are complete (Golovin et al. 2017, Google Vizier's median
stopping rule; Hyperband's successive halving (Li et al. 2018) is the other
common rule: it needs brackets of children trained side by side, which the loop's
one-step-at-a-time strategies do not have).

The stopped child's fitness stays on the scale of final accuracies, so that the
strategies can compare it with complete children: its accuracy at epoch e plus
the median gain of the complete children from epoch e to their last epoch. A
child below the median at epoch e so lands near or below the median complete
child, never as an outlier the strategies would chase or flee. A stopped child is
never the search's pick (its final accuracy is an estimate); the validation
accuracy it reached is kept in history.csv (`val_accuracy`) and the epoch it
stopped at (`stopped_epoch`).

Every child of a step is held to the record as it stood when the step began, and
the record grows at the end of the step in the order of the step: a search gives
the same history with 1 or N workers, and a resumed search goes on exactly.
"""

import keras
import numpy as np


class MedianRule:
    """The run's record of complete children and the thresholds it sets.

    Args:
      epochs: epochs a complete child trains.
      after: complete children needed before any child is stopped.
    """

    def __init__(self, epochs, after=5):
        if epochs < 2:
            raise ValueError(f"early stopping needs children of >= 2 epochs, got {epochs}")
        if after < 1:
            raise ValueError(f"after must be >= 1, got {after}")
        self.epochs = epochs
        self.after = after
        self.curves = []  # Validation accuracy after each epoch, one row per complete child.

    def add(self, result):
        """Adds a `manager.ChildResult` to the record if it is a complete child
        trained here (not failed, stopped or answered from the cache)."""
        curve = result.curve
        if result.failed or result.cached or result.stopped_epoch or not curve:
            return
        if len(curve) == self.epochs:
            self.curves.append([float(a) for a in curve])

    def thresholds(self):
        """What the children of the next step are held to: for each epoch e in
        1..epochs-1, (median accuracy at e, median gain from e to the last epoch)
        of the complete children; None while fewer than `after` are complete."""
        if len(self.curves) < self.after:
            return None
        curves = np.asarray(self.curves)
        return [
            (float(np.median(curves[:, e])), float(np.median(curves[:, -1] - curves[:, e])))
            for e in range(self.epochs - 1)
        ]

    def get_state(self):
        return {"curves": self.curves}

    def set_state(self, state):
        self.curves = [list(map(float, c)) for c in state["curves"]]


class WatchChild(keras.callbacks.Callback):
    """Measures a child on the validation split after every epoch and stops it when
    it is below its threshold (`MedianRule.thresholds`, or None: never stop).

    Attributes:
      curve: validation accuracy after each epoch trained.
      stopped_epoch: the epoch (from 1) after which training stopped; 0 if it did not.
      gain: the threshold's median gain at that epoch (0 if it did not stop).
    """

    def __init__(self, measure, thresholds, epochs):
        super().__init__()
        self.measure = measure
        self.thresholds = thresholds
        self.epochs = epochs
        self.curve = []
        self.stopped_epoch = 0
        self.gain = 0.0

    def on_epoch_end(self, epoch, logs=None):
        accuracy = float(self.measure(self.model))
        self.curve.append(accuracy)
        if self.thresholds is None or epoch + 1 >= self.epochs:
            return
        median, gain = self.thresholds[epoch]
        if accuracy < median:
            self.stopped_epoch, self.gain = epoch + 1, gain
            self.model.stop_training = True
