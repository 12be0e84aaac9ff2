from recnet_cli.cli import app

app(prog_name="recnet")
