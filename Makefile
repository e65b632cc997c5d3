# make search   runs the default search (mnist5k, toy space, controller); ARGS="--flag=value ..." adds flags.
# make test     runs the test suite.
# Both make the virtual environment .venv from requirements.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: search test bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

search: $(STAMP)
	$(BIN)/python train.py $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python bench/controller_cost.py
	$(BIN)/python bench/search_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
