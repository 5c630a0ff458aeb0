"""The demo, on the top floor: it runs every other part (the local stack, the generator, the
replay, the stream job, the worker, batch training, parity, the report) and imports whatever it
needs; nothing imports it. `musicbox demo` and `python -m demo` run `demo.command`."""
