"""One module per CLI command; each exports COMMAND (a click command or group)."""
