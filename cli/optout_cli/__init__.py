"""`optout`: the operator's command line for optout-bridge (README "Operating it")."""
