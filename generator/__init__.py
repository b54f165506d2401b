"""Site generator: registry models, classifier, recommended policies, and the static site build."""
