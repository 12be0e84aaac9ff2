"""The bundled RECNet models: data files that install with recnet_cli as ``recnet_cli.weights_bundle``."""
