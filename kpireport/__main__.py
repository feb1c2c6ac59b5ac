from kpireport.cli import entry

entry()
