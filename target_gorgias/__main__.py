"""``python -m target_gorgias`` runs the target CLI."""

from target_gorgias.target import TargetGorgias

TargetGorgias.cli()
