"""lexi-maint: maintenance daemon and document pipeline for the Lexi AI service."""

__version__ = "0.1.0"
