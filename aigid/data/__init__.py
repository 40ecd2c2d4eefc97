"""Datasets for AI-generated-image detection: on-disk layouts (layouts), decoding (datasets),
crops (transforms), nested subsets (subsets), a synthetic stand-in (synthetic), the CLI (cli)."""
