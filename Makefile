# The two commands of the README: `make run` and `make test`. Each sets everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
export QTWEBENGINE_CHROMIUM_FLAGS ?= --disable-gpu

.PHONY: setup run test lint bench screenshots package package-check

setup:
	@./scripts/setup.sh

run: setup
	$(VENV)/bin/llm-desktop --demo

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q
	npm test --silent
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	npm run lint --silent

bench: setup
	$(PY) -m bench
	$(PY) -m bench.table

screenshots: setup
	xvfb-run -a -s "-screen 0 1400x900x24" $(PY) scripts/screenshots.py

# The bundle (build.spec), a portable .tar.gz and a .deb, in dist/.
package: setup
	VENV=$(VENV) ./scripts/package.sh

# Build, install the .deb, run the installed self-test, remove it (CI runs this as root).
package-check: setup
	VENV=$(VENV) ./scripts/package-check.sh
