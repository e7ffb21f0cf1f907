# `make demo` and `make test` each set up a fresh machine themselves (pip packages, Graphviz's `dot`);
# `make test` also installs a headless Chromium (Debian's `chromium`) and Playwright to drive it, for the
# explorer's browser tests (skipped, saying why, where no Chromium can be installed).
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HYPOTHESIS_PROFILE ?= ci

.PHONY: setup setup-browser demo test test-thorough bench clean

setup:
	@command -v dot >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends graphviz >/dev/null; }
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,plot]'

# Playwright drives the system chromium (its own browser download needs a CDN); no apt-get: a warning.
setup-browser: setup
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ command -v apt-get >/dev/null 2>&1 && $(SUDO) apt-get update -qq && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		  chromium >/dev/null; } || \
		echo "warning: could not install chromium; the explorer's browser tests will be skipped"
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,plot,browser]' || \
		echo "warning: could not install Playwright; the explorer's browser tests will be skipped"

demo: setup
	$(PYTHON) -m tinygraph_app demo

test: setup-browser
	$(PYTHON) -m pytest -q --hypothesis-profile=$(HYPOTHESIS_PROFILE)

bench: setup
	$(PYTHON) -m benchmarks.run --json benchmarks/results/latest.json

test-thorough:
	$(MAKE) test HYPOTHESIS_PROFILE=thorough

clean:
	rm -rf out build *.egg-info .hypothesis
