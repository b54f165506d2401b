"""The static tool reference site: page plan, rendering, incremental builds, search and serving.

Builds on `generator.catalog` (models, recommendations, policy files).
"""
