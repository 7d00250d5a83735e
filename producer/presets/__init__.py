"""Built-in column mappings of public clickstream datasets (JSON, one file per preset)."""
