# `make demo` and `make test` each set up a fresh machine themselves (pip packages, Graphviz's `dot`);
# `make test` also installs a headless Chromium (Debian's `chromium`) and Playwright to drive it, for the
# explorer's browser tests (skipped, saying why, where no Chromium can be installed).
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HYPOTHESIS_PROFILE ?= ci

.PHONY: setup setup-browser demo test test-thorough bench pictures docs clean

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
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,plot,browser,docs,onnx]' || \
		echo "warning: could not install Playwright, the notebook kernel or onnx/onnxruntime; the tests that need them will be skipped"
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[torch]' || \
		echo "warning: could not install PyTorch; the tests that need it will be skipped"

demo: setup
	$(PYTHON) -m tinygraph_app demo

# One pytest worker per core (pytest-xdist): the suite is ~650 s of CPU on one core of the 2-core machine.
test: setup-browser
	$(PYTHON) -m pytest -q -n auto --hypothesis-profile=$(HYPOTHESIS_PROFILE)

bench: setup
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PYTHON) -m benchmarks.run --json benchmarks/results/latest.json
	$(PYTHON) -m benchmarks.mgu --json benchmarks/results/mgu.json

# The API reference (pdoc, the `docs` extra) of every public module: build/docs/index.html.
docs:
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[docs]'
	PYTHONPATH=$(CURDIR) $(PYTHON) -m tinygraph_app.apidocs build/docs

# The README's pictures, redrawn with the commands the README lists (from this checkout's code).
TINYGRAPH = PYTHONPATH=$(CURDIR) $(PYTHON) -m tinygraph_app
pictures:
	cd docs/pictures && \
	$(TINYGRAPH) render --cell lstm --view folded --link lstm_unrolled.svg -o lstm_folded.svg && \
	$(TINYGRAPH) render --cell lstm --steps 3 --grads -o lstm_unrolled.svg && \
	$(TINYGRAPH) render --cell lstm --steps 40 --level cell --grads --window 0:3,-3: -o lstm_unrolled_cells.svg && \
	$(TINYGRAPH) render --cell rnn --view folded --link rnn_unrolled.svg -o rnn_folded.svg && \
	$(TINYGRAPH) render --cell rnn --steps 4 --grads -o rnn_unrolled.svg && \
	$(TINYGRAPH) render --cell lstm --steps 4 --layers 2 --level layer --grads -o lstm_layers.svg && \
	$(TINYGRAPH) gradflow --cell rnn,lstm,gru --steps 40 --forget-bias 0,3 -o gradflow.svg

test-thorough:
	$(MAKE) test HYPOTHESIS_PROFILE=thorough

clean:
	rm -rf out build *.egg-info .hypothesis
