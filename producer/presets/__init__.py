"""Built-in column mappings, one JSON file per preset (shipped as package data)."""
