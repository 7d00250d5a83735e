"""The Plotly Dash dashboard: read-only queries, pure figures, thin callbacks."""
