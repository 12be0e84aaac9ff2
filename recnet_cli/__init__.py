"""recnet: correct mixed over- and under-exposure in photos with RECNet."""

__version__ = "0.1.0"
