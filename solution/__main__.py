from solution.cli import entry

entry()
