"""keyvault: an encrypted local vault and rotation tool for OpenAI API keys."""

__version__ = "0.1.0.dev0"
