"""A pretend speaker for scripts/develop, so extensions have media players to play to."""
