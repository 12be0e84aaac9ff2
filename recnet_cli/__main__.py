from recnet_cli.cli import run

run()
