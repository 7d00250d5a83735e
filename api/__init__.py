"""The score and review API: FastAPI routers over read-only queries and store/ review writes."""
