"""Prefect flows: each file holds one flow, named for its verb."""
