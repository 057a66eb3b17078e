# The two commands of the README. Both set up a fresh machine first.
.PHONY: demo test lint

demo:
	./scripts/bootstrap.sh demo
	.venv/bin/creditstream demo

test:
	./scripts/bootstrap.sh test
	.venv/bin/creditstream test

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy
