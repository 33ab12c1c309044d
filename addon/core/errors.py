"""The one base of every refusal a user reads: what went wrong, and what to do about it."""


class BridgeError(Exception):
    """A refusal with its message (what went wrong) and its fix (what to do; may be empty when the message
    already says it). str() is both, as one line."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message, self.fix = message, fix

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message


class SettingError(BridgeError, ValueError):
    """A setting, or the stored login, the bridge cannot use (a ValueError, as the settings' checks raise)."""


class HubError(Exception):
    """The hub refused (status and its own message), or could not be reached or understood (status 0). Raised by
    the Hub client (addon/hub/) and read by the core's rules (lifecycle, owner), so it lives on the ground floor."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
