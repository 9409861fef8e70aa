"""`python -m vault` is the same program as the `keyvault` console script."""

from vault.cli.main import main

main()
