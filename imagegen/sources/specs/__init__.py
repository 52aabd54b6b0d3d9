"""YAML imagery specs (issue 13): chapter and location imagery files under a ROOT folder."""
