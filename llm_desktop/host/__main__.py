"""`python -m llm_desktop.host`: run a model host (started by the app, not by people)."""

import sys

from llm_desktop.host.child import main

sys.exit(main())
