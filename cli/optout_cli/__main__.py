from optout_cli.main import run

run()
