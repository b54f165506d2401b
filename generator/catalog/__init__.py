"""The catalogue: registry file models, the load step that classifies, recommendations, policy files
and turning scans into registry files.

Nothing here imports `generator.site`; the site builds on the catalogue, never the reverse.
"""
