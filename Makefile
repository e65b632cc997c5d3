# make search   runs the default search (mnist5k, toy space, controller); ARGS="--flag=value ..." adds flags.
# make test     runs the test suite.
# make check    runs its fast subset (the modules below), for the edit-test loop.
# Both make the virtual environment .venv from requirements.txt on first use (make test
# adds requirements-test.txt: pytest, and PyTorch and JAX for the backend tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
TEST_STAMP := $(VENV)/.test-requirements-installed

.PHONY: search test check bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# The tests also need pytest and the optional backends (PyTorch CPU, JAX) they run children on.
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $(TEST_STAMP)

search: $(STAMP)
	$(BIN)/python train.py $(ARGS)

# Two pytest-xdist workers, a test module in one of them (--dist loadfile: its module
# fixtures made once), handed out in the order tests/conftest.py gives (not xdist's largest
# first); TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q $(XDIST) tests

# No subprocess grids, no workers, no resume tables: settings, spaces, ops, scores, the
# controller's memory, strategies' pieces, short in-process searches (its times: docs/LOG.md).
FAST_TESTS := layering config specs docs run_state run_log state_space data poisoning zero_cost naswot \
	manager tensorboard early_stopping budget controller_memory reinforce_table tpe embedding \
	probe bench_helpers hardware

check: $(TEST_STAMP)
	$(BIN)/python -m pytest -q $(XDIST) $(FAST_TESTS:%=tests/test_%.py)

bench: $(STAMP)
	$(BIN)/python bench/controller_cost.py
	$(BIN)/python bench/search_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
