from archsearch.cli.main import entry

entry()
