# `make demo` and `make test` each set up a fresh machine themselves (pip packages, Graphviz's `dot`).
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HYPOTHESIS_PROFILE ?= ci

.PHONY: setup demo test test-thorough bench clean

setup:
	@command -v dot >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends graphviz >/dev/null; }
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,plot]'

demo: setup
	$(PYTHON) -m tinygraph_app demo

test: setup
	$(PYTHON) -m pytest -q --hypothesis-profile=$(HYPOTHESIS_PROFILE)

bench: setup
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PYTHON) -m benchmarks.run --json benchmarks/results/latest.json

test-thorough:
	$(MAKE) test HYPOTHESIS_PROFILE=thorough

clean:
	rm -rf out build *.egg-info .hypothesis
