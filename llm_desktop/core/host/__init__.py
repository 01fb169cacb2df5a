"""Model hosts: child processes that run llama.cpp, and the app's side of talking to them."""
