"""The classes componentize-py binds to the component's exports (`Operator` for the `task`
world, `Sensor` for `sensor-task`). The generated entry module imports the operator's module
(which registers its @operator/@sensor function) and then re-exports these."""

from . import TaskError, _wit_error, dispatch_poke, dispatch_run


class Operator:
    def run(self, input: str, ctx: str) -> str:
        try:
            return dispatch_run(input, ctx)
        except TaskError as e:
            raise _wit_error(e) from None


class Sensor:
    def poke(self, ctx: str) -> bool:
        try:
            return dispatch_poke(ctx)
        except TaskError as e:
            raise _wit_error(e) from None
