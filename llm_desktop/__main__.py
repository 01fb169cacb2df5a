"""`python -m llm_desktop`, and the entry point of the PyInstaller bundle."""

import sys

from llm_desktop.cli import main

sys.exit(main())
