"""API routes, one module per area; mounted under /api/v1 by the app factory."""
