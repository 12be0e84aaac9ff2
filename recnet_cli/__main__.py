from recnet_cli.entry import run

run()
