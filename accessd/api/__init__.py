"""The HTTP API: FastAPI app factory, dependencies, problem responses, one router a resource."""
