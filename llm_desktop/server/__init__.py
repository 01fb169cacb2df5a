"""The local SSE server and the llm.js page it serves."""
