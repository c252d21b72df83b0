"""A fleet: any number of `orchestrator worker` processes, on any hosts, sharing one
database. decisions.py holds the rules as pure functions; windows.py an account's
windows shared through the database; member.py what makes an engine one of the
fleet; worker.py the process (its lease, its accounts, their engines)."""
