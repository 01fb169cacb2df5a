"""`python -m llm_desktop.core.host`: run a model host (started by the app, not by people)."""

import sys

from llm_desktop.core.host.child import main

sys.exit(main())
