"""The tool reference: `generator.catalog` (registry models, classifier, recommended policies) and
`generator.site` (the static site built from them). Importing this package imports neither."""
