"""The SDK's version, as the server's instance registry shows it."""

__version__ = "0.1.0"
SDK_NAME = "flagwire-python"
