"""Storage: typed models, engines and locks, migrations, every write of a batch, read summaries."""
