"""The RECNet network: the reference forward and the fast inference path."""

from recnet_cli.model.recnet import RECNet, parameter_count

__all__ = ["RECNet", "parameter_count"]
