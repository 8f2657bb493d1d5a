"""Event handlers, one module per processor; each takes `(envelope, uow)` inside the uow's transaction."""
