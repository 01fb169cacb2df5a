"""The Qt-free core: the event model, the engine and its model hosts, the catalog, hardware and
fit, and the presenter that decides what a person reads. Nothing here imports Qt (import-linter
checks it); the server, the CLI and the Qt layers are adapters over it."""
