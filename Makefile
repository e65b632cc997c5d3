# make search   runs the default search (mnist5k, toy space, controller); ARGS="--flag=value ..." adds flags.
# make test     runs the test suite.
# Both make the virtual environment .venv from requirements.txt on first use (make test
# adds requirements-test.txt: pytest, and PyTorch and JAX for the backend tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
TEST_STAMP := $(VENV)/.test-requirements-installed

.PHONY: search test bench venv clean

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

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python bench/controller_cost.py
	$(BIN)/python bench/search_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
