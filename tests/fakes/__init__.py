"""Fakes for the dialogue's ports: NLU, renderer and store (no model, no database)."""
