"""Writes examples/my_table.csv: every architecture of my_table.space() trained and measured.

  python examples/make_my_table.py            # 64 MLPs, 2 epochs each: about a minute

A sweep is a search too: a strategy of a few lines that proposes every architecture once
(`Grid`), run by `search.run_search` with the builder of examples/my_space.py; the
table is its history.csv, one row per architecture.
"""

import argparse
import csv
import itertools
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import config  # noqa: E402
import my_space  # noqa: E402
import my_table  # noqa: E402
import search  # noqa: E402


class Grid:
    """Every architecture of the space once, in order; then nothing (the search ends)."""

    def __init__(self, space, seed):
        self.all = [space.decode(i) for i in itertools.product(*(range(len(d.choices)) for d in space.decisions))]
        self.next = 0

    def propose(self, n):
        chosen = self.all[self.next : self.next + n]
        self.next += len(chosen)
        return chosen

    def learn(self, architectures, results):
        return {}

    def get_state(self):
        return {"next": self.next}

    def set_state(self, state):
        self.next = state["next"]

    def save(self, directory):
        pass

    def load(self, directory):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=my_table.TABLE)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--architectures", type=int, default=None, help="only the first N (a check)")
    args = parser.parse_args()
    space = my_table.space()
    with tempfile.TemporaryDirectory() as logdir:
        settings = config.SearchConfig(
            trials=args.architectures or space.num_architectures, epochs=args.epochs, final_epochs=1,
            children_per_step=8, workers=0, tensorboard=False, logdir=logdir, run_name="sweep",
        )
        search.run_search(settings, space=my_table.space, builder=my_space.build_mlp, strategy=Grid)
        with open(os.path.join(logdir, "sweep", "history.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
    columns = [d.key for d in space.decisions] + ["val_accuracy", "params"]
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([r[c] for c in columns] for r in rows)
    print(f"{len(rows)} architectures -> {args.out}")


if __name__ == "__main__":
    main()
