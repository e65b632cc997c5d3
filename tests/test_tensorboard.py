"""The TensorBoard events a search writes, read back through a real TensorBoard server.

A tiny search runs in-process into a temporary logdir; TensorBoard is started in this
process on 127.0.0.1 (a free port) and queried over HTTP with urllib, like its web page
does. The scalars it serves must be the ones the search logged: `accuracy/mean` of
each step equals the mean val_accuracy of that step's rows in history.csv.

Nothing but 127.0.0.1 is contacted: proxies are bypassed, and a guard on
`socket.connect` fails the test on any connection to another address.
"""

import csv
import json
import socket
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from conftest import tiny_config

LOOPBACK = {"127.0.0.1", "localhost", "::1"}  # TensorBoard probes "localhost" for its port.


@pytest.fixture
def loopback_only(monkeypatch):
    """Fails on any socket connection that does not go to this machine."""
    for name in ("connect", "connect_ex"):
        original = getattr(socket.socket, name)

        def guarded(self, address, _original=original):
            host = address[0] if isinstance(address, tuple) else address
            if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
                raise AssertionError(f"test tried to contact {address!r}")
            return _original(self, address)

        monkeypatch.setattr(socket.socket, name, guarded)


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    """A tiny controller search (4 children, 2 per step: 2 steps) in a temporary logdir."""
    import search  # pylint: disable=import-outside-toplevel

    logdir = tmp_path_factory.mktemp("tb_logs")
    lines = []
    config = tiny_config(logdir, "tiny", train_size=100, val_size=40, tensorboard=True)
    search.run_search(config, out=lines.append)
    return logdir, logdir / "tiny", lines


def _local_opener():
    # An empty ProxyHandler: never send a request to an http_proxy from the environment.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(opener, url):
    assert url.startswith("http://127.0.0.1:"), url
    with opener.open(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read().decode())


def _wait_for(opener, url, ready, timeout=30.0):
    """GETs url every 0.5 s until ready(answer) holds; returns the answer."""
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = _get_json(opener, url)
            if ready(answer):
                return answer
        except OSError:  # Server still starting, or the run not loaded yet.
            pass
        time.sleep(0.5)
    pytest.fail(f"TensorBoard did not answer {url} as expected within {timeout} s: {answer!r}")


@pytest.fixture
def tensorboard_url(search_run, loopback_only):
    from tensorboard import program  # pylint: disable=import-outside-toplevel

    logdir, _, _ = search_run
    tb = program.TensorBoard()
    tb.configure(
        argv=[
            None,
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            # The search is finished: load the logdir once, synchronously, at launch.
            # A periodic reload (--reload_interval=1) runs forever in a daemon thread
            # inside TensorFlow's file code, and the interpreter then sometimes dies at
            # exit ("terminate called after throwing an instance of ''").
            "--reload_interval",
            "0",
            "--reload_task",
            "blocking",
            "--load_fast",
            "false",  # The in-process loader: no data-server subprocess.
        ]
    )
    url = tb.launch()
    assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/")
    yield url if url.endswith("/") else url + "/"
    server = getattr(tb, "_server", None)  # Not public API; stop it if we can.
    if server is not None:
        server.shutdown()
        server.server_close()


def step_means(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    steps = sorted({int(r["step"]) for r in rows})
    return {
        s: float(np.mean([float(r["val_accuracy"]) for r in rows if int(r["step"]) == s]))
        for s in steps
    }, rows


def test_search_scalars_come_back_from_tensorboard(search_run, tensorboard_url):
    _, run_dir, lines = search_run
    opener = _local_opener()
    means, rows = step_means(run_dir)
    assert len(rows) == 4 and sorted(means) == [0, 1]
    assert any(line.startswith("test accuracy") for line in lines)

    tags = _wait_for(
        opener,
        tensorboard_url + "data/plugin/scalars/tags",
        lambda t: "accuracy/mean" in t.get("tiny", {}),
    )
    run_tags = set(tags["tiny"])
    expected = {
        "accuracy/mean",
        "accuracy/best",
        "reward/mean",
        "reward/baseline",
        "children/failed",
        "children/cached",
        "controller/loss",
        "controller/entropy",
        "probs/layer0_kernel/1",
        "probs/layer3_filters/64",
    }
    assert expected <= run_tags, expected - run_tags

    def scalars(tag):
        query = urllib.parse.urlencode({"run": "tiny", "tag": tag})
        answer = _wait_for(
            opener,
            tensorboard_url + "data/plugin/scalars/scalars?" + query,
            lambda a: isinstance(a, list) and len(a) == len(means),
        )
        # Each point is [wall_time, step, value].
        return {int(step): value for _, step, value in answer}

    accuracy = scalars("accuracy/mean")
    assert sorted(accuracy) == sorted(means)
    for step, mean in means.items():
        assert accuracy[step] == pytest.approx(mean, abs=1e-6), step

    best = scalars("accuracy/best")
    for step in means:
        seen = [float(r["val_accuracy"]) for r in rows if int(r["step"]) <= step]
        assert best[step] == pytest.approx(max(seen), abs=1e-6)

    baseline = scalars("reward/baseline")
    reward = scalars("reward/mean")
    for step in means:
        step_rows = [r for r in rows if int(r["step"]) == step]
        assert baseline[step] == pytest.approx(float(step_rows[0]["baseline"]), abs=1e-6)
        assert reward[step] == pytest.approx(
            np.mean([float(r["reward"]) for r in step_rows]), abs=1e-6
        )
    assert scalars("children/failed") == {0: 0.0, 1: 0.0}

    # The controller's probabilities of one decision sum to 1 at every step.
    kernel = [scalars(f"probs/layer0_kernel/{k}") for k in (1, 3)]
    for step in means:
        assert kernel[0][step] + kernel[1][step] == pytest.approx(1.0, abs=1e-5)


def test_loopback_guard_refuses_other_addresses(loopback_only):
    # The guard raises before any packet is sent (10.255.255.1 is never reached).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(AssertionError, match="tried to contact"):
            s.connect(("10.255.255.1", 80))
