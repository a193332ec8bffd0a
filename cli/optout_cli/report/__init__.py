"""`optout report`: the CCPA §7102 figures of a year as Markdown, CSV or one HTML file."""
