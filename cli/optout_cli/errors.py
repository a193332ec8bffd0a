"""What the CLI tells a person when something is wrong: one line, a non-zero exit, no trace."""


class CliError(Exception):
    """A failure the operator can act on; `message` is the whole story, in one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
