"""The processors' domain rules and shared state changes: what handlers do, none of them a handler itself."""
